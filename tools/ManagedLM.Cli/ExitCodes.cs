using System.Reflection;
using System.Text.Json;
using ManagedLM.Chat.Jinja;
using ManagedLM.Gguf;

namespace ManagedLM.Cli;

/// <summary>
/// Exit codes of `managedlm`, and the one-line report of an exception that ends a command:
/// 0 ok, 1 usage (bad or missing options and values), 2 a bad input file (missing, unreadable, malformed, unsupported),
/// 3 any other failure, 130 interrupted by Ctrl+C. With MANAGEDLM_DEBUG=1 the report is the full exception.
/// </summary>
internal static class ExitCodes
{
    public const int Ok = 0;
    public const int Usage = 1;
    public const int BadInput = 2;
    public const int Failure = 3;
    public const int Interrupted = 130;

    /// <summary>Set to 1 to get stack traces instead of one-line errors.</summary>
    public const string DebugVariable = "MANAGEDLM_DEBUG";

    /// <summary>The exit code an exception escaping a command stands for.</summary>
    public static int For(Exception e) => Unwrap(e) switch
    {
        CommandFailedException => Failure,
        OperationCanceledException => Interrupted,
        ArgumentException => Usage,
        IOException or UnauthorizedAccessException or InvalidDataException or GgufFormatException or NotSupportedException
            or JsonException or TemplateException => BadInput,
        _ => Failure,
    };

    /// <summary>True when <see cref="DebugVariable"/> asks for stack traces.</summary>
    public static bool DebugRequested() => Environment.GetEnvironmentVariable(DebugVariable) is "1" or "true";

    /// <summary>
    /// Writes <paramref name="e"/> to <paramref name="error"/> as one line prefixed with the command
    /// (<c>managedlm generate: error: Model file not found: x.gguf</c>), or whole when <paramref name="debug"/>, and
    /// returns its exit code.
    /// </summary>
    public static int Report(Exception e, string command, TextWriter error, bool debug)
    {
        int code = For(e);
        var cause = Unwrap(e);
        if (debug)
            error.WriteLine($"{command}: {e}");
        else if (code == Interrupted)
            error.WriteLine($"{command}: interrupted");
        else if (code == Failure && cause is not CommandFailedException)
            error.WriteLine($"{command}: error: {cause.GetType().Name}: {Message(cause)} (set {DebugVariable}=1 for the stack trace)");
        else
            error.WriteLine($"{command}: error: {Message(cause)}");
        return code;
    }

    /// <summary>The exception's message on one line: templates with their location, arguments without "(Parameter 'x')".</summary>
    public static string Message(Exception e)
    {
        string message = e switch
        {
            TemplateException t => t.MessageWithLocation,
            ArgumentException { ParamName: { } p } a => a.Message.Replace($" (Parameter '{p}')", "", StringComparison.Ordinal),
            _ => e.Message,
        };
        return string.Join(' ', message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }

    // The exception that says what went wrong, out of the wrappers that tasks and reflection put around it.
    private static Exception Unwrap(Exception e) => e switch
    {
        AggregateException { InnerExceptions.Count: 1 } a => Unwrap(a.InnerExceptions[0]),
        TargetInvocationException { InnerException: { } inner } => Unwrap(inner),
        _ => e,
    };
}

/// <summary>
/// A failure outside the input that the command explains in its message (a port that cannot be bound, a peer program
/// that fails): exit code 3, reported as the message alone.
/// </summary>
internal sealed class CommandFailedException(string message, Exception? inner = null) : Exception(message, inner);

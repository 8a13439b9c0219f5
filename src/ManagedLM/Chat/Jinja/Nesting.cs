using System.Runtime.CompilerServices;

namespace ManagedLM.Chat.Jinja;

/// <summary>
/// Depth checks of parsing and rendering: the explicit limits (<see cref="JinjaTemplate.MaxExpressionDepth"/>, ...) and,
/// behind them, a stack check at every recursive step, so a thread with a small stack gets a <see cref="TemplateException"/>
/// rather than a stack overflow.
/// </summary>
internal static class Nesting
{
    public const string StackExhausted = "The template nests too deeply for this thread's stack";

    public static string TooDeep(string what, int limit) => $"{what} nest deeper than {limit} levels";

    /// <summary>Throws unless the thread has stack to spare for one more level (line/column: where; 0 when unknown).</summary>
    public static void EnsureStack(int line = 0, int column = 0)
    {
        if (!RuntimeHelpers.TryEnsureSufficientExecutionStack())
            throw new TemplateException(StackExhausted, line, column);
    }
}

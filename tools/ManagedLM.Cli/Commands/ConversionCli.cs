using System.CommandLine;
using System.Globalization;
using ManagedLM.Gguf;
using ManagedLM.Kernels;
using ManagedLM.Quantization;

namespace ManagedLM.Cli.Commands;

/// <summary>Options, progress and summary shared by the commands that write models (synth, quantize).</summary>
internal static class ConversionCli
{
    /// <summary>
    /// Runs a conversion (given the progress log) and prints its summary; bad input (<see cref="IsUserError"/>) is
    /// printed as one line prefixed with the command's name, with exit code 1.
    /// </summary>
    public static int Execute(string command, ParseResult parse, Func<TextWriter, (string Path, LlamaFileType Type, ConversionSummary Summary)> run)
    {
        var log = parse.InvocationConfiguration.Error;
        try
        {
            var (path, type, summary) = run(log);
            WriteSummary(parse.InvocationConfiguration.Output, path, type, summary);
            return 0;
        }
        catch (Exception e) when (IsUserError(e))
        {
            log.WriteLine($"managedlm {command}: {Message(e)}");
            return 1;
        }
    }

    /// <summary>Exceptions that mean bad input rather than a bug.</summary>
    public static bool IsUserError(Exception e) =>
        e is ArgumentException or IOException or UnauthorizedAccessException or InvalidDataException or GgufFormatException
            or NotSupportedException or InvalidOperationException;

    /// <summary>The exception's message without the "(Parameter 'x')" suffix of argument exceptions.</summary>
    public static string Message(Exception e) =>
        e is ArgumentException { ParamName: { } p } a ? a.Message.Replace($" (Parameter '{p}')", "", StringComparison.Ordinal) : e.Message;

    public static Option<string> FileType() => new("--type")
    {
        Description = $"File type (llama.cpp mix): {string.Join(", ", LlamaFileTypes.All.Select(LlamaFileTypes.Name))}.",
    };

    public static Option<string?> TokenEmbeddingType() => new("--token-embedding-type") { Description = "Tensor type of token_embd.weight instead of the mix's (e.g. Q8_0)." };

    public static Option<string?> OutputTensorType() => new("--output-tensor-type") { Description = "Tensor type of output.weight instead of the mix's (e.g. Q8_0)." };

    public static Option<int> Threads() => new("--threads", "-t") { Description = "Quantization threads.", DefaultValueFactory = _ => Environment.ProcessorCount };

    /// <summary>Builds the options; type names are parsed here so that a bad one is a user error.</summary>
    public static QuantizationOptions Options(string fileType, string? tokenEmbeddingType, string? outputTensorType, int threads, bool allowRequantize = false)
    {
        if (threads < 1)
            throw new ArgumentException($"--threads must be at least 1; got {threads}.");
        return new QuantizationOptions(LlamaFileTypes.Parse(fileType))
        {
            TokenEmbeddingType = TensorType(tokenEmbeddingType, "--token-embedding-type"),
            OutputTensorType = TensorType(outputTensorType, "--output-tensor-type"),
            AllowRequantize = allowRequantize,
            Threads = threads,
        };
    }

    /// <summary>Progress lines on <paramref name="log"/>: <c>[  i/n] name type [shape]</c>.</summary>
    public static TensorProgress Progress(TextWriter log) => (index, count, tensor) =>
    {
        int width = count.ToString(CultureInfo.InvariantCulture).Length;
        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"[{(index + 1).ToString(CultureInfo.InvariantCulture).PadLeft(width)}/{count}] {tensor.Name,-32} {GgmlTypes.Name(tensor.Type),-5} [{string.Join(", ", tensor.Shape)}]"));
        log.Flush();
    };

    /// <summary>One line: path, parameters, size, per-type tensor counts and seconds.</summary>
    public static void WriteSummary(TextWriter output, string path, LlamaFileType type, ConversionSummary s)
    {
        string types = string.Join(", ", s.Tensors.GroupBy(t => t.Type).OrderByDescending(g => g.Count())
            .Select(g => $"{GgmlTypes.Name(g.Key)} ×{g.Count()}"));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{path}: {LlamaFileTypes.Name(type)}, {s.Parameters:N0} parameters, {s.FileBytes:N0} bytes ({s.FileBytes / 1048576.0:F1} MiB), {s.Tensors.Count} tensors ({types}), {s.Elapsed.TotalSeconds:F1} s"));
    }

    private static GgmlType? TensorType(string? name, string option)
    {
        if (name is null)
            return null;
        foreach (var t in Enum.GetValues<GgmlType>())
        {
            if (string.Equals(t.ToString(), name, StringComparison.OrdinalIgnoreCase) && Quantize.Supports(t))
                return t;
        }
        var supported = Enum.GetValues<GgmlType>().Where(Quantize.Supports).Select(GgmlTypes.Name);
        throw new ArgumentException($"{option}: \"{name}\" is not a tensor type this quantizer writes ({string.Join(", ", supported)}).");
    }
}

using System.CommandLine;
using System.Globalization;
using ManagedLM.Kernels;
using ManagedLM.Quantization;
using Spectre.Console;

namespace ManagedLM.Cli.Commands;

/// <summary>Options, progress and summary shared by the commands that write models (synth, quantize).</summary>
internal static class ConversionCli
{
    /// <summary>
    /// Runs a conversion, given the per-tensor progress to report to, and prints its summary on stdout. Progress goes to
    /// stderr: a bar on a terminal, a line per tensor when redirected.
    /// </summary>
    public static int Execute(ParseResult parse, Func<TensorProgress, (string Path, LlamaFileType Type, ConversionSummary Summary)> run)
    {
        var log = parse.InvocationConfiguration.Error;
        var (path, type, summary) = Terminal.IsInteractive(log) ? WithProgressBar(log, run) : run(ProgressLines(log));
        WriteSummary(parse.InvocationConfiguration.Output, path, type, summary);
        return ExitCodes.Ok;
    }

    public static Option<string> FileType() => new Option<string>("--type")
    {
        Description = $"File type (llama.cpp mix): {string.Join(", ", LlamaFileTypes.All.Select(LlamaFileTypes.Name))}.",
    }.Checked(v => LlamaFileTypes.Parse(v));

    public static Option<string?> TokenEmbeddingType() => new("--token-embedding-type") { Description = "Tensor type of token_embd.weight instead of the mix's (e.g. Q8_0)." };

    public static Option<string?> OutputTensorType() => new("--output-tensor-type") { Description = "Tensor type of output.weight instead of the mix's (e.g. Q8_0)." };

    public static Option<int> Threads() => new Option<int>("--threads", "-t") { Description = "Quantization threads.", DefaultValueFactory = _ => Environment.ProcessorCount }.AtLeast(1);

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
    public static TensorProgress ProgressLines(TextWriter log) => (index, count, tensor) =>
    {
        int width = count.ToString(CultureInfo.InvariantCulture).Length;
        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"[{(index + 1).ToString(CultureInfo.InvariantCulture).PadLeft(width)}/{count}] {tensor.Name,-32} {GgmlTypes.Name(tensor.Type),-5} [{string.Join(", ", tensor.Shape)}]"));
        log.Flush();
    };

    // A bar of tensors written, naming the one in progress; it stays on screen, full, when the file is done.
    private static T WithProgressBar<T>(TextWriter log, Func<TensorProgress, T> run) =>
        Terminal.For(log).Progress()
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(context =>
            {
                ProgressTask? task = null;
                var result = run((index, count, tensor) =>
                {
                    task ??= context.AddTask("Writing", maxValue: count);
                    task.Description = Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"{index + 1}/{count} {tensor.Name} {GgmlTypes.Name(tensor.Type)}"));
                    task.Value = index;
                });
                if (task is not null)
                {
                    task.Description = string.Create(CultureInfo.InvariantCulture, $"{task.MaxValue:0} tensors");
                    task.Value = task.MaxValue;
                }
                return result;
            });

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

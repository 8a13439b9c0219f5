using System.CommandLine;
using System.Globalization;
using ManagedLM.Gguf;
using ManagedLM.Kernels;
using Spectre.Console;
using Spectre.Console.Rendering;
using static ManagedLM.Cli.Terminal;

namespace ManagedLM.Cli.Commands;

/// <summary>`managedlm inspect FILE`: header, metadata (arrays and long strings abbreviated), tensor table and totals, like gguf-dump.</summary>
internal static class InspectCommand
{
    private const int ShownArrayItems = 6;
    private const int ShownStringChars = 80;

    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "GGUF file to describe (.gguf, or gzip'd .gguf.gz)." };
        var command = new CliCommand("inspect", "Print a GGUF file's header, metadata, tensor table and totals.",
        [
            new("Header, metadata, tensors and totals of a model", "managedlm inspect model.gguf"),
            new("A gzip'd vocabulary file (read without unpacking it to disk)", "managedlm inspect ggml-vocab-llama-bpe.gguf.gz"),
            new("Only the tensors of the first block", "managedlm inspect model.gguf | grep blk.0."),
        ])
        {
            file,
        };
        command.SetAction(parse =>
        {
            using var gguf = GgufFile.OpenOrUnzip(ModelLocator.NotADirectory(parse.GetValue(file)!));
            Write(gguf, parse.InvocationConfiguration.Output);
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>The description as tables: bordered on a terminal, plain columns when redirected.</summary>
    public static void Write(GgufFile gguf, TextWriter output)
    {
        string data = gguf.Tensors.Count > 0 ? Invariant($", data section at byte {gguf.DataOffset}") : "";
        var parts = new List<IRenderable>
        {
            Cell(Invariant($"GGUF v{gguf.Version}: {gguf.FileSize} bytes, alignment {gguf.Alignment}, {gguf.Metadata.Count} metadata entries, {gguf.Tensors.Count} tensors{data}")),
        };
        if (FileType(gguf) is { } fileType)
            parts.Add(Cell($"File type: {fileType}"));
        parts.Add(Cell(""));
        parts.Add(Heading("Metadata:"));
        var metadata = Table(output, new TableColumn("key"), new TableColumn("type"), new TableColumn("value"));
        foreach (var entry in gguf.Metadata)
        {
            string type = entry.Value.Type == GgufValueType.Array ? "array" : entry.Value.Type.ToString().ToLowerInvariant();
            metadata.AddRow(Cell(entry.Key), Cell(type), Cell(entry.Value.Describe(ShownArrayItems, ShownStringChars)));
        }
        parts.Add(metadata);

        parts.Add(Cell(""));
        parts.Add(Heading("Tensors:"));
        if (gguf.Tensors.Count == 0)
            parts.Add(Cell("  (none)"));
        else
        {
            var tensors = Table(output, Number("#"), new TableColumn("name"), new TableColumn("type"), new TableColumn("shape"), Number("bytes"), Number("offset"));
            for (int i = 0; i < gguf.Tensors.Count; i++)
            {
                var t = gguf.Tensors[i];
                tensors.AddRow(Cell(Invariant($"{i}")), Cell(t.Name), Cell(GgmlTypes.Name(t.Type)), Cell(Shape(t)),
                    Cell(Invariant($"{t.ByteSize}")), Cell(Invariant($"{t.Offset}")));
            }
            parts.Add(tensors);
        }

        long totalBytes = gguf.Tensors.Sum(t => t.ByteSize);
        long totalElements = gguf.Tensors.Sum(t => t.ElementCount);
        parts.Add(Cell(""));
        parts.Add(Cell(Invariant($"Totals: {gguf.Tensors.Count} tensors, {totalElements} elements, {totalBytes} bytes ({Mebibytes(totalBytes)})")));
        if (gguf.Tensors.Count > 0)
        {
            var types = Table(output, new TableColumn("type"), Number("tensors"), Number("elements"), Number("bytes"));
            foreach (var group in gguf.Tensors.GroupBy(t => t.Type).OrderByDescending(g => g.Sum(t => t.ByteSize)))
            {
                types.AddRow(Cell(GgmlTypes.Name(group.Key)), Cell(Invariant($"{group.Count()}")),
                    Cell(Invariant($"{group.Sum(t => t.ElementCount)}")), Cell(Invariant($"{group.Sum(t => t.ByteSize)}")));
            }
            parts.Add(types);
        }
        Terminal.Write(output, new Rows(parts));
    }

    // As llama.cpp names it, with where the name comes from; null for a file with neither general.file_type nor tensors.
    private static string? FileType(GgufFile gguf)
    {
        if (ModelSummary.FileType(gguf.Metadata) is long fileType)
            return Invariant($"{ModelSummary.FileTypeName(fileType)} ({ModelSummary.FileTypeKey} = {fileType})");
        if (gguf.Tensors.Count == 0)
            return null;
        var dominant = gguf.Tensors.GroupBy(t => t.Type).OrderByDescending(g => g.Sum(t => t.ByteSize)).First().Key;
        return $"{GgmlTypes.Name(dominant)} (no {ModelSummary.FileTypeKey}: the type of most tensor bytes)";
    }

    private static Text Heading(string text) => new(text, new Style(decoration: Decoration.Bold));

    private static string Shape(GgufTensorInfo t) => "[" + string.Join(", ", t.Shape) + "]";

    private static string Mebibytes(long bytes) => Invariant($"{bytes / (1024.0 * 1024.0):0.00} MiB");

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}

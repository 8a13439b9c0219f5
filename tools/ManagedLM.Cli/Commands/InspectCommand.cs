using System.CommandLine;
using System.Globalization;
using ManagedLM.Gguf;
using ManagedLM.Kernels;

namespace ManagedLM.Cli.Commands;

/// <summary>`managedlm inspect FILE`: header, metadata (arrays and long strings abbreviated), tensor table and totals, like gguf-dump.</summary>
internal static class InspectCommand
{
    private const int ShownArrayItems = 6;
    private const int ShownStringChars = 80;

    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "GGUF file to describe (.gguf, or gzip'd .gguf.gz)." };
        var command = new Command("inspect", "Print a GGUF file's header, metadata, tensor table and totals.") { file };
        command.SetAction(parse =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            string path = parse.GetValue(file)!;
            try
            {
                using var gguf = GgufFile.OpenOrUnzip(path);
                Write(gguf, output);
                return 0;
            }
            catch (Exception ex) when (ex is GgufFormatException or IOException or UnauthorizedAccessException or InvalidDataException)
            {
                error.WriteLine($"managedlm inspect: {path}: {ex.Message}");
                return 1;
            }
        });
        return command;
    }

    public static void Write(GgufFile gguf, TextWriter output)
    {
        string data = gguf.Tensors.Count > 0 ? Invariant($", data section at byte {gguf.DataOffset}") : "";
        output.WriteLine(Invariant($"GGUF v{gguf.Version}: {gguf.FileSize} bytes, alignment {gguf.Alignment}, {gguf.Metadata.Count} metadata entries, {gguf.Tensors.Count} tensors{data}"));

        output.WriteLine();
        output.WriteLine("Metadata:");
        int keyWidth = Math.Min(48, gguf.Metadata.Select(e => e.Key.Length).DefaultIfEmpty(0).Max());
        foreach (var entry in gguf.Metadata)
        {
            string type = entry.Value.Type == GgufValueType.Array ? "array" : entry.Value.Type.ToString().ToLowerInvariant();
            output.WriteLine($"  {entry.Key.PadRight(keyWidth)}  {type,-7}  {entry.Value.Describe(ShownArrayItems, ShownStringChars)}");
        }

        output.WriteLine();
        output.WriteLine("Tensors:");
        if (gguf.Tensors.Count == 0)
            output.WriteLine("  (none)");
        int nameWidth = Math.Max(4, gguf.Tensors.Select(t => t.Name.Length).DefaultIfEmpty(0).Max());
        int shapeWidth = Math.Max(5, gguf.Tensors.Select(t => Shape(t).Length).DefaultIfEmpty(0).Max());
        if (gguf.Tensors.Count > 0)
            output.WriteLine($"  {"#",4}  {"name".PadRight(nameWidth)}  {"type",-7}  {"shape".PadRight(shapeWidth)}  {"bytes",12}  {"offset",12}");
        for (int i = 0; i < gguf.Tensors.Count; i++)
        {
            var t = gguf.Tensors[i];
            output.WriteLine(Invariant($"  {i,4}  {t.Name.PadRight(nameWidth)}  {GgmlTypes.Name(t.Type),-7}  {Shape(t).PadRight(shapeWidth)}  {t.ByteSize,12}  {t.Offset,12}"));
        }

        long totalBytes = gguf.Tensors.Sum(t => t.ByteSize);
        long totalElements = gguf.Tensors.Sum(t => t.ElementCount);
        output.WriteLine();
        output.WriteLine(Invariant($"Totals: {gguf.Tensors.Count} tensors, {totalElements} elements, {totalBytes} bytes ({Mebibytes(totalBytes)})"));
        foreach (var group in gguf.Tensors.GroupBy(t => t.Type).OrderByDescending(g => g.Sum(t => t.ByteSize)))
            output.WriteLine(Invariant($"  {GgmlTypes.Name(group.Key),-7}  {group.Count(),5} tensors  {group.Sum(t => t.ElementCount),14} elements  {group.Sum(t => t.ByteSize),14} bytes"));
    }

    private static string Shape(GgufTensorInfo t) => "[" + string.Join(", ", t.Shape) + "]";

    private static string Mebibytes(long bytes) => Invariant($"{bytes / (1024.0 * 1024.0):0.00} MiB");

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}

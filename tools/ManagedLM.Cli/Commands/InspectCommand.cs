using System.CommandLine;
using ManagedLM.Gguf;

namespace ManagedLM.Cli.Commands;

/// <summary>`managedlm inspect FILE`: metadata (arrays abbreviated) and the tensor table, like gguf-dump.</summary>
internal static class InspectCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "GGUF file to describe." };
        var command = new Command("inspect", "Print a GGUF file's metadata and tensor table.") { file };
        command.SetAction(parse =>
        {
            using var gguf = GgufFile.Open(parse.GetValue(file)!);
            Write(gguf, Console.Out);
            return 0;
        });
        return command;
    }

    public static void Write(GgufFile gguf, TextWriter output)
    {
        output.WriteLine($"GGUF v{gguf.Version}, {gguf.FileSize} bytes, alignment {gguf.Alignment}, data at {gguf.DataOffset}");
        output.WriteLine($"{gguf.Metadata.Count} metadata entries:");
        foreach (var entry in gguf.Metadata)
        {
            string value = entry.Value.Value is GgufArray a ? a.Describe(6) : Quote(entry.Value);
            output.WriteLine($"  {entry.Key} = {value}");
        }
        output.WriteLine($"{gguf.Tensors.Count} tensors:");
        output.WriteLine($"  {"name",-32} {"type",-7} {"shape",-20} {"bytes",12} {"offset",12}");
        foreach (var t in gguf.Tensors)
            output.WriteLine($"  {t.Name,-32} {t.Type,-7} {"[" + string.Join(", ", t.Shape) + "]",-20} {t.ByteSize,12} {t.Offset,12}");
    }

    private static string Quote(GgufValue v)
    {
        if (v.Value is not string s)
            return v.ToString();
        if (s.Length > 120)
            s = s[..120] + $"... ({s.Length} chars)";
        return "\"" + s.Replace("\n", "\\n") + "\"";
    }
}

using System.CommandLine;
using System.Globalization;
using ManagedLM.Gguf;

namespace ManagedLM.Cli.Commands;

/// <summary>`managedlm split IN OUT_PREFIX`: llama.cpp's gguf-split (<see cref="GgufWriter.WriteSplits"/>).</summary>
internal static class SplitCommand
{
    private const int DefaultMaxTensors = 128; // gguf-split's

    public static Command Create()
    {
        var input = new Argument<string>("in") { Description = "GGUF model to split (a split model's first file splits it anew)." };
        var output = new Argument<string>("out-prefix") { Description = "Path of the files to write without -00001-of-0000N.gguf." };
        var maxTensors = new Option<int?>("--split-max-tensors") { Description = $"Most tensors in one file (default {DefaultMaxTensors})." }.AtLeast(1);
        var maxSize = new Option<string?>("--split-max-size") { Description = "Most tensor bytes in one file: N, NM (10^6 bytes) or NG (10^9 bytes)." }
            .Checked(v => ParseSize(v));
        var command = new CliCommand("split", "Split a GGUF model into files that llama.cpp and ManagedLM load as one, as llama.cpp's gguf-split does.",
        [
            new("Files of at most 128 tensors: model-00001-of-0000N.gguf ...", "managedlm split model.gguf model"),
            new("Files of at most 2 GB of tensors each, into another folder", "managedlm split model.gguf parts/model --split-max-size 2G"),
        ])
        {
            input, output, maxTensors, maxSize,
        };
        command.SetAction(parse =>
        {
            int? tensors = parse.GetValue(maxTensors);
            long? bytes = ParseSize(parse.GetValue(maxSize));
            if (tensors is not null && bytes is not null)
                throw new ArgumentException("Give --split-max-tensors or --split-max-size, not both.");
            using var source = GgufFile.OpenModel(ModelLocator.NotADirectory(parse.GetValue(input)!));
            var paths = GgufWriter.WriteSplits(source, parse.GetValue(output)!, bytes is null ? tensors ?? DefaultMaxTensors : null, bytes);
            var writer = parse.InvocationConfiguration.Output;
            foreach (string path in paths)
            {
                using var split = GgufFile.Open(path);
                writer.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{path}: {split.Tensors.Count} tensors, {split.FileSize:N0} bytes"));
            }
            return ExitCodes.Ok;
        });
        return command;
    }

    // gguf-split's sizes: a count of bytes with M (10^6) or G (10^9) after it; here a plain count of bytes too.
    private static long? ParseSize(string? text)
    {
        if (text is null)
            return null;
        string digits = text;
        long unit = 1;
        if (text.Length > 0 && char.ToUpperInvariant(text[^1]) is 'M' or 'G')
        {
            unit = char.ToUpperInvariant(text[^1]) == 'M' ? 1_000_000 : 1_000_000_000;
            digits = text[..^1];
        }
        if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n < 1 || n > long.MaxValue / unit)
            throw new ArgumentException($"--split-max-size: \"{text}\" is not a size such as 500M or 2G (a whole number of bytes, megabytes or gigabytes, at least 1).");
        return n * unit;
    }
}

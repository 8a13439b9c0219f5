using System.Text.RegularExpressions;
using ManagedLM.Cli.Commands;
using ManagedLM.Gguf;

namespace ManagedLM.Tests.Cli;

public class InspectCommandTests
{
    private static (int ExitCode, string Output, string Error) Run(params string[] args) => CliRun.Invoke(["inspect", .. args]);

    // Lines with runs of spaces collapsed, so that the checks do not depend on column widths.
    private static string[] Lines(string text) =>
        text.Split('\n').Select(l => Regex.Replace(l.TrimEnd('\r').Trim(), " {2,}", " ")).ToArray();

    [Fact]
    public void Stories260K_header_metadata_tensor_table_and_totals()
    {
        using var gguf = GgufFile.Open(TestData.Model("stories260K.gguf"));
        var text = new StringWriter();
        InspectCommand.Write(gguf, text);
        var lines = Lines(text.ToString());

        Assert.Equal("GGUF v3: 1185376 bytes, alignment 32, 19 metadata entries, 48 tensors, data section at byte 14176", lines[0]);
        Assert.Contains("general.architecture string \"llama\"", lines);
        Assert.Contains("llama.embedding_length uint32 64", lines);
        Assert.Contains("llama.attention.layer_norm_rms_epsilon float32 1E-05", lines);
        Assert.Contains("tokenizer.ggml.tokens array [String x 512: \"<unk>\", \"<s>\", \"</s>\", \"<0x00>\", \"<0x01>\", \"<0x02>\", ... (506 more)]", lines);
        Assert.Contains("# name type shape bytes offset", lines);
        Assert.Contains("0 token_embd.weight F32 [64, 512] 131072 0", lines);
        Assert.Contains("9 blk.0.ffn_down.weight F32 [172, 64] 44032 355840", lines);
        Assert.Contains("47 blk.4.ffn_norm.weight F32 [64] 256 1170944", lines);
        Assert.Contains("Totals: 48 tensors, 292800 elements, 1171200 bytes (1.12 MiB)", lines);
        Assert.Contains("type tensors elements bytes", lines);
        Assert.Contains("F32 48 292800 1171200", lines);
    }

    [Fact]
    public void Quantized_mix_counts_tensors_per_type()
    {
        var (code, output, error) = Run(TestData.Model("stories260K-mix-Q4_0.gguf"));
        Assert.Equal(0, code);
        Assert.Equal("", error);
        var lines = Lines(output);
        // MANIFEST.md: Q4_0 x30, Q5_0 token_embd, Q8_0 output, F16 ffn_down (x5), F32 norms (2 per layer + output_norm).
        Assert.Contains(lines, l => l.StartsWith("Q4_0 30 ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("Q5_0 1 ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("Q8_0 1 ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("F16 5 ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("F32 11 ", StringComparison.Ordinal));
    }

    [Fact]
    public void Gzipped_vocab_file_shortens_the_chat_template()
    {
        var (code, output, _) = Run(TestData.Model("vocab/ggml-vocab-qwen2.gguf.gz"));
        Assert.Equal(0, code);
        var lines = Lines(output);
        Assert.Equal("GGUF v3: 5932497 bytes, alignment 32, 19 metadata entries, 0 tensors", lines[0]);
        Assert.Contains("(none)", lines);
        var template = Assert.Single(lines, l => l.StartsWith("tokenizer.chat_template string ", StringComparison.Ordinal));
        Assert.EndsWith("... (4116 chars)", template);
        Assert.Contains("\"{%- if tools %}\\n {{- '<|im_start|>system\\\\n' }}", template);
        Assert.Contains("tokenizer.ggml.merges array [String x 151387: \"Ġ Ġ\", \"ĠĠ ĠĠ\", \"i n\", \"Ġ t\", \"ĠĠĠĠ ĠĠĠĠ\", \"e r\", ... (151381 more)]", lines);
    }

    [Fact]
    public void Malformed_or_missing_file_exits_2_with_the_reason()
    {
        string path = Path.Combine(Path.GetTempPath(), $"managedlm-inspect-{Guid.NewGuid():N}.gguf");
        File.WriteAllBytes(path, "GGML\u0003\0\0\0"u8.ToArray());
        try
        {
            var (code, output, error) = Run(path);
            Assert.Equal(2, code);
            Assert.Equal("", output);
            Assert.Equal("managedlm inspect: error: Invalid GGUF at byte 0: expected magic \"GGUF\" (0x46554747), found 0x4C4D4747", error.TrimEnd());
        }
        finally
        {
            File.Delete(path);
        }
        var missing = Run(path);
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains(path, missing.Error);
    }

    [Theory]
    [InlineData("synthetic/synth-llama-Q4_K_M.gguf", "File type: Q4_K - Medium (general.file_type = 15)")]
    [InlineData("stories260K-F16.gguf", "File type: F16 (general.file_type = 1)")]
    [InlineData("synthetic/synth-llama-Q4_0.gguf", "File type: Q4_0 (general.file_type = 2)")]
    [InlineData("stories260K.gguf", "File type: F32 (no general.file_type: the type of most tensor bytes)")]
    public void The_file_type_is_named_as_llama_cpp_names_it(string file, string line)
    {
        var (code, output, _) = Run(TestData.Model(file));
        Assert.Equal(0, code);
        Assert.Equal(line, Lines(output)[1]);
    }
}

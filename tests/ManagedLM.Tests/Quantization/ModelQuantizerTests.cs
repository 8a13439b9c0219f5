using ManagedLM.Gguf;
using ManagedLM.Kernels;
using ManagedLM.Quantization;

namespace ManagedLM.Tests.Quantization;

/// <summary>
/// Quantizing stories260K (F32) must reproduce llama-quantize's files. The mix files' <c>general.file_type</c> tells
/// which llama.cpp type made each: mix-Q8_0 is Q6_K (every K-quant falls back to Q8_0 on 64-wide rows), mix-Q5_0 is
/// Q4_K_M (Q4_K → Q5_0, and the Q6_K of attn_v on layers 2 and 4 and of the output → Q8_0), mix-Q4_0 is TQ1_0
/// (→ Q4_0, with a Q4_K → Q5_0 token_embd); ffn_down's 172-wide rows are F16 in all.
/// </summary>
public class ModelQuantizerTests
{
    private static byte[] QuantizeStories(QuantizationOptions options)
    {
        using var source = GgufFile.Open(TestData.Model("stories260K.gguf"));
        using var stream = new MemoryStream();
        ModelQuantizer.Quantize(source, stream, options, null);
        return stream.ToArray();
    }

    private static void AssertSameTensors(string expectedFile, byte[] actual, Func<GgufTensorInfo, bool>? only = null)
    {
        using var want = GgufFile.Open(TestData.Model(expectedFile));
        using var got = GgufFile.Parse(actual);
        Assert.Equal(want.Tensors.Select(t => t.Name), got.Tensors.Select(t => t.Name));
        int compared = 0;
        foreach (var t in want.Tensors.Where(only ?? (_ => true)))
        {
            var g = got.GetTensor(t.Name);
            Assert.Equal(t.ToString(), g.ToString());
            int same = want.GetTensorData(t).CommonPrefixLength(got.GetTensorData(g));
            Assert.True(same == t.ByteSize, $"{expectedFile} {t.Name} ({t.Type}): first differing byte {same} of {t.ByteSize}");
            compared++;
        }
        Assert.True(compared > 0);
    }

    [Theory]
    [InlineData(LlamaFileType.Q6_K, "stories260K-mix-Q8_0.gguf")]
    [InlineData(LlamaFileType.Q4_K_M, "stories260K-mix-Q5_0.gguf")]
    [InlineData(LlamaFileType.F16, "stories260K-F16.gguf")]
    public void The_file_type_llama_cpp_used_reproduces_its_file_byte_for_byte(LlamaFileType type, string expectedFile)
    {
        byte[] actual = QuantizeStories(new QuantizationOptions(type));
        AssertSameTensors(expectedFile, actual);
        Assert.Equal(File.ReadAllBytes(TestData.Model(expectedFile)), actual);
    }

    [Fact]
    public void Q8_0_reproduces_the_tensors_of_mix_Q8_0()
    {
        // llama.cpp would stop at ffn_down (172 is not whole Q8_0 blocks); the F16 fallback gives the same file as Q6_K's.
        AssertSameTensors("stories260K-mix-Q8_0.gguf", QuantizeStories(new QuantizationOptions(LlamaFileType.Q8_0)));
    }

    [Fact]
    public void Q4_0_with_a_Q5_0_token_embedding_reproduces_the_tensors_of_mix_Q4_0()
    {
        var options = new QuantizationOptions(LlamaFileType.Q4_0) { TokenEmbeddingType = GgmlType.Q5_0 };
        AssertSameTensors("stories260K-mix-Q4_0.gguf", QuantizeStories(options));
    }

    [Fact]
    public void Q5_0_follows_llama_cpp_and_matches_mix_Q5_0_wherever_the_types_agree()
    {
        byte[] actual = QuantizeStories(new QuantizationOptions(LlamaFileType.Q5_0));
        using (var got = GgufFile.Parse(actual))
        {
            foreach (var t in got.Tensors)
            {
                var expected = t.Shape.Count == 1 ? GgmlType.F32
                    : t.Name == "output.weight" ? GgmlType.Q8_0
                    : t.Name.Contains("ffn_down", StringComparison.Ordinal) ? GgmlType.F16
                    : GgmlType.Q5_0;
                Assert.True(expected == t.Type, $"{t.Name}: {t.Type}, expected {expected}");
            }
            Assert.Equal(8u, got.Metadata.Get("general.file_type").Value);
        }
        // mix-Q5_0 (Q4_K_M) differs only in attn_v of its "more bits" layers 2 and 4 (Q8_0 there).
        AssertSameTensors("stories260K-mix-Q5_0.gguf", actual, t => t.Name is not ("blk.2.attn_v.weight" or "blk.4.attn_v.weight"));
    }

    [Fact]
    public void Requantizing_needs_permission_and_then_reads_the_quantized_source()
    {
        using var q8 = GgufFile.Open(TestData.Model("stories260K-mix-Q8_0.gguf"));
        var e = Assert.Throws<InvalidOperationException>(() => ModelQuantizer.Quantize(q8, new MemoryStream(), new QuantizationOptions(LlamaFileType.F16)));
        Assert.Contains("--allow-requantize", e.Message);

        using var stream = new MemoryStream();
        ModelQuantizer.Quantize(q8, stream, new QuantizationOptions(LlamaFileType.F16) { AllowRequantize = true });
        using var f16 = GgufFile.Parse(stream.ToArray());
        var t = f16.GetTensor("blk.0.attn_q.weight");
        Assert.Equal(GgmlType.F16, t.Type);
        var values = new float[t.ElementCount];
        Dequantize.Row(GgmlType.Q8_0, q8.GetTensorData(q8.GetTensor(t.Name)), values);
        var expected = new byte[t.ByteSize];
        Quantize.Row(GgmlType.F16, values, expected);
        Assert.True(expected.AsSpan().SequenceEqual(f16.GetTensorData(t)));
    }

    [Fact]
    public void Metadata_is_copied_with_the_file_type_moved_to_the_end()
    {
        using var f16 = GgufFile.Open(TestData.Model("stories260K-F16.gguf"));
        var m = ModelQuantizer.Metadata(f16.Metadata, LlamaFileType.Q8_0);
        Assert.Equal(f16.Metadata.Keys, m.Select(p => p.Key));
        Assert.Equal(7u, m[^1].Value.Value);
        Assert.Equal(2u, m[^2].Value.Value);
    }

    [Fact]
    public void QuantizeFile_writes_the_file_and_reports_progress()
    {
        string path = Path.Combine(Path.GetTempPath(), $"managedlm-quant-{Guid.NewGuid():N}.gguf");
        try
        {
            var seen = new List<(int, int, string)>();
            var summary = ModelQuantizer.QuantizeFile(TestData.Model("stories260K.gguf"), path, new QuantizationOptions(LlamaFileType.Q6_K),
                (i, n, t) => seen.Add((i, n, t.Name)));
            Assert.Equal(File.ReadAllBytes(TestData.Model("stories260K-mix-Q8_0.gguf")), File.ReadAllBytes(path));
            Assert.Equal(48, seen.Count);
            Assert.Equal((0, 48, "output.weight"), seen[0]);
            Assert.Equal(292800, summary.Parameters);
            Assert.Equal(379168, summary.FileBytes);
            Assert.False(File.Exists(path + ".part"));
        }
        finally
        {
            File.Delete(path);
        }
    }
}

using ManagedLM.Gguf;
using ManagedLM.Kernels;
using ManagedLM.Tests.Synthesis;

namespace ManagedLM.Tests.Kernels;

/// <summary>
/// The synthetic fixtures were made by llama.cpp's quantizer from F32 tensors we regenerate bit-exactly:
/// our reference quantizers must reproduce every K-quant tensor byte for byte.
/// </summary>
public class KQuantFixtureTests
{
    private static readonly GgmlType[] KQuantTypes = [GgmlType.Q4_K, GgmlType.Q6_K];

    [Fact]
    public void Every_K_quant_fixture_tensor_is_reproduced_byte_for_byte()
    {
        var counts = new Dictionary<GgmlType, int>();
        foreach (var (file, seed) in SyntheticWeightsTests.Fixtures)
        {
            using var gguf = GgufFile.Open(TestData.Model(file));
            foreach (var t in gguf.Tensors.Where(t => KQuantTypes.Contains(t.Type)))
            {
                float[] values = SyntheticWeightsTests.Regenerate(seed, t);
                var bytes = new byte[t.ByteSize];
                Quantize.Row(t.Type, values, bytes);
                ReadOnlySpan<byte> expected = gguf.GetTensorData(t);
                int mismatch = expected.CommonPrefixLength(bytes);
                Assert.True(mismatch == bytes.Length,
                    $"{file} {t.Name} ({t.Type}): first differing byte {mismatch} of {bytes.Length} (block {mismatch / GgmlTypes.BlockBytes(t.Type)})");
                counts[t.Type] = counts.GetValueOrDefault(t.Type) + 1;
            }
        }
        Assert.Equal(6 + 5 + 5 + 5, counts[GgmlType.Q4_K]);
        Assert.Equal(3 + 9 + 1 + 3 + 3 + 3, counts[GgmlType.Q6_K]);
    }

    [Fact]
    public void Every_K_quant_fixture_tensor_dequantizes_within_its_error_bound()
    {
        int tensors = 0;
        foreach (var (file, seed) in SyntheticWeightsTests.Fixtures)
        {
            using var gguf = GgufFile.Open(TestData.Model(file));
            foreach (var t in gguf.Tensors.Where(t => KQuantTypes.Contains(t.Type)))
            {
                float[] original = SyntheticWeightsTests.Regenerate(seed, t);
                float[] dequantized = new float[original.Length];
                Dequantize.Row(t.Type, gguf.GetTensorData(t), dequantized);
                var (rmsBound, maxBound) = KQuantProperties.ErrorBounds(t.Type);
                var (rel, _) = KQuantProperties.Errors(original, dequantized);
                Assert.True(rel <= rmsBound, $"{file} {t.Name}: rmse/rms {rel:F4} > {rmsBound}");
                for (int b = 0; b < original.Length / 256; b++)
                {
                    var (_, maxRel) = KQuantProperties.Errors(original.AsSpan(256 * b, 256), dequantized.AsSpan(256 * b, 256));
                    Assert.True(maxRel <= maxBound, $"{file} {t.Name} block {b}: max err/amax {maxRel:F4} > {maxBound}");
                }
                tensors++;
            }
        }
        Assert.Equal(43, tensors);
    }
}

using System.Runtime.InteropServices;
using ManagedLM.Kernels;
using ManagedLM.Kernels.Quants;

namespace ManagedLM.Tests.Kernels.Quants;

/// <summary>
/// A matmul's Q8_0/Q8_1 activations as llama.cpp's CPU backend quantizes them on x86 (quantize_row_q8_0/_q8_1, AVX2):
/// the multiplier 127/max|x| and halves to even, where the weights' reference quantizer takes 1/d and rounds halves away.
/// </summary>
public class ActivationQuantizerTests
{
    [Fact]
    public void The_vector_quantizer_gives_the_scalar_ones_bytes() =>
        KernelGen.Check(KernelGen.Rows(32, 8), x =>
        {
            if (!System.Runtime.Intrinsics.X86.Avx2.IsSupported)
                return;
            for (int b = 0; b < x.Length / 32; b++)
            {
                sbyte[] vector = new sbyte[32], scalar = new sbyte[32];
                int sumVector = Q8Quantizer.ActivationBlockAvx2(in x[b * 32], ref vector[0], out float dVector, sum: true);
                int sumScalar = Q8Quantizer.ActivationBlockReference(in x[b * 32], ref scalar[0], out float dScalar);
                Assert.Equal(scalar, vector);
                Assert.Equal((dScalar, sumScalar), (dVector, sumVector));
            }
        });

    [Fact]
    public void Halves_round_to_even_where_the_weights_quantizer_rounds_them_away()
    {
        // max|x| = 1.984375: the multiplier is 127/max = 64 exactly, so 0.5390625 → 34.5 → 34 and 0.5546875 → 35.5 → 36.
        var x = new float[32];
        (x[0], x[1], x[2], x[3]) = (1.984375f, 0.5390625f, 0.5546875f, -0.5390625f);
        var activation = new Q8_0Block[1];
        Q8_0Block.QuantizeActivation(x, activation);
        Assert.Equal(new sbyte[] { 127, 34, 36, -34 }, ((ReadOnlySpan<sbyte>)activation[0].Qs)[..4].ToArray());
        var weights = new Q8_0Block[1];
        Q8_0Block.Quantize(x, weights);
        Assert.Equal(new sbyte[] { 127, 35, 36, -35 }, ((ReadOnlySpan<sbyte>)weights[0].Qs)[..4].ToArray());

        // The same for Q8_1 (Q4_1 and Q5_1 weights' activations), with S = F16(Σq·d).
        var q81 = new Q8_1Block[1];
        Q8_1Block.QuantizeActivation(x, q81);
        Assert.Equal(new sbyte[] { 127, 34, 36, -34 }, ((ReadOnlySpan<sbyte>)q81[0].Qs)[..4].ToArray());
        Assert.Equal(Float16.FromSingle((127 + 34 + 36 - 34) * (1.984375f / 127)), q81[0].S);
    }

    [Fact]
    public void Matmul_inputs_take_the_activation_quantizer_and_files_the_reference_one()
    {
        var random = new Random(3);
        var x = Enumerable.Range(0, 256).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray();
        foreach (var (weight, form) in new[] { (GgmlType.Q8_0, GgmlType.Q8_0), (GgmlType.Q4_0, GgmlType.Q8_0), (GgmlType.Q4_1, GgmlType.Q8_1) })
        {
            var prepared = new byte[MatVec.ActivationBytes(weight, x.Length)];
            MatVec.PrepareActivation(weight, x, prepared);
            var expected = new byte[prepared.Length];
            Quantize.ActivationRow(form, x, expected);
            Assert.Equal(expected, prepared);
        }
        var activation = new byte[GgmlTypes.RowBytes(GgmlType.Q8_0, x.Length)];
        Quantize.ActivationRow(GgmlType.Q8_0, x, activation);
        var viaBlocks = new Q8_0Block[x.Length / 32];
        Q8_0Block.QuantizeActivation(x, viaBlocks);
        Assert.Equal(MemoryMarshal.AsBytes<Q8_0Block>(viaBlocks).ToArray(), activation);
        var file = new byte[activation.Length];
        Quantize.Row(GgmlType.Q8_0, x, file);
        var reference = new Q8_0Block[x.Length / 32];
        Q8_0Block.QuantizeReference(x, reference);
        Assert.Equal(MemoryMarshal.AsBytes<Q8_0Block>(reference).ToArray(), file);
    }
}

using System.Runtime.InteropServices;
using ManagedLM.Kernels;
using ManagedLM.Kernels.Quants;

namespace ManagedLM.Tests.Kernels;

/// <summary>Q8_K, the activation type of the K-quant dots: the vectorized quantizer must equal the scalar reference byte for byte.</summary>
public unsafe class Q8KBlockTests
{
    private static byte[] QuantizeWith(delegate*<float*, Q8KBlock*, int, void> quantize, float[] x)
    {
        byte[] bytes = new byte[x.Length / 256 * sizeof(Q8KBlock)];
        bytes.AsSpan().Fill(0xCD);
        fixed (float* px = x)
        fixed (byte* py = bytes)
            quantize(px, (Q8KBlock*)py, x.Length / 256);
        return bytes;
    }

    private static void AssertVectorEqualsReference(float[] x, string what)
    {
        byte[] reference = QuantizeWith(&Q8KBlock.QuantizeReference, x);
        byte[] vector = QuantizeWith(&Q8KBlock.QuantizeAvx2, x);
        int same = reference.AsSpan().CommonPrefixLength(vector);
        Assert.True(same == reference.Length, $"{what}: first differing byte {same}");
    }

    [Fact]
    public void Block_is_ggml_block_q8_K()
    {
        Assert.Equal(292, sizeof(Q8KBlock));
        Assert.Equal(GgmlTypes.BlockBytes(GgmlType.Q8_K), sizeof(Q8KBlock));
    }

    [Fact]
    public void Vector_quantization_equals_scalar_reference()
    {
        KQuantProperties.Check(KQuantProperties.Rows, row =>
        {
            AssertVectorEqualsReference(row.Values(), row.ToString());
            return true;
        });
    }

    [Fact]
    public void Vector_quantization_equals_reference_on_ties_zeros_and_sign_of_max()
    {
        var x = new float[4 * 256];
        // Block 0: all zero. Block 1: max magnitude -127 (iscale exactly 1) and many exact .5 ties.
        for (int i = 0; i < 256; i++)
            x[256 + i] = (i % 2 == 0 ? 1 : -1) * ((i % 100) + 0.5f);
        x[256 + 7] = -127f;
        // Block 2: +a appears before −a (the first one of largest magnitude gives the sign).
        for (int i = 0; i < 256; i++)
            x[512 + i] = (i - 128) / 256f;
        x[512 + 3] = 2f;
        x[512 + 200] = -2f;
        // Block 3: −a before +a.
        for (int i = 0; i < 256; i++)
            x[768 + i] = (i - 128) / 256f;
        x[768 + 3] = -2f;
        x[768 + 200] = 2f;
        AssertVectorEqualsReference(x, "special blocks");
        byte[] q = QuantizeWith(&Q8KBlock.QuantizeReference, x);
        var blocks = MemoryMarshal.Cast<byte, Q8KBlock>(q);
        Assert.Equal(0f, blocks[0].D);
        Assert.Equal(1f, blocks[1].D);
        Assert.Equal(4, blocks[1].Qs[4]);    // 4.5 → 4: ties round to even
        Assert.Equal(-6, blocks[1].Qs[5]);   // −5.5 → −6
        Assert.True(blocks[2].D < 0 && blocks[3].D > 0);
    }

    [Fact]
    public void Quantization_error_is_at_most_half_a_step_and_sums_match()
    {
        KQuantProperties.Check(KQuantProperties.Rows, row =>
        {
            float[] x = row.Values();
            byte[] q = KQuantProperties.Activation(x);
            var blocks = MemoryMarshal.Cast<byte, Q8KBlock>(q);
            float[] back = new float[x.Length];
            Q8KBlock.Dequantize(blocks, back);
            for (int b = 0; b < blocks.Length; b++)
            {
                var (_, maxRel) = KQuantProperties.Errors(x.AsSpan(256 * b, 256), back.AsSpan(256 * b, 256));
                if (maxRel > 1 / 254.0 * (1 + 1e-5))
                    return false;
                for (int j = 0; j < 16; j++)
                {
                    int sum = 0;
                    for (int k = 0; k < 16; k++)
                        sum += blocks[b].Qs[16 * j + k];
                    if (sum != blocks[b].BSums[j])
                        return false;
                }
            }
            return true;
        });
    }

    [Fact]
    public void Vector_dot_equals_reference_and_dequantized_dot()
    {
        KQuantProperties.Check(KQuantProperties.Rows, row =>
        {
            byte[] w = KQuantProperties.Activation(row.Values());
            byte[] a = KQuantProperties.Activation(new KQuantProperties.Row(row.Blocks, row.Seed + 1, Gaussian: true).Values());
            float reference, vector;
            fixed (byte* pw = w, pa = a)
            {
                reference = Q8KBlock.DotReference((Q8KBlock*)pw, (Q8KBlock*)pa, row.Blocks);
                vector = Q8KBlock.DotAvx2((Q8KBlock*)pw, (Q8KBlock*)pa, row.Blocks);
            }
            float[] wd = new float[row.Blocks * 256], ad = new float[row.Blocks * 256];
            Dequantize.Row(GgmlType.Q8_K, w, wd);
            Dequantize.Row(GgmlType.Q8_K, a, ad);
            double exact = 0, magnitude = 0;
            for (int i = 0; i < wd.Length; i++)
            {
                exact += (double)wd[i] * ad[i];
                magnitude += Math.Abs((double)wd[i] * ad[i]);
            }
            return BitConverter.SingleToInt32Bits(reference) == BitConverter.SingleToInt32Bits(vector)
                && Math.Abs(reference - exact) <= 1e-5 * magnitude;
        });
    }
}

using FsCheck;
using FsCheck.Fluent;
using ManagedLM.Kernels;

namespace ManagedLM.Tests.Kernels;

/// <summary>LayerNorm (BERT's norms) and the ungated GELU against their references.</summary>
public class LayerNormTests
{
    private static Arbitrary<(float[] X, float[] Weight, float[] Bias, int Offset)> Rows() =>
        (from x in KernelGen.Rows(1, 300).Generator
         from weights in Gen.ArrayOf(Gen.Choose(-2000, 2000).Select(i => i / 1000f), x.Length)
         from biases in Gen.ArrayOf(Gen.Choose(-2000, 2000).Select(i => i / 1000f), x.Length)
         from offset in Gen.Choose(1, 15)
         select (x, weights, biases, offset)).ToArbitrary();

    [Fact]
    public void Matches_the_double_reference_and_is_the_same_at_any_address_and_in_place() =>
        KernelGen.Check(Rows(), c =>
        {
            int n = c.X.Length;
            float[] actual = new float[n], expected = new float[n];
            LayerNorm.Apply(c.X, c.Weight, c.Bias, 1e-5f, actual);
            LayerNorm.Reference(c.X, c.Weight, c.Bias, 1e-5f, expected);
            // Relative to the row's spread: a constant row normalizes to the bias (its centred values are exact zeros).
            for (int i = 0; i < n; i++)
            {
                if (!(Math.Abs(actual[i] - expected[i]) <= 2e-4f * (Math.Abs(c.Weight[i]) + 1)))
                    throw new Exception($"element {i} of {n}: {actual[i]:R} vs {expected[i]:R}");
            }
            var moved = new float[n + c.Offset];
            c.X.CopyTo(moved, c.Offset);
            var row = moved.AsSpan(c.Offset, n);
            LayerNorm.Apply(row, c.Weight, c.Bias, 1e-5f, row);
            if (!row.SequenceEqual(actual))
                throw new Exception("the result depends on the address or on aliasing");
        });

    [Fact]
    public void Follows_ggml_norm_then_mul_then_add_step_by_step()
    {
        float[] x = [1f, 2f, 4f, 8f, 16f, 32f, 64f, 128f, 3f, -5f, 0.25f], weight = new float[x.Length], bias = new float[x.Length];
        for (int i = 0; i < x.Length; i++)
            (weight[i], bias[i]) = (0.5f + i / 7f, i / 3f - 1f);
        // ggml_norm: the sum in double, rounded; the centred squares summed in chunks of eight as ggml_vec_cvar_f32 (AVX2).
        double sum = 0;
        foreach (float v in x)
            sum += v;
        float mean = (float)sum / x.Length;
        float[] d = x.Select(v => v - mean).ToArray();
        float[] s = d.Select(v => v * v).ToArray();
        double squares = ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
        for (int i = 8; i < s.Length; i++)
            squares += s[i];
        float scale = 1.0f / MathF.Sqrt((float)(squares / x.Length) + 1e-12f);
        float[] expected = d.Select((v, i) => v * scale * weight[i] + bias[i]).ToArray();
        var actual = new float[x.Length];
        LayerNorm.Apply(x, weight, bias, 1e-12f, actual);
        Assert.Equal(expected, actual);
        LayerNorm.Apply(x, weight, [], 1e-12f, actual);
        Assert.Equal(d.Select((v, i) => v * scale * weight[i]).ToArray(), actual);
        Assert.Throws<ArgumentException>(() => LayerNorm.Apply(x, weight, new float[3], 1e-12f, actual));
        Assert.Throws<ArgumentException>(() => LayerNorm.Apply(x, weight[..4], bias, 1e-12f, actual));
    }

    [Fact]
    public void Ungated_gelu_is_the_table_element_by_element()
    {
        float[] x = [-11f, -10f, -1f, 0f, 1e-6f, 0.5f, 3f, 9.99f, 10f, 12f];
        float[] expected = x.Select(GeGlu.Gelu).ToArray(), actual = new float[x.Length];
        GeGlu.Gelu(x, actual);
        Assert.Equal(expected, actual);
        GeGlu.Gelu(x, x);
        Assert.Equal(expected, x);
        Assert.Throws<ArgumentException>(() => GeGlu.Gelu(new float[3], new float[2]));
    }
}

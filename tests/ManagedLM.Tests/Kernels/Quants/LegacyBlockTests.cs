using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ManagedLM.Kernels;
using ManagedLM.Kernels.Quants;

namespace ManagedLM.Tests.Kernels.Quants;

/// <summary>
/// Properties every 32-element legacy block type must have; one subclass per type supplies its error
/// bound and scalar reference dot.
/// </summary>
public abstract class LegacyBlockTests<T> where T : unmanaged, IQuantizableBlock<T>
{
    private const int MaxBlocks = 40;

    /// <summary>Largest |x − dequantize(quantize(x))| allowed for one block of values.</summary>
    protected abstract double ErrorBound(ReadOnlySpan<float> block);

    /// <summary>The scalar reference of <c>T.Dot</c>; the fast path must equal it bit for bit.</summary>
    private protected abstract float ReferenceDot(ReadOnlySpan<T> weights, ReadOnlySpan<byte> activation);

    /// <summary>How far the dot may stray from Σŵ·x̂ beyond F32 rounding: for Q8_1 dots, the F16 rounding of s.</summary>
    private protected virtual double DotSlack(ReadOnlySpan<T> weights, ReadOnlySpan<byte> activation) => 0;

    [Fact]
    public void Block_geometry_matches_ggml()
    {
        Assert.Equal(GgmlTypes.BlockBytes(T.Type), Unsafe.SizeOf<T>());
        Assert.Equal(GgmlTypes.BlockSize(T.Type), T.BlockSize);
        Assert.Equal(32, T.BlockSize);
    }

    [Fact]
    public void Quantize_then_dequantize_stays_within_the_error_bound() =>
        KernelGen.Check(KernelGen.Rows(32, MaxBlocks), x =>
        {
            float[] y = Dequantized(Quantized(x));
            for (int b = 0; b < x.Length / 32; b++)
            {
                var block = x.AsSpan(b * 32, 32);
                double bound = ErrorBound(block);
                for (int j = 0; j < 32; j++)
                {
                    double err = Math.Abs((double)x[b * 32 + j] - y[b * 32 + j]);
                    Assert.True(err <= bound, $"block {b} element {j}: x={x[b * 32 + j]:R} got {y[b * 32 + j]:R}, error {err:R} > bound {bound:R}");
                }
            }
        });

    [Fact]
    public void Requantizing_dequantized_values_gives_the_same_bytes() =>
        KernelGen.Check(KernelGen.Rows(32, MaxBlocks), x =>
        {
            T[] q = Quantized(x);
            AssertRequantized(q, Quantized(Dequantized(q)));
        });

    /// <summary>The symmetric and affine formats re-quantize their own dequantized values to the same bytes.</summary>
    private protected virtual void AssertRequantized(T[] original, T[] again) =>
        Assert.Equal(MemoryMarshal.AsBytes<T>(original).ToArray(), MemoryMarshal.AsBytes<T>(again).ToArray());

    [Fact]
    public void Fast_dot_equals_the_scalar_reference() =>
        KernelGen.Check(KernelGen.RowPairs(32, MaxBlocks), p =>
        {
            T[] w = Quantized(p.W);
            byte[] a = Activation(p.X);
            float fast = T.Dot(w, a), reference = ReferenceDot(w, a);
            Assert.True(fast == reference, $"fast {fast:R} != reference {reference:R}");
        });

    [Fact]
    public void Dot_matches_the_dequantized_dot_within_the_quantization_error() =>
        KernelGen.Check(KernelGen.RowPairs(32, MaxBlocks), p =>
        {
            T[] w = Quantized(p.W);
            byte[] a = Activation(p.X);
            float[] wd = Dequantized(w);
            float[] xd = new float[p.X.Length];
            Dequantize.Row(T.DotType, a, xd);
            double exact = 0, magnitude = 0, activationError = 0;
            for (int i = 0; i < wd.Length; i++)
            {
                exact += (double)wd[i] * xd[i];
                magnitude += Math.Abs((double)wd[i] * xd[i]);
            }
            for (int b = 0; b < wd.Length / 32; b++)
            {
                double bound = Q8ErrorBound(p.X.AsSpan(b * 32, 32));
                for (int j = b * 32; j < b * 32 + 32; j++)
                    activationError += Math.Abs(wd[j]) * bound;
            }
            double rounding = (w.Length + 16) * Math.ScaleB(1, -24) * magnitude + DotSlack(w, a) + 1e-30;
            float dot = T.Dot(w, a);
            Assert.True(Math.Abs(dot - exact) <= rounding, $"dot {dot:R} vs Σŵx̂ {exact:R}: off by {Math.Abs(dot - exact):R} > {rounding:R}");

            double trueDot = 0;
            for (int i = 0; i < wd.Length; i++)
                trueDot += (double)wd[i] * p.X[i];
            Assert.True(Math.Abs(dot - trueDot) <= rounding + activationError,
                $"dot {dot:R} vs Σŵx {trueDot:R}: off by {Math.Abs(dot - trueDot):R} > {rounding + activationError:R}");
        });

    [Fact]
    public unsafe void Dispatchers_route_the_type_to_its_block_functions()
    {
        var rng = new Random(7);
        const int rows = 3, cols = 96;
        float[] w = Enumerable.Range(0, rows * cols).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        float[] x = Enumerable.Range(0, cols).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        Assert.True(Dequantize.Supports(T.Type) && Quantize.Supports(T.Type) && MatVec.Supports(T.Type));

        byte[] matrix = new byte[rows * GgmlTypes.RowBytes(T.Type, cols)];
        Quantize.Row(T.Type, w, matrix);
        Assert.Equal(MemoryMarshal.AsBytes<T>(Quantized(w)).ToArray(), matrix);
        float[] back = new float[w.Length];
        Dequantize.Row(T.Type, matrix, back);
        Assert.Equal(Dequantized(Quantized(w)), back);

        Assert.Equal(T.DotType, MatVec.ActivationType(T.Type));
        byte[] act = new byte[MatVec.ActivationBytes(T.Type, cols)];
        MatVec.PrepareActivation(T.Type, x, act);
        Assert.Equal(Activation(x), act);
        float[] y = new float[rows - 1];
        long rowBytes = GgmlTypes.RowBytes(T.Type, cols);
        fixed (byte* pm = matrix)
            MatVec.Rows(T.Type, pm, rowBytes, cols, act, 1, y);
        for (int r = 1; r < rows; r++)
            Assert.Equal(T.Dot(MemoryMarshal.Cast<byte, T>(matrix.AsSpan((int)(r * rowBytes), (int)rowBytes)), act), y[r - 1]);
    }

    /// <summary>T.Quantize gives the same bytes as <paramref name="reference"/> on random rows.</summary>
    private protected static void AssertQuantizerMatches(QuantizeRow reference) =>
        KernelGen.Check(KernelGen.Rows(32, MaxBlocks), x =>
        {
            var expected = new T[x.Length / 32];
            reference(x, expected);
            Assert.Equal(MemoryMarshal.AsBytes<T>(expected).ToArray(), MemoryMarshal.AsBytes<T>(Quantized(x)).ToArray());
        });

    private protected delegate void QuantizeRow(ReadOnlySpan<float> src, Span<T> dst);

    /// <summary>Largest |x − dequantize(quantize_q8(x))| for one block: d/2 plus the F16 rounding of d times 127.</summary>
    protected static double Q8ErrorBound(ReadOnlySpan<float> block)
    {
        double amax = MaxAbs(block);
        return amax * (0.5 / 127 + Math.ScaleB(1, -11) + 1e-6) + 127 * Math.ScaleB(1, -25);
    }

    protected static double MaxAbs(ReadOnlySpan<float> block)
    {
        double amax = 0;
        foreach (float v in block)
            amax = Math.Max(amax, Math.Abs(v));
        return amax;
    }

    protected static T[] Quantized(float[] x)
    {
        var q = new T[x.Length / 32];
        T.Quantize(x, q);
        return q;
    }

    protected static float[] Dequantized(T[] q)
    {
        var y = new float[q.Length * 32];
        T.Dequantize(q, y);
        return y;
    }

    private static byte[] Activation(float[] x)
    {
        var a = new byte[GgmlTypes.RowBytes(T.DotType, x.Length)];
        Quantize.Row(T.DotType, x, a);
        return a;
    }
}

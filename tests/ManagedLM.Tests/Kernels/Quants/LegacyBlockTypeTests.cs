using ManagedLM.Kernels;
using ManagedLM.Kernels.Quants;

namespace ManagedLM.Tests.Kernels.Quants;

// Error bounds: d is the F32 scale the quantizer picks, stored as F16 (relative error ≤ 2^-11, or 2^-25
// absolute when subnormal), and every dequantized value is q·d(+m) for |q| ≤ qmax.

public class Q4_0BlockTests : LegacyBlockTests<Q4_0Block>
{
    // d = amax/8; the value opposite the extreme lands on q = 16, clamped to 15: error up to d.
    protected override double ErrorBound(ReadOnlySpan<float> x) => MaxAbs(x) * (1.0 / 8 + Math.ScaleB(1, -11) + 1e-6) + 8 * Math.ScaleB(1, -25);
    private protected override float ReferenceDot(ReadOnlySpan<Q4_0Block> w, ReadOnlySpan<byte> a) => LegacyDot.SignedReference(w, a);
}

public class Q5_0BlockTests : LegacyBlockTests<Q5_0Block>
{
    // d = amax/16; as Q4_0, the clamp at 31 allows an error of d.
    protected override double ErrorBound(ReadOnlySpan<float> x) => MaxAbs(x) * (1.0 / 16 + Math.ScaleB(1, -11) + 1e-6) + 16 * Math.ScaleB(1, -25);
    private protected override float ReferenceDot(ReadOnlySpan<Q5_0Block> w, ReadOnlySpan<byte> a) => LegacyDot.SignedReference(w, a);
}

public class Q8_0BlockTests : LegacyBlockTests<Q8_0Block>
{
    protected override double ErrorBound(ReadOnlySpan<float> x) => Q8ErrorBound(x);
    private protected override float ReferenceDot(ReadOnlySpan<Q8_0Block> w, ReadOnlySpan<byte> a) => LegacyDot.SignedReference(w, a);

    [Fact]
    public void Vector_quantizer_gives_the_reference_bytes() => AssertQuantizerMatches(Q8_0Block.QuantizeReference);
}

public class Q8_1BlockTests : LegacyBlockTests<Q8_1Block>
{
    protected override double ErrorBound(ReadOnlySpan<float> x) => Q8ErrorBound(x);
    // Q8_1 weights have only a scalar dot (ggml has none): check it against the formula read straight from the bytes.
    private protected override float ReferenceDot(ReadOnlySpan<Q8_1Block> w, ReadOnlySpan<byte> a)
    {
        ReadOnlySpan<byte> wb = System.Runtime.InteropServices.MemoryMarshal.AsBytes(w);
        float sum = 0;
        for (int b = 0; b < w.Length; b++)
        {
            ReadOnlySpan<byte> x = wb.Slice(b * 36, 36), y = a.Slice(b * 36, 36);
            int sumi = 0;
            for (int j = 4; j < 36; j++)
                sumi += (sbyte)x[j] * (sbyte)y[j];
            sum += sumi * (Float16.ToSingle(BitConverter.ToUInt16(x)) * Float16.ToSingle(BitConverter.ToUInt16(y)));
        }
        return sum;
    }

    // S = F16(Σq·d) is taken with the unrounded d, which the dequantized values no longer carry: D and Qs
    // come back exactly, S as F16(Σq·F16(d)).
    private protected override void AssertRequantized(Q8_1Block[] original, Q8_1Block[] again)
    {
        for (int b = 0; b < original.Length; b++)
        {
            Assert.Equal(original[b].D, again[b].D);
            Assert.Equal(((ReadOnlySpan<sbyte>)original[b].Qs).ToArray(), ((ReadOnlySpan<sbyte>)again[b].Qs).ToArray());
            int sum = 0;
            foreach (sbyte q in (ReadOnlySpan<sbyte>)original[b].Qs)
                sum += q;
            Assert.Equal(Float16.FromSingle(sum * Float16.ToSingle(original[b].D)), again[b].S);
        }
    }

    [Fact]
    public void Vector_quantizer_gives_the_reference_bytes() => AssertQuantizerMatches(Q8_1Block.QuantizeReference);
}

public class Q4_1BlockTests : LegacyBlockTests<Q4_1Block>
{
    protected override double ErrorBound(ReadOnlySpan<float> x) => AffineBound(x, 15);
    private protected override float ReferenceDot(ReadOnlySpan<Q4_1Block> w, ReadOnlySpan<byte> a) => LegacyDot.UnsignedReference(w, a);
    private protected override double DotSlack(ReadOnlySpan<Q4_1Block> w, ReadOnlySpan<byte> a) => MinTermSlack(w, a, b => b.M);

    internal static double AffineBound(ReadOnlySpan<float> x, int levels)
    {
        double min = double.MaxValue, max = double.MinValue;
        foreach (float v in x)
        {
            min = Math.Min(min, v);
            max = Math.Max(max, v);
        }
        // d/2 and levels·Δd from the scale, Δm from the offset, and F32 rounding of x − m and q·d + m.
        return (max - min) * (0.5 / levels + Math.ScaleB(1, -11)) + Math.Abs(min) * Math.ScaleB(1, -11)
            + MaxAbs(x) * Math.ScaleB(1, -21) + (levels + 1) * Math.ScaleB(1, -25);
    }

    /// <summary>Σ|m_w|·|s_a − d_a·Σq_a|: the stored s is d_a·Σq_a rounded to F16.</summary>
    internal static double MinTermSlack<TBlock>(ReadOnlySpan<TBlock> w, ReadOnlySpan<byte> a, Func<TBlock, ushort> min) where TBlock : unmanaged
    {
        var act = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Q8_1Block>(a);
        double slack = 0;
        for (int b = 0; b < w.Length; b++)
        {
            int sum = 0;
            for (int j = 0; j < 32; j++)
                sum += act[b].Qs[j];
            double exactS = (double)Float16.ToSingle(act[b].D) * sum;
            slack += Math.Abs(Float16.ToSingle(min(w[b]))) * Math.Abs(Float16.ToSingle(act[b].S) - exactS);
        }
        return slack;
    }
}

public class Q5_1BlockTests : LegacyBlockTests<Q5_1Block>
{
    protected override double ErrorBound(ReadOnlySpan<float> x) => Q4_1BlockTests.AffineBound(x, 31);
    private protected override float ReferenceDot(ReadOnlySpan<Q5_1Block> w, ReadOnlySpan<byte> a) => LegacyDot.UnsignedReference(w, a);
    private protected override double DotSlack(ReadOnlySpan<Q5_1Block> w, ReadOnlySpan<byte> a) => Q4_1BlockTests.MinTermSlack(w, a, b => b.M);
}

public class IQ4NLBlockTests : LegacyBlockTests<IQ4NLBlock>
{
    // Widest gap between levels is 24 (89..113); values near the positive extreme may sit 14 below it
    // (127 vs 113) before the least-squares refit of d moves the levels.
    protected override double ErrorBound(ReadOnlySpan<float> x) => MaxAbs(x) * 0.2 + 127 * Math.ScaleB(1, -25);
    private protected override float ReferenceDot(ReadOnlySpan<IQ4NLBlock> w, ReadOnlySpan<byte> a) => LegacyDot.SignedReference(w, a);
}

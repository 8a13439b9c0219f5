using FsCheck.Fluent;
using ManagedLM.Kernels;

namespace ManagedLM.Tests.Kernels;

/// <summary>Checks shared by the F16 and BF16 tests: vector rows against the scalar conversions, dots against the double reference.</summary>
internal static class HalfFormatChecks
{
    /// <summary>Every 4099th F32 bit pattern (about a million, all classes of value), in chunks of odd length.</summary>
    public static IEnumerable<float[]> SweepChunks()
    {
        const long step = 4099, chunk = 65535;
        for (long start = 0; start <= uint.MaxValue; start += step * chunk)
        {
            long count = Math.Min(chunk, (uint.MaxValue - start) / step + 1);
            yield return Enumerable.Range(0, (int)count).Select(i => BitConverter.UInt32BitsToSingle((uint)(start + i * step))).ToArray();
        }
    }

    /// <summary>The row conversions agree bit for bit with the scalar ones over <see cref="SweepChunks"/> and all 65536 16-bit patterns.</summary>
    public static void RowsMatchScalar(Func<float, ushort> narrow, Func<ushort, float> widen,
        SpanAction<float, ushort> narrowRow, SpanAction<ushort, float> widenRow)
    {
        foreach (float[] chunk in SweepChunks())
        {
            var row = new ushort[chunk.Length];
            narrowRow(chunk, row);
            for (int i = 0; i < chunk.Length; i++)
                Assert.True(narrow(chunk[i]) == row[i], $"0x{BitConverter.SingleToUInt32Bits(chunk[i]):X8}: row 0x{row[i]:X4}, scalar 0x{narrow(chunk[i]):X4}");
        }
        ushort[] all = Enumerable.Range(0, 65536).Select(i => (ushort)i).ToArray();
        foreach (int length in new[] { 65536, 65531 })
        {
            var wide = new float[length];
            widenRow(all.AsSpan(0, length), wide);
            for (int i = 0; i < length; i++)
                Assert.Equal(BitConverter.SingleToUInt32Bits(widen(all[i])), BitConverter.SingleToUInt32Bits(wide[i]));
        }
    }

    public delegate void SpanAction<TIn, TOut>(ReadOnlySpan<TIn> src, Span<TOut> dst);

    /// <summary>The vector dot stays within F32 summation error of the double reference, over random lengths and values.</summary>
    public static void DotMatchesReference(Func<float, ushort> narrow, Func<ReadOnlySpan<ushort>, ReadOnlySpan<float>, float> dot,
        Func<ushort, float> widen)
    {
        var arb = (from n in Gen.Choose(1, 700)
                   from a in Gen.ArrayOf(Gen.Choose(-100_000, 100_000).Select(i => i / 1000f), n)
                   from x in Gen.ArrayOf(Gen.Choose(-100_000, 100_000).Select(i => i / 1000f), n)
                   select (a, x)).ToArbitrary();
        KernelGen.Check(arb, p =>
        {
            ushort[] a = p.a.Select(narrow).ToArray();
            double exact = 0, magnitude = 0;
            for (int i = 0; i < a.Length; i++)
            {
                exact += (double)widen(a[i]) * p.x[i];
                magnitude += Math.Abs((double)widen(a[i]) * p.x[i]);
            }
            float got = dot(a, p.x);
            // Each of 32 lanes sums at most n/32 products, then 32 lanes and the scalar tail are added: (n + 40)·2^-24 is generous.
            double tolerance = (a.Length + 40) * Math.ScaleB(1, -24) * magnitude;
            Assert.True(Math.Abs(got - exact) <= tolerance, $"n={a.Length}: {got:R} vs {exact:R}");
        });
        Assert.Throws<ArgumentException>(() => dot(new ushort[3], new float[4]));
    }
}

using System.Runtime.Intrinsics;
using FsCheck;
using FsCheck.Fluent;
using ManagedLM.Kernels;

namespace ManagedLM.Tests.Kernels;

public class AttentionTests
{
    /// <summary>One attention call: a KV head's cache of <see cref="Length"/> positions and the query heads that read it.</summary>
    public sealed record Case(int KvHeads, int KvHead, int Heads, int HeadDim, int Length, float Scale, float[] Queries, float[] Keys, float[] Values,
        ScoreShape Shape = default)
    {
        public KvBlockLayout Layout => new(KvHeads, HeadDim);
        public override string ToString() => $"kvHeads {KvHeads} kvHead {KvHead} heads {Heads} headDim {HeadDim} length {Length} scale {Scale} {Shape}";
    }

    // Head dims that are not multiples of 16 leave value dimensions past the last run of 16 to a scalar loop.
    private static Arbitrary<Case> Cases(int maxLength) =>
        (from kvHeads in Gen.Choose(1, 4)
         from kvHead in Gen.Choose(0, kvHeads - 1)
         from heads in Gen.Choose(1, 12)
         from headDim in Gen.Elements(16, 32, 48, 64, 128, 8, 24, 40)
         from length in Gen.Frequency((1, Gen.Constant(0)), (2, Gen.Choose(1, 17)), (6, Gen.Choose(1, maxLength)))
         from scaleExp in Gen.Choose(-4, 1)
         from qExp in Gen.Choose(-3, 2)
         from queries in Gen.ArrayOf(Value(MathF.ScaleB(1, qExp)), heads * headDim)
         from keys in Gen.ArrayOf(Value(1), length * kvHeads * headDim)
         from values in Gen.ArrayOf(Value(1), length * kvHeads * headDim)
         from shape in Shapes
         select new Case(kvHeads, kvHead, heads, headDim, length, MathF.ScaleB(1, scaleExp) / MathF.Sqrt(headDim), queries, keys, values, shape)).ToArbitrary();

    // Mostly plain; otherwise a soft cap (Gemma 2), a sliding window (shorter or longer than the cache), or both.
    private static Gen<ScoreShape> Shapes =>
        from kind in Gen.Choose(0, 5)
        from cap in Gen.Elements(0.5f, 10f, 50f)
        from window in Gen.Choose(1, 40)
        select kind switch { 3 => new ScoreShape(cap), 4 => new ScoreShape(0, window), 5 => new ScoreShape(cap, window), _ => default };

    private static Gen<float> Value(float scale) =>
        Gen.Frequency(
            (12, Gen.Choose(-1_000_000, 1_000_000).Select(i => i / 1_000_000f * scale)),
            (1, Gen.Constant(0f)),
            (1, Gen.Choose(-8, 8).Select(i => i / 8f * scale)));

    private static (T[] Keys, T[] Values) Cache<T>(Case c, Func<float, T> convert)
    {
        var layout = c.Layout;
        var keys = new T[layout.Elements(Math.Max(c.Length, 1))];
        var values = new T[keys.Length];
        int row = layout.RowLength;
        for (int t = 0; t < c.Length; t++)
        {
            layout.WriteKey<T>(t, c.Keys.AsSpan(t * row, row).ToArray().Select(convert).ToArray(), keys);
            layout.WriteValue<T>(t, c.Values.AsSpan(t * row, row).ToArray().Select(convert).ToArray(), values);
        }
        return (keys, values);
    }

    private static float[] Run<T>(Case c, T[] keys, T[] values, Action<ReadOnlySpan<float>, int, T[], T[], Span<float>, Span<float>> attend, int heads = -1)
    {
        heads = heads < 0 ? c.Heads : heads;
        var output = new float[c.Heads * c.HeadDim];
        var scratch = new float[Attention.ScratchLength(heads, c.Length, c.HeadDim)];
        for (int h = 0; h < c.Heads; h += heads)
        {
            int n = Math.Min(heads, c.Heads - h);
            attend(c.Queries.AsSpan(h * c.HeadDim, n * c.HeadDim), n, keys, values, scratch, output.AsSpan(h * c.HeadDim, n * c.HeadDim));
        }
        return output;
    }

    private static float[] F16(Case c, int heads = -1)
    {
        var (keys, values) = Cache(c, Float16.FromSingle);
        return Run(c, keys, values, (q, n, k, v, s, o) => Attention.Attend(q, n, k, v, c.Layout, c.KvHead, c.Length, c.Scale, s, o, c.Shape), heads);
    }

    private static float[] F32(Case c, int heads = -1)
    {
        var (keys, values) = Cache(c, x => x);
        return Run(c, keys, values, (q, n, k, v, s, o) => Attention.Attend(q, n, k, v, c.Layout, c.KvHead, c.Length, c.Scale, s, o, c.Shape), heads);
    }

    private static float[] Scalar<T>(Case c, Func<float, T> convert) where T : unmanaged
    {
        var (keys, values) = Cache(c, convert);
        return Run(c, keys, values, (q, n, k, v, s, o) => Attention.AttendScalar<T>(q, n, k, v, c.Layout, c.KvHead, c.Length, c.Scale, s, o, c.Shape));
    }

    private static float[] Vector<TL, TV, T>(Case c, Func<float, T> convert) where TL : struct, ILanes16<TV> where TV : struct where T : unmanaged
    {
        var (keys, values) = Cache(c, convert);
        return Run(c, keys, values, (q, n, k, v, s, o) => Attention.Attend<TL, TV, T>(q, 1, n * c.HeadDim, n, k, v, c.Layout, c.KvHead, c.Length, c.Scale, s, o, typeof(T) == typeof(ushort), c.Shape));
    }

    private static void AssertSameBits(float[] expected, float[] actual, string what)
    {
        for (int i = 0; i < expected.Length; i++)
        {
            bool same = BitConverter.SingleToUInt32Bits(expected[i]) == BitConverter.SingleToUInt32Bits(actual[i])
                || (float.IsNaN(expected[i]) && float.IsNaN(actual[i]));
            Assert.True(same, $"{what}: [{i}] {actual[i]:R}, expected {expected[i]:R}");
        }
    }

    [Fact]
    public void Every_path_equals_the_scalar_kernel_bit_for_bit() =>
        KernelGen.Check(Cases(80), c =>
        {
            float[] f16 = Scalar<ushort>(c, Float16.FromSingle), f32 = Scalar<float>(c, x => x);
            AssertSameBits(f16, F16(c), $"F16 {c}");
            AssertSameBits(f32, F32(c), $"F32 {c}");
            if (Vector256.IsHardwareAccelerated)
            {
                AssertSameBits(f16, Vector<Lanes256, Lanes256.Pair, ushort>(c, Float16.FromSingle), $"F16 256-bit {c}");
                AssertSameBits(f32, Vector<Lanes256, Lanes256.Pair, float>(c, x => x), $"F32 256-bit {c}");
            }
            if (Vector512.IsHardwareAccelerated)
            {
                AssertSameBits(f16, Vector<Lanes512, Vector512<float>, ushort>(c, Float16.FromSingle), $"F16 512-bit {c}");
                AssertSameBits(f32, Vector<Lanes512, Vector512<float>, float>(c, x => x), $"F32 512-bit {c}");
            }
        });

    [Fact]
    public void A_head_gives_the_same_bits_alone_or_with_the_others() =>
        KernelGen.Check(Cases(80), c =>
        {
            AssertSameBits(F16(c), F16(c, heads: 1), $"F16 {c}");
            AssertSameBits(F32(c), F32(c, heads: 3), $"F32 {c}");
        });

    [Fact]
    public void Matches_the_double_reference() =>
        KernelGen.Check(Cases(300), c =>
        {
            foreach (bool half in new[] { true, false })
            {
                // The reference reads the cache's values: F16-rounded keys and values for the F16 kernel.
                float[] keys = half ? c.Keys.Select(x => Float16.ToSingle(Float16.FromSingle(x))).ToArray() : c.Keys;
                float[] values = half ? c.Values.Select(x => Float16.ToSingle(Float16.FromSingle(x))).ToArray() : c.Values;
                var expected = new float[c.Heads * c.HeadDim];
                Attention.Reference(c.Queries, c.Heads, keys, values, c.KvHeads, c.HeadDim, c.KvHead, c.Length, c.Scale, half, expected, c.Shape);
                float[] actual = half ? F16(c) : F32(c);
                // A weight may round to the neighbouring F16 value (2^-11 relative) where float and double softmax
                // straddle a tie; sums of ≤ 300 float products add ~300·2^-24 relative. Values are at most 1 in magnitude.
                float tolerance = half ? 2e-3f : 2e-5f;
                for (int i = 0; i < expected.Length; i++)
                    Assert.True(Math.Abs(actual[i] - expected[i]) <= tolerance, $"{(half ? "F16" : "F32")} {c}: [{i}] {actual[i]:R}, reference {expected[i]:R}");
            }
        });

    /// <summary>Causal rows of one call: the case's cache, <paramref name="Rows"/> rows ending at its length, rows <paramref name="RowStride"/> apart.</summary>
    public sealed record Chunk(Case Case, int Rows, int RowStride, float[] Queries)
    {
        public int First => Case.Length - Rows + 1;
        public override string ToString() => $"{Case} rows {Rows} rowStride {RowStride}";
    }

    private static Arbitrary<Chunk> Chunks() =>
        (from c in Cases(80).Generator
         from rows in Gen.Choose(1, Math.Min(12, c.Length + 1))
         from pad in Gen.Elements(0, 0, 16, 3)
         from queries in Gen.ArrayOf(Value(0.5f), rows * (c.Heads * c.HeadDim + pad))
         select new Chunk(c, rows, c.Heads * c.HeadDim + pad, queries)).ToArbitrary();

    private delegate void RowsKernel<T>(ReadOnlySpan<float> queries, int rows, int rowStride, int heads, ReadOnlySpan<T> keys, ReadOnlySpan<T> values,
        KvBlockLayout layout, int kvHead, int length, float scale, Span<float> scratch, Span<float> output, ScoreShape shape);

    // Row j alone over [0, First + j), by the scalar kernel: what every path must give the rows of one call.
    private static float[] RowByRow<T>(Chunk p, Func<float, T> convert) where T : unmanaged
    {
        var c = p.Case;
        var (keys, values) = Cache(c, convert);
        var output = new float[p.Queries.Length];
        int n = c.Heads * c.HeadDim;
        for (int j = 0; j < p.Rows; j++)
            Attention.AttendScalar<T>(p.Queries.AsSpan(j * p.RowStride, n), c.Heads, keys, values, c.Layout, c.KvHead, p.First + j, c.Scale,
                new float[Attention.ScratchLength(c.Heads, p.First + j, c.HeadDim)], output.AsSpan(j * p.RowStride, n), c.Shape);
        return output;
    }

    private static float[] Together<T>(Chunk p, Func<float, T> convert, RowsKernel<T> attend) where T : unmanaged
    {
        var c = p.Case;
        var (keys, values) = Cache(c, convert);
        var output = new float[p.Queries.Length];
        attend(p.Queries, p.Rows, p.RowStride, c.Heads, keys, values, c.Layout, c.KvHead, p.First, c.Scale,
            new float[Attention.ScratchLength(p.Rows, c.Heads, p.First, c.HeadDim)], output, c.Shape);
        return output;
    }

    [Fact]
    public void Consecutive_positions_in_one_call_give_each_row_its_own_bits() =>
        KernelGen.Check(Chunks(), p =>
        {
            float[] f16 = RowByRow<ushort>(p, Float16.FromSingle), f32 = RowByRow<float>(p, x => x);
            AssertSameBits(f16, Together<ushort>(p, Float16.FromSingle, Attention.Attend), $"F16 {p}");
            AssertSameBits(f32, Together<float>(p, x => x, Attention.Attend), $"F32 {p}");
            AssertSameBits(f16, Together<ushort>(p, Float16.FromSingle, Half(Attention.AttendScalar)), $"F16 scalar {p}");
            AssertSameBits(f16, Together<ushort>(p, Float16.FromSingle, Widened), $"F16 widened {p}");
            if (Vector256.IsHardwareAccelerated)
            {
                AssertSameBits(f16, Together<ushort>(p, Float16.FromSingle, Half(Attention.Attend<Lanes256, Lanes256.Pair, ushort>)), $"F16 256-bit {p}");
                AssertSameBits(f32, Together<float>(p, x => x, Full(Attention.Attend<Lanes256, Lanes256.Pair, float>)), $"F32 256-bit {p}");
            }
            if (Vector512.IsHardwareAccelerated)
            {
                AssertSameBits(f16, Together<ushort>(p, Float16.FromSingle, Half(Attention.Attend<Lanes512, Vector512<float>, ushort>)), $"F16 512-bit {p}");
                AssertSameBits(f32, Together<float>(p, x => x, Full(Attention.Attend<Lanes512, Vector512<float>, float>)), $"F32 512-bit {p}");
            }
        });

    private delegate void RoundingKernel<T>(ReadOnlySpan<float> queries, int rows, int rowStride, int heads, ReadOnlySpan<T> keys, ReadOnlySpan<T> values,
        KvBlockLayout layout, int kvHead, int length, float scale, Span<float> scratch, Span<float> output, bool half, ScoreShape shape, bool causal);

    private static RowsKernel<ushort> Half(RoundingKernel<ushort> kernel) =>
        (q, r, rs, h, k, v, l, kv, n, sc, s, o, sh) => kernel(q, r, rs, h, k, v, l, kv, n, sc, s, o, true, sh, true);

    private static RowsKernel<float> Full(RoundingKernel<float> kernel, bool causal = true) =>
        (q, r, rs, h, k, v, l, kv, n, sc, s, o, sh) => kernel(q, r, rs, h, k, v, l, kv, n, sc, s, o, false, sh, causal);

    // Every row of a chunk alone over all of the case's positions, by the scalar kernel: what bidirectional rows must give.
    private static float[] RowByRowOverAll(Chunk p)
    {
        var c = p.Case;
        var (keys, values) = Cache(c, x => x);
        var output = new float[p.Queries.Length];
        int n = c.Heads * c.HeadDim;
        for (int j = 0; j < p.Rows; j++)
            Attention.AttendScalar<float>(p.Queries.AsSpan(j * p.RowStride, n), c.Heads, keys, values, c.Layout, c.KvHead, c.Length, c.Scale,
                new float[Attention.ScratchLength(c.Heads, c.Length, c.HeadDim)], output.AsSpan(j * p.RowStride, n), c.Shape);
        return output;
    }

    // The chunk's rows attending over all of the case's positions in one call.
    private static float[] AllTogether(Chunk p, RowsKernel<float> attend)
    {
        var c = p.Case;
        var (keys, values) = Cache(c, x => x);
        var output = new float[p.Queries.Length];
        attend(p.Queries, p.Rows, p.RowStride, c.Heads, keys, values, c.Layout, c.KvHead, c.Length, c.Scale,
            new float[Attention.ScratchLength(p.Rows, c.Heads, c.Length, c.HeadDim)], output, c.Shape);
        return output;
    }

    [Fact]
    public void Bidirectional_rows_in_one_call_give_each_row_the_bits_it_gets_alone_over_every_position() =>
        KernelGen.Check(Chunks(), p =>
        {
            float[] expected = RowByRowOverAll(p);
            AssertSameBits(expected, AllTogether(p, Attention.AttendAll), $"F32 {p}");
            AssertSameBits(expected, AllTogether(p, Full(Attention.AttendScalar, causal: false)), $"F32 scalar {p}");
            if (Vector256.IsHardwareAccelerated)
                AssertSameBits(expected, AllTogether(p, Full(Attention.Attend<Lanes256, Lanes256.Pair, float>, causal: false)), $"F32 256-bit {p}");
            if (Vector512.IsHardwareAccelerated)
                AssertSameBits(expected, AllTogether(p, Full(Attention.Attend<Lanes512, Vector512<float>, float>, causal: false)), $"F32 512-bit {p}");
        });

    // The F16 cache's KV head widened to F32 (whole blocks, as a prompt chunk widens it), then attended.
    private static void Widened(ReadOnlySpan<float> queries, int rows, int rowStride, int heads, ReadOnlySpan<ushort> keys, ReadOnlySpan<ushort> values,
        KvBlockLayout layout, int kvHead, int length, float scale, Span<float> scratch, Span<float> output, ScoreShape shape)
    {
        var wide = new KvBlockLayout(1, layout.HeadDim);
        int blocks = KvBlockLayout.Blocks(length + rows - 1);
        var wideKeys = new float[wide.Elements(length + rows - 1)];
        var wideValues = new float[wideKeys.Length];
        // In two steps, as a chunk's spans extend what is widened.
        Attention.Widen(keys, values, layout, kvHead, 0, blocks / 2, wideKeys, wideValues);
        Attention.Widen(keys, values, layout, kvHead, blocks / 2, blocks, wideKeys, wideValues);
        Attention.AttendWidened(queries, rows, rowStride, heads, wideKeys, wideValues, wide, 0, length, scale, scratch, output, shape);
    }

    [Fact]
    public void Attention_weights_sum_to_one_so_equal_values_come_back()
    {
        // Every position holds the same value row: the output is that row whatever the scores.
        var layout = new KvBlockLayout(2, 32);
        const int length = 45;
        var rng = new Random(3);
        var keys = new ushort[layout.Elements(length)];
        var values = new ushort[keys.Length];
        var row = Enumerable.Range(0, layout.RowLength).Select(i => (float)(i % 7) / 4).ToArray();
        for (int t = 0; t < length; t++)
        {
            layout.WriteKey(t, Enumerable.Range(0, layout.RowLength).Select(_ => Float16.FromSingle((float)rng.NextDouble())).ToArray(), keys);
            layout.WriteValue(t, row.Select(Float16.FromSingle).ToArray(), values);
        }
        var q = Enumerable.Range(0, 3 * 32).Select(_ => (float)rng.NextDouble()).ToArray();
        var output = new float[q.Length];
        Attention.Attend(q, 3, keys, values, layout, 1, length, 0.2f, new float[Attention.ScratchLength(3, length, 32)], output);
        for (int h = 0; h < 3; h++)
        {
            for (int d = 0; d < 32; d++)
                Assert.Equal(row[32 + d], output[h * 32 + d], 2e-3f);
        }
    }

    [Fact]
    public void Infinite_and_NaN_cache_values_reach_the_output_the_same_way_on_every_path()
    {
        var layout = new KvBlockLayout(1, 32);
        const int length = 20;
        var keys = new ushort[layout.Elements(length)];
        var values = new ushort[keys.Length];
        for (int t = 0; t < length; t++)
        {
            var k = Enumerable.Range(0, 32).Select(i => Float16.FromSingle(MathF.Sin(t + i))).ToArray();
            var v = Enumerable.Range(0, 32).Select(i => Float16.FromSingle(MathF.Cos(t * i))).ToArray();
            if (t == 7)
                v[3] = 0x7C00; // +∞ (F16 overflow)
            if (t == 11)
                v[9] = 0x7E00; // NaN
            layout.WriteKey<ushort>(t, k, keys);
            layout.WriteValue<ushort>(t, v, values);
        }
        var q = Enumerable.Range(0, 64).Select(i => MathF.Cos(i) / 4).ToArray();
        var scratch = new float[Attention.ScratchLength(2, length, 32)];
        var expected = new float[64];
        Attention.AttendScalar<ushort>(q, 2, keys, values, layout, 0, length, 0.5f, scratch, expected);
        Assert.True(float.IsPositiveInfinity(expected[3]) && float.IsNaN(expected[9]));
        var actual = new float[64];
        Attention.Attend(q, 2, keys, values, layout, 0, length, 0.5f, scratch, actual);
        AssertSameBits(expected, actual, "public");
        if (Vector256.IsHardwareAccelerated)
        {
            Attention.Attend<Lanes256, Lanes256.Pair, ushort>(q, 1, 64, 2, keys, values, layout, 0, length, 0.5f, scratch, actual, true);
            AssertSameBits(expected, actual, "256-bit");
        }
    }

    [Fact]
    public void Rejects_buffers_that_do_not_match_the_geometry()
    {
        var layout = new KvBlockLayout(2, 16);
        var cache = new ushort[layout.Elements(20)];
        var q = new float[32];
        Assert.Throws<ArgumentException>(() => Attention.Attend(q, 2, cache, cache, layout, 0, 40, 1f, new float[Attention.ScratchLength(2, 40, 16)], new float[32]));
        Assert.Throws<ArgumentException>(() => Attention.Attend(q, 2, cache, cache, layout, 2, 20, 1f, new float[Attention.ScratchLength(2, 20, 16)], new float[32]));
        Assert.Throws<ArgumentException>(() => Attention.Attend(q, 2, cache, cache, layout, 0, 20, 1f, new float[10], new float[32]));
        Assert.Throws<ArgumentException>(() => Attention.Attend(q, 3, cache, cache, layout, 0, 20, 1f, new float[Attention.ScratchLength(3, 20, 16)], new float[48]));
    }
}

public class KvBlockLayoutTests
{
    [Fact]
    public void Rows_come_back_as_written_and_blocks_are_a_position_prefix() =>
        KernelGen.Check((from kvHeads in Gen.Choose(1, 4)
                         from headDim in Gen.Choose(1, 40)
                         from length in Gen.Choose(1, 70)
                         select (kvHeads, headDim, length)).ToArbitrary(), p =>
        {
            var layout = new KvBlockLayout(p.kvHeads, p.headDim);
            var keys = new int[layout.Elements(p.length)];
            var values = new int[keys.Length];
            int row = layout.RowLength;
            for (int t = 0; t < p.length; t++)
            {
                layout.WriteKey(t, Enumerable.Range(t * row, row).ToArray(), keys);
                layout.WriteValue(t, Enumerable.Range(t * row, row).Select(x => -x).ToArray(), values);
            }
            var key = new int[row];
            var value = new int[row];
            for (int t = 0; t < p.length; t++)
            {
                layout.ReadKey<int>(t, keys, key);
                layout.ReadValue<int>(t, values, value);
                Assert.Equal(Enumerable.Range(t * row, row), key);
                Assert.Equal(Enumerable.Range(t * row, row).Select(x => -x), value);
                // Every element of position t lies in the first Elements(t + 1) elements.
                Assert.True(Array.IndexOf(keys, t * row + row - 1) < layout.Elements(t + 1));
            }
            Assert.Equal(KvBlockLayout.Blocks(p.length) * KvBlockLayout.BlockLength * row, layout.Elements(p.length));
        });

    [Fact]
    public void A_key_dimension_of_a_block_is_16_positions_side_by_side()
    {
        var layout = new KvBlockLayout(2, 3);
        var keys = new int[layout.Elements(32)];
        for (int t = 0; t < 32; t++)
            layout.WriteKey(t, Enumerable.Range(0, 6).Select(i => 100 * t + i).ToArray(), keys);
        // Block 1, KV head 1, dimension 2: positions 16..31 of key element 1·3 + 2.
        int at = 1 * layout.BlockElements + 1 * 3 * 16 + 2 * 16;
        Assert.Equal(Enumerable.Range(16, 16).Select(t => 100 * t + 5), keys.AsSpan(at, 16).ToArray());
    }

    [Fact]
    public void Rejects_rows_and_caches_too_short()
    {
        var layout = new KvBlockLayout(2, 4);
        Assert.Throws<ArgumentException>(() => layout.WriteKey<int>(0, new int[7], new int[layout.Elements(1)]));
        Assert.Throws<ArgumentException>(() => layout.WriteValue<int>(16, new int[8], new int[layout.Elements(16)]));
        Assert.Throws<ArgumentException>(() => layout.ReadKey<int>(-1, new int[layout.Elements(1)], new int[8]));
    }
}

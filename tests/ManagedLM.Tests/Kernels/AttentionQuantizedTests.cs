using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using FsCheck;
using FsCheck.Fluent;
using ManagedLM.Kernels;
using ManagedLM.Kernels.Quants;
using Width = ManagedLM.Kernels.AttentionQuantized.Width;

namespace ManagedLM.Tests.Kernels;

/// <summary>
/// Attention over a Q8_0 / Q4_0 cache: the stored blocks are what ggml's reference quantizer makes of each row, and every
/// path gives the bits of the F32 scalar kernel over the cache dequantized row by row.
/// </summary>
public class AttentionQuantizedTests
{
    /// <summary>One attention call over a quantized cache of <see cref="Length"/> positions.</summary>
    public sealed record Case(GgmlType Type, int KvHeads, int KvHead, int Heads, int HeadDim, int Length, float Scale, float[] Queries, float[] Keys, float[] Values)
    {
        public KvQuantLayout Layout => new(new KvBlockLayout(KvHeads, HeadDim), Type);
        public override string ToString() => $"{Type} kvHeads {KvHeads} kvHead {KvHead} heads {Heads} headDim {HeadDim} length {Length} scale {Scale}";
    }

    private static readonly Width[] Widths =
        [Width.Scalar, .. Avx2.IsSupported ? new[] { Width.Avx2 } : [], .. Avx512F.IsSupported && Avx512BW.IsSupported ? new[] { Width.Avx512 } : []];

    // KV heads so that a row (kvHeads · headDim) is a multiple of 32: head dims below 32, not multiples of 32 or of 16,
    // and lengths past the eight blocks dequantized at a time.
    private static Gen<(int KvHeads, int HeadDim)> Geometry() =>
        from headDim in Gen.Elements(8, 16, 24, 32, 40, 48, 64, 80, 96, 128)
        from times in Gen.Choose(1, 2)
        select (32 / Gcd(headDim, 32) * times, headDim);

    private static Arbitrary<Case> Cases(int maxLength) =>
        (from type in Gen.Elements(GgmlType.Q8_0, GgmlType.Q4_0)
         from g in Geometry()
         from kvHead in Gen.Choose(0, g.KvHeads - 1)
         from heads in Gen.Choose(1, 12)
         from length in Gen.Frequency((1, Gen.Constant(0)), (2, Gen.Choose(1, 17)), (6, Gen.Choose(1, maxLength)))
         from scaleExp in Gen.Choose(-4, 1)
         from qExp in Gen.Choose(-3, 2)
         from queries in Gen.ArrayOf(Value(MathF.ScaleB(1, qExp)), heads * g.HeadDim)
         from keys in Gen.ArrayOf(Value(1), length * g.KvHeads * g.HeadDim)
         from values in Gen.ArrayOf(Value(1), length * g.KvHeads * g.HeadDim)
         select new Case(type, g.KvHeads, kvHead, heads, g.HeadDim, length, MathF.ScaleB(1, scaleExp) / MathF.Sqrt(g.HeadDim), queries, keys, values)).ToArbitrary();

    private static Gen<float> Value(float scale) =>
        Gen.Frequency(
            (12, Gen.Choose(-1_000_000, 1_000_000).Select(i => i / 1_000_000f * scale)),
            (1, Gen.Constant(0f)),
            (1, Gen.Choose(-8, 8).Select(i => i / 8f * scale)));

    private static int Gcd(int a, int b) => b == 0 ? a : Gcd(b, a % b);

    private static (byte[] Keys, byte[] Values) Cache(Case c, int positions)
    {
        var layout = c.Layout;
        var keys = new byte[layout.Bytes(Math.Max(positions, 1))];
        var values = new byte[keys.Length];
        int row = layout.Heads.RowLength;
        for (int t = 0; t < positions; t++)
        {
            layout.WriteKey(t, c.Keys.AsSpan(t * row, row), keys);
            layout.WriteValue(t, c.Values.AsSpan(t * row, row), values);
        }
        return (keys, values);
    }

    // What ggml stores for a row and reads back: each block of 32 quantized by the reference quantizer, then dequantized.
    private static byte[] GgmlBlocks(GgmlType type, ReadOnlySpan<float> row)
    {
        int blocks = row.Length / 32;
        if (type == GgmlType.Q8_0)
        {
            var q = new Q8_0Block[blocks];
            Q8_0Block.QuantizeReference(row, q);
            return MemoryMarshal.AsBytes(q.AsSpan()).ToArray();
        }
        var q4 = new Q4_0Block[blocks];
        Q4_0Block.Quantize(row, q4);
        return MemoryMarshal.AsBytes(q4.AsSpan()).ToArray();
    }

    private static float[] Dequantized(GgmlType type, ReadOnlySpan<float> row)
    {
        byte[] bytes = GgmlBlocks(type, row);
        var y = new float[row.Length];
        if (type == GgmlType.Q8_0)
            Q8_0Block.Dequantize(MemoryMarshal.Cast<byte, Q8_0Block>(bytes), y);
        else
            Q4_0Block.Dequantize(MemoryMarshal.Cast<byte, Q4_0Block>(bytes), y);
        return y;
    }

    // The reference: the F32 scalar kernel over an F32 cache that holds each row as ggml dequantizes it.
    private static (float[] Keys, float[] Values, KvBlockLayout Layout) DequantizedCache(Case c, int positions)
    {
        var layout = new KvBlockLayout(c.KvHeads, c.HeadDim);
        var keys = new float[layout.Elements(Math.Max(positions, 1))];
        var values = new float[keys.Length];
        int row = layout.RowLength;
        for (int t = 0; t < positions; t++)
        {
            layout.WriteKey<float>(t, Dequantized(c.Type, c.Keys.AsSpan(t * row, row)), keys);
            layout.WriteValue<float>(t, Dequantized(c.Type, c.Values.AsSpan(t * row, row)), values);
        }
        return (keys, values, layout);
    }

    private static float[] Reference(Case c, ScoreShape shape = default)
    {
        var (keys, values, layout) = DequantizedCache(c, c.Length);
        var output = new float[c.Heads * c.HeadDim];
        Attention.AttendScalar(c.Queries, 1, output.Length, c.Heads, keys, values, layout, c.KvHead, c.Length, c.Scale,
            new float[Attention.ScratchLength(c.Heads, c.Length, c.HeadDim)], output, false, shape);
        return output;
    }

    private delegate void Kernel(ReadOnlySpan<float> queries, int rows, int rowStride, int heads, ReadOnlySpan<byte> keys, ReadOnlySpan<byte> values,
        KvQuantLayout layout, int kvHead, int length, float scale, Span<float> scratch, Span<float> output, ScoreShape shape);

    private static IEnumerable<(string Name, Kernel Kernel)> Kernels()
    {
        yield return ("public", AttentionQuantized.Attend);
        yield return ("scalar", AttentionQuantized.AttendScalar);
        if (Vector256.IsHardwareAccelerated)
            yield return ("256-bit", AttentionQuantized.Attend<Lanes256, Lanes256.Pair>);
        if (Vector512.IsHardwareAccelerated)
            yield return ("512-bit", AttentionQuantized.Attend<Lanes512, Vector512<float>>);
        if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported && Avx512BW.IsSupported)
        {
            // One row of one head with whole quant blocks: the kernel that fuses the dequantizing into its chains.
            yield return ("one row", (q, r, rs, h, k, v, l, kv, n, sc, s, o, shape) =>
            {
                if (r * h == 1 && AttentionQuantized.OneRowFits(l, n))
                    AttentionQuantized.AttendOne(q, k, v, l, kv, n, sc, s, o, shape);
                else
                    AttentionQuantized.Attend<Lanes512, Vector512<float>>(q, r, rs, h, k, v, l, kv, n, sc, s, o, shape);
            });
        }
    }

    private static float[] Run(Case c, Kernel kernel, int heads = -1, ScoreShape shape = default)
    {
        heads = heads < 0 ? c.Heads : heads;
        var (keys, values) = Cache(c, c.Length);
        var output = new float[c.Heads * c.HeadDim];
        var scratch = new float[AttentionQuantized.ScratchLength(1, heads, c.Length, c.HeadDim)];
        for (int h = 0; h < c.Heads; h += heads)
        {
            int n = Math.Min(heads, c.Heads - h);
            kernel(c.Queries.AsSpan(h * c.HeadDim, n * c.HeadDim), 1, n * c.HeadDim, n, keys, values, c.Layout, c.KvHead, c.Length, c.Scale,
                scratch, output.AsSpan(h * c.HeadDim, n * c.HeadDim), shape);
        }
        return output;
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
    public void Stored_blocks_are_ggml_reference_quants_of_each_row() =>
        KernelGen.Check((from type in Gen.Elements(GgmlType.Q8_0, GgmlType.Q4_0)
                         from g in Geometry()
                         from length in Gen.Choose(1, 40)
                         from scaleExp in Gen.Choose(-8, 8)
                         from keys in Gen.ArrayOf(Value(MathF.ScaleB(1, scaleExp)), length * g.KvHeads * g.HeadDim)
                         from values in Gen.ArrayOf(Value(MathF.ScaleB(1, -scaleExp)), length * g.KvHeads * g.HeadDim)
                         select new Case(type, g.KvHeads, 0, 1, g.HeadDim, length, 1, [], keys, values)).ToArbitrary(), c =>
        {
            var layout = c.Layout;
            var (keys, values) = Cache(c, c.Length);
            int row = layout.Heads.RowLength;
            var blocks = new byte[layout.RowBytes];
            var read = new float[row];
            for (int t = 0; t < c.Length; t++)
            {
                var key = c.Keys.AsSpan(t * row, row);
                var value = c.Values.AsSpan(t * row, row);
                layout.ReadKeyBlocks(t, keys, blocks);
                Assert.Equal(GgmlBlocks(c.Type, key), blocks);
                layout.ReadValueBlocks(t, values, blocks);
                Assert.Equal(GgmlBlocks(c.Type, value), blocks);
                layout.ReadKey(t, keys, read);
                AssertSameBits(Dequantized(c.Type, key), read, $"key {t} {c}");
                layout.ReadValue(t, values, read);
                AssertSameBits(Dequantized(c.Type, value), read, $"value {t} {c}");
                // Every byte of position t lies in the first Bytes(t + 1).
                Assert.True(layout.Bytes(t + 1) <= keys.Length);
            }
            // The blocks written back give the same cache bytes.
            var keys2 = new byte[keys.Length];
            var values2 = new byte[values.Length];
            for (int t = 0; t < c.Length; t++)
            {
                layout.ReadKeyBlocks(t, keys, blocks);
                layout.WriteKeyBlocks(t, blocks, keys2);
                layout.ReadValueBlocks(t, values, blocks);
                layout.WriteValueBlocks(t, blocks, values2);
            }
            Assert.Equal(keys.AsSpan(0, (int)layout.Bytes(c.Length)).ToArray(), keys2.AsSpan(0, (int)layout.Bytes(c.Length)).ToArray());
            Assert.Equal(values.AsSpan(0, (int)layout.Bytes(c.Length)).ToArray(), values2.AsSpan(0, (int)layout.Bytes(c.Length)).ToArray());
        });

    [Fact]
    public void Blocks_take_the_bytes_of_ggml_blocks()
    {
        // stories110M's shape: 12 KV heads of 64; 16 positions of F16 take 16 · 768 · 2 bytes.
        var heads = new KvBlockLayout(12, 64);
        Assert.Equal(16 * 768 * 2 * 34 / 64, new KvQuantLayout(heads, GgmlType.Q8_0).BlockBytes);
        Assert.Equal(16 * 768 * 2 * 18 / 64, new KvQuantLayout(heads, GgmlType.Q4_0).BlockBytes);
        Assert.Equal(24 * 34, new KvQuantLayout(heads, GgmlType.Q8_0).RowBytes);
        // stories260K's: 4 KV heads of 8, one quant block per row, shared by the four heads.
        var small = new KvQuantLayout(new KvBlockLayout(4, 8), GgmlType.Q8_0);
        Assert.Equal((4, 1, 16 * 34), (small.GroupHeads, small.GroupBlocks, small.BlockBytes));
        Assert.Throws<ArgumentException>(() => new KvQuantLayout(new KvBlockLayout(1, 16), GgmlType.Q8_0));
        Assert.Throws<ArgumentException>(() => new KvQuantLayout(new KvBlockLayout(3, 40), GgmlType.Q4_0));
        Assert.Throws<ArgumentException>(() => new KvQuantLayout(heads, GgmlType.Q4_K));
    }

    [Fact]
    public void Every_dequantizer_width_gives_the_rows_ggml_reads_back() =>
        KernelGen.Check(Cases(70), c =>
        {
            var layout = c.Layout;
            var (keys, values) = Cache(c, c.Length);
            var (wideKeys, wideValues, wide) = DequantizedCache(c, c.Length);
            int blocks = KvBlockLayout.Blocks(c.Length), n = 16 * c.HeadDim;
            // The F32 cache's blocks of this KV head, in KvBlockLayout(1, headDim).
            var expectedKeys = new float[blocks * n];
            var expectedValues = new float[blocks * n];
            for (int b = 0; b < blocks; b++)
            {
                wideKeys.AsSpan(b * wide.BlockElements + c.KvHead * n, n).CopyTo(expectedKeys.AsSpan(b * n));
                wideValues.AsSpan(b * wide.BlockElements + c.KvHead * n, n).CopyTo(expectedValues.AsSpan(b * n));
            }
            foreach (var width in Widths)
            {
                var k = new float[expectedKeys.Length];
                var v = new float[expectedValues.Length];
                // In two calls, from the middle, as a prompt's spans extend what is widened.
                AttentionQuantized.DequantizeKeys(keys, layout, c.KvHead, 0, blocks / 2, k, width);
                AttentionQuantized.DequantizeKeys(keys, layout, c.KvHead, blocks / 2, blocks, k.AsSpan(blocks / 2 * n), width);
                AttentionQuantized.DequantizeValues(values, layout, c.KvHead, 0, blocks / 2, v, width);
                AttentionQuantized.DequantizeValues(values, layout, c.KvHead, blocks / 2, blocks, v.AsSpan(blocks / 2 * n), width);
                // Lanes past the length hold no position: compare the written ones.
                for (int t = 0; t < c.Length; t++)
                {
                    for (int d = 0; d < c.HeadDim; d++)
                    {
                        int kAt = t / 16 * n + d * 16 + t % 16, vAt = t * c.HeadDim + d;
                        Assert.True(BitConverter.SingleToUInt32Bits(expectedKeys[kAt]) == BitConverter.SingleToUInt32Bits(k[kAt]), $"{width} key {t}.{d} {c}");
                        Assert.True(BitConverter.SingleToUInt32Bits(expectedValues[vAt]) == BitConverter.SingleToUInt32Bits(v[vAt]), $"{width} value {t}.{d} {c}");
                    }
                }
            }
        });

    [Fact]
    public void Every_path_equals_the_f32_scalar_kernel_over_the_dequantized_cache() =>
        KernelGen.Check(Cases(300), c =>
        {
            float[] expected = Reference(c);
            foreach (var (name, kernel) in Kernels())
            {
                AssertSameBits(expected, Run(c, kernel), $"{name} {c}");
                AssertSameBits(expected, Run(c, kernel, heads: 1), $"{name} one head at a time {c}");
            }
        });

    [Fact]
    public void Soft_caps_and_sliding_windows_shape_every_paths_scores_as_the_f32_kernels() =>
        KernelGen.Check((from c in Cases(300).Generator
                         from cap in Gen.Elements(0f, 0.5f, 10f, 50f)
                         from window in Gen.Frequency((1, Gen.Constant(0)), (3, Gen.Choose(1, 200)))
                         select (c, new ScoreShape(cap, window))).ToArbitrary(), p =>
        {
            var (c, shape) = p;
            float[] expected = Reference(c, shape);
            foreach (var (name, kernel) in Kernels())
            {
                AssertSameBits(expected, Run(c, kernel, shape: shape), $"{name} {shape} {c}");
                AssertSameBits(expected, Run(c, kernel, heads: 1, shape: shape), $"{name} one head at a time {shape} {c}");
            }
        });

    [Fact]
    public void Matches_the_double_reference_over_the_dequantized_cache() =>
        KernelGen.Check(Cases(300), c =>
        {
            int row = c.KvHeads * c.HeadDim;
            var keys = new float[c.Keys.Length];
            var values = new float[c.Values.Length];
            for (int t = 0; t < c.Length; t++)
            {
                Dequantized(c.Type, c.Keys.AsSpan(t * row, row)).CopyTo(keys, t * row);
                Dequantized(c.Type, c.Values.AsSpan(t * row, row)).CopyTo(values, t * row);
            }
            var expected = new float[c.Heads * c.HeadDim];
            Attention.Reference(c.Queries, c.Heads, keys, values, c.KvHeads, c.HeadDim, c.KvHead, c.Length, c.Scale, false, expected);
            float[] actual = Run(c, AttentionQuantized.Attend);
            for (int i = 0; i < expected.Length; i++)
                Assert.True(Math.Abs(actual[i] - expected[i]) <= 2e-5f, $"{c}: [{i}] {actual[i]:R}, reference {expected[i]:R}");
        });

    /// <summary>Causal rows of one call: <paramref name="Rows"/> rows ending at the case's length, <paramref name="RowStride"/> apart.</summary>
    public sealed record Chunk(Case Case, int Rows, int RowStride, float[] Queries)
    {
        public int First => Case.Length - Rows + 1;
        public override string ToString() => $"{Case} rows {Rows} rowStride {RowStride}";
    }

    private static Arbitrary<Chunk> Chunks() =>
        (from c in Cases(300).Generator
         from rows in Gen.Choose(1, Math.Min(12, c.Length + 1))
         from pad in Gen.Elements(0, 0, 16, 3)
         from queries in Gen.ArrayOf(Value(0.5f), rows * (c.Heads * c.HeadDim + pad))
         select new Chunk(c, rows, c.Heads * c.HeadDim + pad, queries)).ToArbitrary();

    [Fact]
    public void Consecutive_positions_in_one_call_give_each_row_its_own_bits() =>
        KernelGen.Check(Chunks(), p =>
        {
            var c = p.Case;
            var (keys, values) = Cache(c, c.Length);
            int n = c.Heads * c.HeadDim;
            // Row j alone over [0, First + j).
            var expected = new float[p.Queries.Length];
            for (int j = 0; j < p.Rows; j++)
                AttentionQuantized.AttendScalar(p.Queries.AsSpan(j * p.RowStride, n), 1, n, c.Heads, keys, values, c.Layout, c.KvHead, p.First + j, c.Scale,
                    new float[AttentionQuantized.ScratchLength(1, c.Heads, p.First + j, c.HeadDim)], expected.AsSpan(j * p.RowStride, n));
            foreach (var (name, kernel) in Kernels())
            {
                var output = new float[p.Queries.Length];
                kernel(p.Queries, p.Rows, p.RowStride, c.Heads, keys, values, c.Layout, c.KvHead, p.First, c.Scale,
                    new float[AttentionQuantized.ScratchLength(p.Rows, c.Heads, p.First, c.HeadDim)], output, default);
                AssertSameBits(expected, output, $"{name} {p}");
            }
            // Widened once (in two steps), then the F32 kernel: what a prompt chunk runs.
            var wide = new KvBlockLayout(1, c.HeadDim);
            int blocks = KvBlockLayout.Blocks(c.Length);
            var wideKeys = new float[wide.Elements(c.Length)];
            var wideValues = new float[wideKeys.Length];
            AttentionQuantized.Widen(keys, values, c.Layout, c.KvHead, 0, blocks / 2, wideKeys, wideValues);
            AttentionQuantized.Widen(keys, values, c.Layout, c.KvHead, blocks / 2, blocks, wideKeys, wideValues);
            var widened = new float[p.Queries.Length];
            Attention.Attend(p.Queries, p.Rows, p.RowStride, c.Heads, wideKeys, wideValues, wide, 0, p.First, c.Scale,
                new float[Attention.ScratchLength(p.Rows, c.Heads, p.First, c.HeadDim)], widened);
            AssertSameBits(expected, widened, $"widened {p}");
        });

    [Fact]
    public void Rejects_buffers_that_do_not_match_the_geometry()
    {
        var layout = new KvQuantLayout(new KvBlockLayout(2, 16), GgmlType.Q8_0);
        var cache = new byte[layout.Bytes(20)];
        var q = new float[32];
        Assert.Throws<ArgumentException>(() => AttentionQuantized.Attend(q, 1, 32, 2, cache, cache, layout, 0, 40, 1f, new float[AttentionQuantized.ScratchLength(1, 2, 40, 16)], new float[32]));
        Assert.Throws<ArgumentException>(() => AttentionQuantized.Attend(q, 1, 32, 2, cache, cache, layout, 2, 20, 1f, new float[AttentionQuantized.ScratchLength(1, 2, 20, 16)], new float[32]));
        Assert.Throws<ArgumentException>(() => AttentionQuantized.Attend(q, 1, 32, 2, cache, cache, layout, 0, 20, 1f, new float[Attention.ScratchLength(1, 2, 20, 16)], new float[32]));
        Assert.Throws<ArgumentException>(() => AttentionQuantized.Widen(cache, cache, layout, 0, 0, 3, new float[3 * 256], new float[3 * 256]));
    }
}

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ManagedLM.Kernels;

/// <summary>
/// Scaled dot-product attention of query heads that share one KV head, over a sequence's cached keys and values
/// in the <see cref="KvBlockLayout"/>. Two passes: scores = scale · Q·Kᵀ for every position (one lane per position,
/// the key read once for all the heads), a stable softmax per head, then output = weights · V (one lane per value
/// dimension, the value row read once for all the heads). Each score and each output value is one fused
/// multiply-add chain in a fixed order (key dimensions, then positions, from zero), so a head's result is the same
/// bits whichever heads, rows or threads it is computed with, and on every vector width. The consecutive positions of
/// a prompt chunk may attend in one call, so that each key and value load serves several of them.
/// </summary>
public static class Attention
{
    // 512-bit lanes where the runtime accelerates them (AVX-512), else two 256-bit halves, else the scalar loop.
    private static readonly bool Use512 = CpuFeatures.Vector512;
    private static readonly bool Use256 = CpuFeatures.Vector256;

    /// <summary>Floats of scratch <see cref="Attend(ReadOnlySpan{float}, int, ReadOnlySpan{ushort}, ReadOnlySpan{ushort}, KvBlockLayout, int, int, float, Span{float}, Span{float}, ScoreShape)"/> needs for <paramref name="heads"/> heads over <paramref name="length"/> positions.</summary>
    public static int ScratchLength(int heads, int length, int headDim) => ScratchLength(1, heads, length, headDim);

    /// <summary>
    /// Floats of scratch the causal overloads need for <paramref name="rows"/> rows of <paramref name="heads"/> heads,
    /// the first over <paramref name="length"/> positions.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int ScratchLength(int rows, int heads, int length, int headDim) =>
        Math.Min(rows * heads, MaxTileHeads) * (2 * headDim + KvBlockLayout.Blocks(length + rows - 1) * KvBlockLayout.BlockLength);

    // How far ahead the weights·V pass prefetches values: two blocks (the Q·Kᵀ pass prefetches the next tile's blocks).
    private const int ValuePrefetchBlocks = 2;

    // The most query rows (heads of one or more positions) one register tile serves.
    private const int MaxTileHeads = 8;

    /// <summary>
    /// Attention over an F16 cache, rounding as llama.cpp does with an F16 KV cache: each query is rounded to F16
    /// for Q·Kᵀ and the softmax weights to F16 for ·V (sums stay F32).
    /// queries, output: [heads × headDim], query head i reading KV head <paramref name="kvHead"/>; keys, values: at
    /// least positions [0, length) in <paramref name="layout"/>; scratch: at least <see cref="ScratchLength(int, int, int)"/>.
    /// </summary>
    public static void Attend(ReadOnlySpan<float> queries, int heads, ReadOnlySpan<ushort> keys, ReadOnlySpan<ushort> values,
        KvBlockLayout layout, int kvHead, int length, float scale, Span<float> scratch, Span<float> output, ScoreShape shape = default) =>
        Attend<ushort>(queries, 1, heads * layout.HeadDim, heads, keys, values, layout, kvHead, length, scale, scratch, output, true, shape);

    /// <summary>Attention over an F32 cache (nothing rounded); shapes as the F16 overload.</summary>
    public static void Attend(ReadOnlySpan<float> queries, int heads, ReadOnlySpan<float> keys, ReadOnlySpan<float> values,
        KvBlockLayout layout, int kvHead, int length, float scale, Span<float> scratch, Span<float> output, ScoreShape shape = default) =>
        Attend<float>(queries, 1, heads * layout.HeadDim, heads, keys, values, layout, kvHead, length, scale, scratch, output, false, shape);

    /// <summary>
    /// Causal attention of <paramref name="rows"/> consecutive positions of one sequence (a prompt chunk) over an F16
    /// cache: row j's heads (queries[j·rowStride ..], [heads × headDim]) attend over positions [0, length + j) into
    /// output[j·rowStride ..]. Each row gets the bits the single-row overload gives it; the rows share each key and
    /// value load. scratch: at least <see cref="ScratchLength(int, int, int, int)"/>.
    /// </summary>
    public static void Attend(ReadOnlySpan<float> queries, int rows, int rowStride, int heads, ReadOnlySpan<ushort> keys, ReadOnlySpan<ushort> values,
        KvBlockLayout layout, int kvHead, int length, float scale, Span<float> scratch, Span<float> output, ScoreShape shape = default) =>
        Attend<ushort>(queries, rows, rowStride, heads, keys, values, layout, kvHead, length, scale, scratch, output, true, shape);

    /// <summary>Causal attention of consecutive positions over an F32 cache; shapes as the F16 overload.</summary>
    public static void Attend(ReadOnlySpan<float> queries, int rows, int rowStride, int heads, ReadOnlySpan<float> keys, ReadOnlySpan<float> values,
        KvBlockLayout layout, int kvHead, int length, float scale, Span<float> scratch, Span<float> output, ScoreShape shape = default) =>
        Attend<float>(queries, rows, rowStride, heads, keys, values, layout, kvHead, length, scale, scratch, output, false, shape);

    /// <summary>
    /// Bidirectional attention of <paramref name="rows"/> positions of one sequence over F32 keys and values (an encoder,
    /// which keeps no cache): every row's heads (queries[j·rowStride ..], [heads × headDim]) attend over all positions
    /// [0, <paramref name="length"/>) into output[j·rowStride ..], nothing rounded. Each row gets the bits the single-row
    /// overload gives it over <paramref name="length"/> positions; the rows share each key and value load. scratch: at
    /// least <see cref="ScratchLength(int, int, int, int)"/>.
    /// </summary>
    public static void AttendAll(ReadOnlySpan<float> queries, int rows, int rowStride, int heads, ReadOnlySpan<float> keys, ReadOnlySpan<float> values,
        KvBlockLayout layout, int kvHead, int length, float scale, Span<float> scratch, Span<float> output, ScoreShape shape = default)
    {
        if (Use512)
            Attend<Lanes512, Vector512<float>, float>(queries, rows, rowStride, heads, keys, values, layout, kvHead, length, scale, scratch, output, false, shape, causal: false);
        else if (Use256)
            Attend<Lanes256, Lanes256.Pair, float>(queries, rows, rowStride, heads, keys, values, layout, kvHead, length, scale, scratch, output, false, shape, causal: false);
        else
            AttendScalar(queries, rows, rowStride, heads, keys, values, layout, kvHead, length, scale, scratch, output, false, shape, causal: false);
    }

    /// <summary>
    /// Causal attention of consecutive positions over the keys and values of an F16 cache widened to F32 by
    /// <see cref="Widen"/>: the bits the F16 overload gives, without widening the cache on every call (rows that
    /// share a cache widen it once). Shapes as the F16 overload.
    /// </summary>
    public static void AttendWidened(ReadOnlySpan<float> queries, int rows, int rowStride, int heads, ReadOnlySpan<float> keys, ReadOnlySpan<float> values,
        KvBlockLayout layout, int kvHead, int length, float scale, Span<float> scratch, Span<float> output, ScoreShape shape = default) =>
        Attend<float>(queries, rows, rowStride, heads, keys, values, layout, kvHead, length, scale, scratch, output, true, shape);

    /// <summary>
    /// Widens blocks [<paramref name="fromBlock"/>, <paramref name="toBlock"/>) of KV head <paramref name="kvHead"/>'s
    /// F16 keys and values into <paramref name="wideKeys"/> and <paramref name="wideValues"/>, laid out for one KV head
    /// (<c>new KvBlockLayout(1, layout.HeadDim)</c>), for <see cref="AttendWidened"/>.
    /// </summary>
    public static void Widen(ReadOnlySpan<ushort> keys, ReadOnlySpan<ushort> values, KvBlockLayout layout, int kvHead, int fromBlock, int toBlock,
        Span<float> wideKeys, Span<float> wideValues)
    {
        int n = layout.HeadDim * KvBlockLayout.BlockLength;
        for (int b = fromBlock; b < toBlock; b++)
        {
            Float16.ToSingle(keys.Slice(layout.HeadOffset(b, kvHead), n), wideKeys.Slice(b * n, n));
            Float16.ToSingle(values.Slice(layout.HeadOffset(b, kvHead), n), wideValues.Slice(b * n, n));
        }
    }

    // half: the cache holds F16 values (widened or not), so queries and weights round to F16 as llama.cpp rounds them.
    private static void Attend<TE>(ReadOnlySpan<float> queries, int rows, int rowStride, int heads, ReadOnlySpan<TE> keys, ReadOnlySpan<TE> values,
        KvBlockLayout layout, int kvHead, int length, float scale, Span<float> scratch, Span<float> output, bool half, ScoreShape shape) where TE : unmanaged
    {
        if (Use512)
            Attend<Lanes512, Vector512<float>, TE>(queries, rows, rowStride, heads, keys, values, layout, kvHead, length, scale, scratch, output, half, shape);
        else if (Use256)
            Attend<Lanes256, Lanes256.Pair, TE>(queries, rows, rowStride, heads, keys, values, layout, kvHead, length, scale, scratch, output, half, shape);
        else
            AttendScalar(queries, rows, rowStride, heads, keys, values, layout, kvHead, length, scale, scratch, output, half, shape);
    }

    /// <summary>
    /// The vector kernel on <typeparamref name="TL"/> lanes (tests run each width). A tile's query rows are
    /// (row, head) pairs in row order; Q·Kᵀ runs over the blocks of the tile's longest row (a shorter row's extra
    /// scores are never read), weights·V in segments between the rows' lengths, each segment's rows going on from
    /// the chains the last one stored. Not <paramref name="causal"/>: every row reads <paramref name="length"/> positions.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Attend<TL, TV, TE>(ReadOnlySpan<float> queries, int rows, int rowStride, int heads, ReadOnlySpan<TE> keys, ReadOnlySpan<TE> values,
        KvBlockLayout layout, int kvHead, int length, float scale, Span<float> scratch, Span<float> output, bool half, ScoreShape shape = default,
        bool causal = true)
        where TL : struct, ILanes16<TV> where TV : struct where TE : unmanaged
    {
        int headDim = layout.HeadDim, step = causal ? 1 : 0;
        Check(queries.Length, rows, rowStride, heads, keys.Length, values.Length, layout, kvHead, length, scratch.Length, output.Length, causal);
        if (length == 0 && !causal)
        {
            for (int j = 0; j < rows; j++)
                output.Slice(j * rowStride, heads * headDim).Clear(); // no positions: the empty sum
            return;
        }
        if (length == 0)
        {
            output[..(heads * headDim)].Clear(); // no positions: the empty sum, as the scalar kernel
            if (--rows == 0)
                return;
            queries = queries[rowStride..];
            output = output[rowStride..];
            length = 1;
        }
        int stride = KvBlockLayout.Blocks(length + (rows - 1) * step) * KvBlockLayout.BlockLength;
        ref TE k0 = ref Unsafe.Add(ref MemoryMarshal.GetReference(keys), layout.HeadOffset(0, kvHead));
        ref TE v0 = ref Unsafe.Add(ref MemoryMarshal.GetReference(values), layout.HeadOffset(0, kvHead));
        int maxTile = Math.Min(MaxTileHeads, TL.MaxAccumulators), blockElements = layout.BlockElements, groups = headDim / 16;
        int all = rows * heads, tile = Math.Min(all, maxTile);
        var q = scratch[..(tile * headDim)];
        var o = scratch.Slice(q.Length, tile * headDim);
        var weights = scratch.Slice(2 * q.Length, tile * stride);
        // Rows of one head, or heads of one row, lie at one stride in the output: the tile writes there.
        bool direct = heads == 1 || rows == 1;
        nint cStride = direct ? (heads == 1 ? rowStride : headDim) : headDim;
        for (int a0 = 0; a0 < all; a0 += maxTile)
        {
            int th = Math.Min(all - a0, maxTile), tn = AttentionTile.Columns<TL, TV>(th), longest = length + (a0 + th - 1) / heads * step;
            for (int i = 0; i < th; i++)
                RoundQueries(queries.Slice(At(a0 + i, heads, rowStride, headDim), headDim), q.Slice(i * headDim, headDim), half);
            // weights[i][16·block + lane]: k runs over the key dimensions (16 per 16×16 chunk), j over blocks.
            for (int b = 0, n, blocks = KvBlockLayout.Blocks(longest); b < blocks; b += n)
            {
                n = Fit(tn, blocks - b);
                AttentionTile.Run<TL, TV, TE>(th, n, ref q[0], headDim, headDim,
                    ref Unsafe.Add(ref k0, (nint)b * blockElements), 16 * KvBlockLayout.BlockLength, KvBlockLayout.BlockLength, blockElements,
                    (nint)n * blockElements, ref weights[b * KvBlockLayout.BlockLength], stride, scale, 0, false);
            }
            for (int i = 0; i < th; i++)
                NormalizeScores(weights.Slice(i * stride, length + (a0 + i) / heads * step), half, shape);
            // output[i][16·j + lane]: k runs over the positions (16 per block), j over runs of 16 value dimensions;
            // rows [first, th) share positions [start, end), where row first's positions end.
            ref float c = ref direct ? ref output[At(a0, heads, rowStride, headDim)] : ref o[0];
            for (int first = 0, start = 0; first < th;)
            {
                int end = length + (a0 + first) / heads * step, left = th - first, tl = AttentionTile.Columns<TL, TV>(left);
                for (int j = 0, n; j < groups; j += n)
                {
                    n = Fit(tl, groups - j);
                    AttentionTile.Run<TL, TV, TE>(left, n, ref weights[first * stride], stride, end,
                        ref Unsafe.Add(ref v0, (nint)j * 16), blockElements, headDim, 16,
                        ValuePrefetchBlocks * (nint)blockElements, ref Unsafe.Add(ref c, first * cStride + j * 16), cStride, 1f, start, start > 0);
                }
                for (start = end; first < th && length + (a0 + first) / heads * step == end; first++) { }
            }
            for (int i = 0; i < th; i++)
            {
                var row = output.Slice(At(a0 + i, heads, rowStride, headDim), headDim);
                if (!direct)
                    o.Slice(i * headDim, groups * 16).CopyTo(row);
                // Value dimensions past the last run of 16, one lane at a time (the same chains).
                for (int d = groups * 16; d < headDim; d++)
                    row[d] = WeightedSum(weights.Slice(i * stride, length + (a0 + i) / heads * step), values, layout, kvHead, d);
            }
        }
    }

    // Where query row a ((row, head) pairs in row order) starts in the queries and the output.
    private static int At(int a, int heads, int rowStride, int headDim) => a / heads * rowStride + a % heads * headDim;

    // The largest power of two up to tn that fits what is left.
    private static int Fit(int tn, int left)
    {
        while (tn > left)
            tn /= 2;
        return tn;
    }

    /// <summary>
    /// The same sums as the vector kernel, one lane at a time on the same layout: the fallback where no vectors are
    /// accelerated, and the reference the vector kernel must equal bit for bit.
    /// </summary>
    internal static void AttendScalar<TE>(ReadOnlySpan<float> queries, int heads, ReadOnlySpan<TE> keys, ReadOnlySpan<TE> values,
        KvBlockLayout layout, int kvHead, int length, float scale, Span<float> scratch, Span<float> output, ScoreShape shape = default) where TE : unmanaged =>
        AttendScalar(queries, 1, heads * layout.HeadDim, heads, keys, values, layout, kvHead, length, scale, scratch, output, typeof(TE) == typeof(ushort), shape);

    /// <summary>The scalar kernel for consecutive rows: each row by itself (all over <paramref name="length"/> positions unless <paramref name="causal"/>).</summary>
    internal static void AttendScalar<TE>(ReadOnlySpan<float> queries, int rows, int rowStride, int heads, ReadOnlySpan<TE> keys, ReadOnlySpan<TE> values,
        KvBlockLayout layout, int kvHead, int length, float scale, Span<float> scratch, Span<float> output, bool half, ScoreShape shape = default,
        bool causal = true) where TE : unmanaged
    {
        int headDim = layout.HeadDim, step = causal ? 1 : 0;
        Check(queries.Length, rows, rowStride, heads, keys.Length, values.Length, layout, kvHead, length, scratch.Length, output.Length, causal);
        var q = scratch[..headDim];
        for (int a = 0; a < rows * heads; a++)
        {
            int n = length + a / heads * step, at = At(a, heads, rowStride, headDim);
            var weights = scratch.Slice(headDim, n);
            RoundQueries(queries.Slice(at, headDim), q, half);
            for (int t = 0; t < n; t++)
            {
                int k = layout.HeadOffset(t / KvBlockLayout.BlockLength, kvHead) + t % KvBlockLayout.BlockLength;
                float s = 0;
                for (int d = 0; d < headDim; d++)
                    s = MathF.FusedMultiplyAdd(q[d], ToSingle(keys[k + d * KvBlockLayout.BlockLength]), s);
                weights[t] = s * scale;
            }
            NormalizeScores(weights, half, shape);
            for (int d = 0; d < headDim; d++)
                output[at + d] = WeightedSum(weights, values, layout, kvHead, d);
        }
    }

    // Σ_t weights[t] · value[t][d] for KV head kvHead: one lane of the weights·V tile.
    private static float WeightedSum<TE>(ReadOnlySpan<float> weights, ReadOnlySpan<TE> values, KvBlockLayout layout, int kvHead, int d)
        where TE : unmanaged
    {
        float o = 0;
        for (int t = 0; t < weights.Length; t++)
            o = MathF.FusedMultiplyAdd(weights[t], ToSingle(values[layout.HeadOffset(t / KvBlockLayout.BlockLength, kvHead) + t % KvBlockLayout.BlockLength * layout.HeadDim + d]), o);
        return o;
    }

    /// <summary>
    /// Scalar reference in double over plain rows: keys, values [length × kvHeads·headDim] (row t = position t);
    /// the query and the weights rounded to F16 when <paramref name="roundToHalf"/>, as the F16 kernel.
    /// </summary>
    internal static void Reference(ReadOnlySpan<float> queries, int heads, ReadOnlySpan<float> keys, ReadOnlySpan<float> values,
        int kvHeads, int headDim, int kvHead, int length, float scale, bool roundToHalf, Span<float> output, ScoreShape shape = default)
    {
        int rowLength = kvHeads * headDim, offset = kvHead * headDim;
        var weights = new float[length];
        for (int h = 0; h < heads; h++)
        {
            for (int t = 0; t < length; t++)
            {
                double s = 0;
                for (int d = 0; d < headDim; d++)
                {
                    float qd = queries[h * headDim + d];
                    s += (double)(roundToHalf ? Float16.ToSingle(Float16.FromSingle(qd)) : qd) * keys[t * rowLength + offset + d];
                }
                weights[t] = shape.Cap((float)s * scale);
            }
            int seen = shape.FirstSeen(length);
            weights.AsSpan(0, seen).Clear();
            Softmax.Reference(weights.AsSpan(seen));
            for (int d = 0; d < headDim; d++)
            {
                double o = 0;
                for (int t = 0; t < length; t++)
                    o += (double)(roundToHalf ? Float16.ToSingle(Float16.FromSingle(weights[t])) : weights[t]) * values[t * rowLength + offset + d];
                output[h * headDim + d] = (float)o;
            }
        }
    }

    // q = the queries, rounded to F16 for an F16 cache.
    private static void RoundQueries(ReadOnlySpan<float> queries, Span<float> q, bool half)
    {
        if (half)
            Float16.Round(queries, q);
        else
            queries.CopyTo(q);
    }

    // A row's scores become softmax weights (rounded to F16 for an F16 cache): capped, and the positions before its
    // window weigh 0 (the weights·V chains still run over them, adding exact zeros).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void NormalizeScores(Span<float> scores, bool half, ScoreShape shape)
    {
        if (shape.SoftCap > 0)
        {
            for (int t = 0; t < scores.Length; t++)
                scores[t] = shape.Cap(scores[t]);
        }
        int seen = shape.FirstSeen(scores.Length);
        scores[..seen].Clear();
        AttentionSoftmax.InPlace(scores[seen..], half);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float ToSingle<TE>(TE value) where TE : unmanaged =>
        typeof(TE) == typeof(ushort) ? Float16.ToSingle(Unsafe.As<TE, ushort>(ref value)) : Unsafe.As<TE, float>(ref value);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Check(int queries, int rows, int rowStride, int heads, int keys, int values, KvBlockLayout layout, int kvHead,
        int length, int scratch, int output, bool causal = true)
    {
        int headDim = layout.HeadDim;
        // The positions the last row reads: the causal rows' reach grows by one a row.
        int reach = causal ? length + rows - 1 : length;
        long rowSpan = rows <= 0 ? 0 : (long)(rows - 1) * rowStride + heads * headDim, cache = layout.Elements(Math.Max(reach, 0));
        if (heads <= 0 || rows <= 0 || rowStride < heads * headDim || length < 0 || (uint)kvHead >= (uint)layout.KvHeads
            || queries < rowSpan || output < rowSpan || keys < cache || values < cache || scratch < ScratchLength(rows, heads, causal ? length : length - rows + 1, headDim))
            throw new ArgumentException("Attention buffers do not match the head geometry.");
    }
}

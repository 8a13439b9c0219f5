using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedLM.Kernels;

/// <summary>
/// <see cref="Attention"/> over a cache of Q8_0 or Q4_0 blocks in the <see cref="KvQuantLayout"/>: the keys and values
/// are dequantized (as ggml dequantizes them: quant · scale) eight blocks of 16 positions at a time into an F32 tile in
/// scratch, which the F32 register tiles read while it is in L1 (one query head alone on its KV head takes
/// <see cref="AttendOne"/>, which fuses the dequantizing into its chains). Nothing else is rounded (the queries and the
/// softmax weights stay F32), and each score and output value is the same fused chain as the F32 kernel's over the dequantized
/// values: a row's result is the same bits alone, with other rows of a prompt chunk, after <see cref="Widen"/>, on any
/// vector width, and equals <see cref="Attention"/>'s F32 kernel over the dequantized cache.
/// </summary>
public static partial class AttentionQuantized
{
    private static readonly bool Use512 = CpuFeatures.Vector512;
    private static readonly bool Use256 = CpuFeatures.Vector256;

    /// <summary>How the dequantizer runs: AVX-512, AVX2 or one value at a time (the same values on each).</summary>
    internal enum Width { Scalar, Avx2, Avx512 }

    private static readonly Width Dequantizer = CpuFeatures.Avx512 ? Width.Avx512 : CpuFeatures.Avx2 ? Width.Avx2 : Width.Scalar;

    // Blocks dequantized at a time: the widest Q·Kᵀ tile (eight blocks), 32 KiB of F32 at head_dim 64.
    private const int ChunkBlocks = 8;
    private const int MaxTileHeads = 8;
    private const int ValuePrefetchBlocks = 2;
    private const int Lanes = KvBlockLayout.BlockLength;

    /// <summary>Floats of scratch the dequantized tile takes, beyond <see cref="Attention.ScratchLength(int, int, int, int)"/>.</summary>
    public static int ChunkLength(int headDim) => ChunkBlocks * Lanes * headDim;

    /// <summary>Floats of scratch <see cref="Attend"/> needs: <see cref="Attention.ScratchLength(int, int, int, int)"/> and the tile.</summary>
    public static int ScratchLength(int rows, int heads, int length, int headDim) =>
        Attention.ScratchLength(rows, heads, length, headDim) + ChunkLength(headDim);

    /// <summary>
    /// Causal attention of <paramref name="rows"/> consecutive positions of one sequence over a quantized cache: row j's
    /// heads (queries[j·rowStride ..], [heads × headDim], reading KV head <paramref name="kvHead"/>) attend over positions
    /// [0, length + j) into output[j·rowStride ..]. keys, values: at least positions [0, length + rows − 1) in
    /// <paramref name="layout"/>; scratch: at least <see cref="ScratchLength"/>.
    /// </summary>
    public static void Attend(ReadOnlySpan<float> queries, int rows, int rowStride, int heads, ReadOnlySpan<byte> keys, ReadOnlySpan<byte> values,
        KvQuantLayout layout, int kvHead, int length, float scale, Span<float> scratch, Span<float> output, ScoreShape shape = default)
    {
        if (Use512 && Dequantizer == Width.Avx512 && rows * heads == 1 && OneRowFits(layout, length))
            AttendOne(queries, keys, values, layout, kvHead, length, scale, scratch, output, shape);
        else if (Use512)
            Attend<Lanes512, Vector512<float>>(queries, rows, rowStride, heads, keys, values, layout, kvHead, length, scale, scratch, output, shape);
        else if (Use256)
            Attend<Lanes256, Lanes256.Pair>(queries, rows, rowStride, heads, keys, values, layout, kvHead, length, scale, scratch, output, shape);
        else
            AttendScalar(queries, rows, rowStride, heads, keys, values, layout, kvHead, length, scale, scratch, output, shape);
    }

    /// <summary>
    /// Dequantizes blocks [<paramref name="fromBlock"/>, <paramref name="toBlock"/>) of KV head <paramref name="kvHead"/>'s
    /// keys and values into <paramref name="wideKeys"/> and <paramref name="wideValues"/>, laid out for one KV head
    /// (<c>new KvBlockLayout(1, headDim)</c>): <see cref="Attention"/>'s F32 kernel over them gives the bits
    /// <see cref="Attend"/> gives, and the rows of a prompt chunk dequantize the cache once.
    /// </summary>
    public static void Widen(ReadOnlySpan<byte> keys, ReadOnlySpan<byte> values, KvQuantLayout layout, int kvHead, int fromBlock, int toBlock,
        Span<float> wideKeys, Span<float> wideValues)
    {
        int n = Lanes * layout.Heads.HeadDim;
        if ((uint)kvHead >= (uint)layout.Heads.KvHeads || fromBlock < 0 || toBlock < fromBlock
            || keys.Length < (long)toBlock * layout.BlockBytes || values.Length < (long)toBlock * layout.BlockBytes
            || wideKeys.Length < (long)toBlock * n || wideValues.Length < (long)toBlock * n)
            throw new ArgumentException("Widen buffers do not match the head geometry.");
        DequantizeKeys(keys, layout, kvHead, fromBlock, toBlock, wideKeys[(fromBlock * n)..], Dequantizer);
        DequantizeValues(values, layout, kvHead, fromBlock, toBlock, wideValues[(fromBlock * n)..], Dequantizer);
    }

    /// <summary>The vector kernel on <typeparamref name="TL"/> lanes: <see cref="Attention"/>'s, a dequantized tile at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Attend<TL, TV>(ReadOnlySpan<float> queries, int rows, int rowStride, int heads, ReadOnlySpan<byte> keys, ReadOnlySpan<byte> values,
        KvQuantLayout layout, int kvHead, int length, float scale, Span<float> scratch, Span<float> output, ScoreShape shape = default)
        where TL : struct, ILanes16<TV> where TV : struct
    {
        int headDim = layout.Heads.HeadDim;
        Check(queries.Length, rows, rowStride, heads, keys.Length, values.Length, layout, kvHead, length, scratch.Length, output.Length);
        if (length == 0)
        {
            output[..(heads * headDim)].Clear(); // no positions: the empty sum, as the F32 kernel
            if (--rows == 0)
                return;
            queries = queries[rowStride..];
            output = output[rowStride..];
            length = 1;
        }
        int stride = KvBlockLayout.Blocks(length + rows - 1) * Lanes, blockElements = Lanes * headDim, groups = headDim / 16;
        int maxTile = Math.Min(MaxTileHeads, TL.MaxAccumulators), all = rows * heads, tile = Math.Min(all, maxTile);
        var q = scratch[..(tile * headDim)];
        var o = scratch.Slice(q.Length, tile * headDim);
        var weights = scratch.Slice(2 * q.Length, tile * stride);
        var chunk = scratch.Slice(2 * q.Length + weights.Length, ChunkLength(headDim));
        for (int a0 = 0; a0 < all; a0 += maxTile)
        {
            int th = Math.Min(all - a0, maxTile), tn = AttentionTile.Columns<TL, TV>(th), longest = length + (a0 + th - 1) / heads;
            int blocks = KvBlockLayout.Blocks(longest);
            for (int i = 0; i < th; i++)
                queries.Slice(At(a0 + i, heads, rowStride, headDim), headDim).CopyTo(q.Slice(i * headDim, headDim));
            // weights[i][16·block + lane], the tile's blocks dequantized as [block][headDim][16].
            for (int c0 = 0; c0 < blocks; c0 += ChunkBlocks)
            {
                int cb = Math.Min(ChunkBlocks, blocks - c0);
                DequantizeKeys(keys, layout, kvHead, c0, c0 + cb, chunk, Dequantizer);
                // While the tiles run: the next chunk's keys, or the first values.
                if (c0 + cb < blocks)
                    Prefetch(keys, layout, kvHead, c0 + cb, Math.Min(blocks, c0 + cb + ChunkBlocks));
                else
                    Prefetch(values, layout, kvHead, 0, Math.Min(blocks, ChunkBlocks));
                for (int b = 0, n; b < cb; b += n)
                {
                    n = Fit(tn, cb - b);
                    AttentionTile.Run<TL, TV, float>(th, n, ref q[0], headDim, headDim,
                        ref chunk[b * blockElements], 16 * Lanes, Lanes, blockElements,
                        (nint)n * blockElements, ref weights[(c0 + b) * Lanes], stride, scale, 0, false);
                }
            }
            for (int i = 0; i < th; i++)
                Attention.NormalizeScores(weights.Slice(i * stride, length + (a0 + i) / heads), false, shape);
            // o[i][16·j + lane] over the tile's blocks dequantized as [block][16][headDim]: rows [first, th) share
            // positions [start, end), where row first's positions or the tile's end; each chain goes on from the last.
            for (int c0 = 0, first = 0; c0 < blocks; c0 += ChunkBlocks)
            {
                int cb = Math.Min(ChunkBlocks, blocks - c0), p0 = c0 * Lanes, p1 = Math.Min(p0 + cb * Lanes, longest);
                DequantizeValues(values, layout, kvHead, c0, c0 + cb, chunk, Dequantizer);
                Prefetch(values, layout, kvHead, c0 + cb, Math.Min(blocks, c0 + cb + ChunkBlocks));
                for (int start = p0; first < th && start < p1;)
                {
                    int end = Math.Min(p1, length + (a0 + first) / heads), left = th - first, tl = AttentionTile.Columns<TL, TV>(left);
                    for (int j = 0, n; j < groups; j += n)
                    {
                        n = Fit(tl, groups - j);
                        AttentionTile.Run<TL, TV, float>(left, n, ref weights[first * stride + p0], stride, end - p0,
                            ref chunk[j * 16], blockElements, headDim, 16,
                            ValuePrefetchBlocks * (nint)blockElements, ref o[first * headDim + j * 16], headDim, 1f, start - p0, start > 0);
                    }
                    // Value dimensions past the last run of 16, one lane at a time (the same chains).
                    for (int i = first; i < th; i++)
                    {
                        for (int d = groups * 16; d < headDim; d++)
                            o[i * headDim + d] = WeightedSum(weights.Slice(i * stride, end), chunk, p0, start, headDim, d, start > 0 ? o[i * headDim + d] : 0);
                    }
                    for (start = end; first < th && length + (a0 + first) / heads <= end; first++) { }
                }
            }
            for (int i = 0; i < th; i++)
                o.Slice(i * headDim, headDim).CopyTo(output.Slice(At(a0 + i, heads, rowStride, headDim), headDim));
        }
    }

    /// <summary>
    /// The same sums one lane at a time, a row at a time: the fallback where no vectors are accelerated. (The tests'
    /// reference is <see cref="Attention"/>'s scalar F32 kernel over the cache dequantized row by row.)
    /// </summary>
    internal static void AttendScalar(ReadOnlySpan<float> queries, int rows, int rowStride, int heads, ReadOnlySpan<byte> keys, ReadOnlySpan<byte> values,
        KvQuantLayout layout, int kvHead, int length, float scale, Span<float> scratch, Span<float> output, ScoreShape shape = default)
    {
        int headDim = layout.Heads.HeadDim;
        Check(queries.Length, rows, rowStride, heads, keys.Length, values.Length, layout, kvHead, length, scratch.Length, output.Length);
        var q = scratch[..headDim];
        var chunk = scratch.Slice(Attention.ScratchLength(rows, heads, length, headDim), ChunkLength(headDim));
        for (int a = 0; a < rows * heads; a++)
        {
            int n = length + a / heads, at = At(a, heads, rowStride, headDim), blocks = KvBlockLayout.Blocks(n);
            var weights = scratch.Slice(headDim, n);
            if (n == 0)
            {
                output.Slice(at, headDim).Clear(); // the empty sum
                continue;
            }
            queries.Slice(at, headDim).CopyTo(q);
            for (int c0 = 0; c0 < blocks; c0 += ChunkBlocks)
            {
                DequantizeKeys(keys, layout, kvHead, c0, Math.Min(blocks, c0 + ChunkBlocks), chunk, Width.Scalar);
                for (int t = c0 * Lanes; t < Math.Min(n, (c0 + ChunkBlocks) * Lanes); t++)
                {
                    int k = (t / Lanes - c0) * Lanes * headDim + t % Lanes;
                    float s = 0;
                    for (int d = 0; d < headDim; d++)
                        s = MathF.FusedMultiplyAdd(q[d], chunk[k + d * Lanes], s);
                    weights[t] = s * scale;
                }
            }
            Attention.NormalizeScores(weights, false, shape);
            var row = output.Slice(at, headDim);
            for (int c0 = 0; c0 < blocks; c0 += ChunkBlocks)
            {
                DequantizeValues(values, layout, kvHead, c0, Math.Min(blocks, c0 + ChunkBlocks), chunk, Width.Scalar);
                int p0 = c0 * Lanes, end = Math.Min(n, p0 + ChunkBlocks * Lanes);
                for (int d = 0; d < headDim; d++)
                    row[d] = WeightedSum(weights[..end], chunk, p0, p0, headDim, d, p0 > 0 ? row[d] : 0);
            }
        }
    }

    // o + Σ_{t ∈ [start, weights.Length)} weights[t] · value[t][d], one fused chain, over a tile of values from position p0.
    private static float WeightedSum(ReadOnlySpan<float> weights, ReadOnlySpan<float> chunk, int p0, int start, int headDim, int d, float o)
    {
        for (int t = start; t < weights.Length; t++)
            o = MathF.FusedMultiplyAdd(weights[t], chunk[(t - p0) * headDim + d], o);
        return o;
    }

    /// <summary>
    /// Keys of KV head <paramref name="kvHead"/> in blocks [from, to), dequantized into dst as [block − from][headDim][16]
    /// (a dimension of 16 positions side by side, as <see cref="KvBlockLayout"/> lays out a KV head's keys).
    /// </summary>
    internal static void DequantizeKeys(ReadOnlySpan<byte> keys, KvQuantLayout layout, int kvHead, int from, int to, Span<float> dst, Width width)
    {
        if (dst.Length < (to - from) * Lanes * layout.Heads.HeadDim || keys.Length < (long)to * layout.BlockBytes || from < 0 || to < from)
            throw new ArgumentException("The key tile does not fit.");
        ref byte k0 = ref MemoryMarshal.GetReference(keys);
        ref float y0 = ref MemoryMarshal.GetReference(dst);
        bool q8 = layout.Type == GgmlType.Q8_0;
        switch (width)
        {
            case Width.Avx512 when q8: Keys<Q8Quants, Wide512>(ref k0, layout, kvHead, from, to, ref y0); break;
            case Width.Avx512: Keys<Q4Quants, Wide512>(ref k0, layout, kvHead, from, to, ref y0); break;
            case Width.Avx2 when q8: Keys<Q8Quants, Wide256>(ref k0, layout, kvHead, from, to, ref y0); break;
            case Width.Avx2: Keys<Q4Quants, Wide256>(ref k0, layout, kvHead, from, to, ref y0); break;
            case Width.Scalar when q8: Keys<Q8Quants, Narrow>(ref k0, layout, kvHead, from, to, ref y0); break;
            default: Keys<Q4Quants, Narrow>(ref k0, layout, kvHead, from, to, ref y0); break;
        }
    }

    /// <summary>Values of KV head <paramref name="kvHead"/> in blocks [from, to), dequantized into dst as [block − from][16][headDim].</summary>
    internal static void DequantizeValues(ReadOnlySpan<byte> values, KvQuantLayout layout, int kvHead, int from, int to, Span<float> dst, Width width)
    {
        if (dst.Length < (to - from) * Lanes * layout.Heads.HeadDim || values.Length < (long)to * layout.BlockBytes || from < 0 || to < from)
            throw new ArgumentException("The value tile does not fit.");
        ref byte v0 = ref MemoryMarshal.GetReference(values);
        ref float y0 = ref MemoryMarshal.GetReference(dst);
        bool q8 = layout.Type == GgmlType.Q8_0;
        switch (width)
        {
            case Width.Avx512 when q8: Values<Q8Quants, Wide512>(ref v0, layout, kvHead, from, to, ref y0); break;
            case Width.Avx512: Values<Q4Quants, Wide512>(ref v0, layout, kvHead, from, to, ref y0); break;
            case Width.Avx2 when q8: Values<Q8Quants, Wide256>(ref v0, layout, kvHead, from, to, ref y0); break;
            case Width.Avx2: Values<Q4Quants, Wide256>(ref v0, layout, kvHead, from, to, ref y0); break;
            case Width.Scalar when q8: Values<Q8Quants, Narrow>(ref v0, layout, kvHead, from, to, ref y0); break;
            default: Values<Q4Quants, Narrow>(ref v0, layout, kvHead, from, to, ref y0); break;
        }
    }

    // Per block, per run of the head's dimensions within one quant block: the run's 16 scales, then its dimensions.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Keys<TQ, TW>(ref byte k0, KvQuantLayout layout, int kvHead, int from, int to, ref float y0)
        where TQ : struct, IKvQuants where TW : struct, IDequantizeWidth
    {
        int headDim = layout.Heads.HeadDim, first = kvHead % layout.GroupHeads * headDim, quantsOffset = layout.KeyQuantsOffset;
        for (int b = from; b < to; b++)
        {
            ref byte group = ref Unsafe.Add(ref k0, layout.GroupOffset(b, kvHead));
            ref float y = ref Unsafe.Add(ref y0, (b - from) * Lanes * headDim);
            for (int d = 0; d < headDim;)
            {
                int kb = (first + d) / KvQuantLayout.QuantBlock, end = Math.Min(headDim, (kb + 1) * KvQuantLayout.QuantBlock - first);
                ref ushort scales = ref Unsafe.As<byte, ushort>(ref Unsafe.Add(ref group, kb * Lanes * sizeof(ushort)));
                ref byte src = ref Unsafe.Add(ref group, quantsOffset + (first + d) * TQ.DimensionBytes);
                if (TW.Width == Width.Avx512)
                    TQ.Keys512(ref src, end - d, Float16.Widen512(Vector256.LoadUnsafe(ref scales)), ref Unsafe.Add(ref y, d * Lanes));
                else if (TW.Width == Width.Avx2)
                    TQ.Keys256(ref src, end - d, Float16.Widen(Vector128.LoadUnsafe(ref scales)), Float16.Widen(Vector128.LoadUnsafe(ref scales, 8)), ref Unsafe.Add(ref y, d * Lanes));
                else
                    TQ.KeysScalar(ref src, end - d, ref scales, ref Unsafe.Add(ref y, d * Lanes));
                d = end;
            }
        }
    }

    // Per block and position: the head's part of the position's quant blocks (whole blocks, or parts of them).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Values<TQ, TW>(ref byte v0, KvQuantLayout layout, int kvHead, int from, int to, ref float y0)
        where TQ : struct, IKvQuants where TW : struct, IDequantizeWidth
    {
        int headDim = layout.Heads.HeadDim, first = kvHead % layout.GroupHeads * headDim, typeBytes = layout.TypeBytes;
        int rowBytes = layout.GroupBlocks * typeBytes;
        bool whole = first % KvQuantLayout.QuantBlock == 0 && headDim % KvQuantLayout.QuantBlock == 0;
        Span<float> part = stackalloc float[KvQuantLayout.QuantBlock];
        for (int b = from; b < to; b++)
        {
            ref byte row = ref Unsafe.Add(ref v0, layout.GroupOffset(b, kvHead) + first / KvQuantLayout.QuantBlock * typeBytes);
            ref float y = ref Unsafe.Add(ref y0, (b - from) * Lanes * headDim);
            for (int lane = 0; lane < Lanes; lane++, row = ref Unsafe.Add(ref row, rowBytes), y = ref Unsafe.Add(ref y, headDim))
            {
                if (whole)
                {
                    for (int i = 0, at = 0; i < headDim; i += KvQuantLayout.QuantBlock, at += typeBytes)
                        Block<TQ, TW>(ref Unsafe.Add(ref row, at), ref Unsafe.Add(ref y, i));
                    continue;
                }
                // Dimensions [d, d + n) of the head lie in one quant block, from its value inBlock.
                for (int d = 0; d < headDim;)
                {
                    int inBlock = (first + d) % KvQuantLayout.QuantBlock, n = Math.Min(headDim - d, KvQuantLayout.QuantBlock - inBlock);
                    Block<TQ, TW>(ref Unsafe.Add(ref row, (first % KvQuantLayout.QuantBlock + d) / KvQuantLayout.QuantBlock * typeBytes), ref part[0]);
                    part.Slice(inBlock, n).CopyTo(MemoryMarshal.CreateSpan(ref Unsafe.Add(ref y, d), n));
                    d += n;
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Block<TQ, TW>(ref byte block, ref float y) where TQ : struct, IKvQuants where TW : struct, IDequantizeWidth
    {
        float d = Float16.ToSingleLookup(Unsafe.ReadUnaligned<ushort>(ref block));
        ref byte qs = ref Unsafe.Add(ref block, sizeof(ushort));
        if (TW.Width == Width.Avx512)
            TQ.Block512(ref qs, d, ref y);
        else if (TW.Width == Width.Avx2)
            TQ.Block256(ref qs, d, ref y);
        else
            TQ.BlockScalar(ref qs, d, ref y);
    }

    // Asks for the cache lines of KV head kvHead's group in blocks [from, to) (a hint: never faults), so that dequantizing
    // them later reads the cache, not memory.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Prefetch(ReadOnlySpan<byte> data, KvQuantLayout layout, int kvHead, int from, int to)
    {
        if (!Sse.IsSupported)
            return;
        ref byte d0 = ref MemoryMarshal.GetReference(data);
        for (int b = from; b < to; b++)
        {
            ref byte group = ref Unsafe.Add(ref d0, layout.GroupOffset(b, kvHead));
            for (int i = 0; i < layout.GroupBytes; i += 64)
                Sse.Prefetch0(Unsafe.AsPointer(ref Unsafe.Add(ref group, i)));
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

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Check(int queries, int rows, int rowStride, int heads, int keys, int values, KvQuantLayout layout, int kvHead,
        int length, int scratch, int output)
    {
        int headDim = layout.Heads.HeadDim;
        long rowSpan = rows <= 0 ? 0 : (long)(rows - 1) * rowStride + heads * headDim, cache = layout.Bytes(Math.Max(length + rows - 1, 0));
        if (heads <= 0 || rows <= 0 || rowStride < heads * headDim || length < 0 || (uint)kvHead >= (uint)layout.Heads.KvHeads || layout.BlockBytes == 0
            || queries < rowSpan || output < rowSpan || keys < cache || values < cache || scratch < ScratchLength(rows, heads, length, headDim))
            throw new ArgumentException("Attention buffers do not match the head geometry.");
    }
}

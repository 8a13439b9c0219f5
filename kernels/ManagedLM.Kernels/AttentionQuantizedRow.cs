using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedLM.Kernels;

public static partial class AttentionQuantized
{
    /// <summary>
    /// Whether <see cref="AttendOne"/> serves a call over this layout: each head's values are whole quant blocks, at most
    /// 128 of them (eight accumulators for ·V), and there is a position.
    /// </summary>
    internal static bool OneRowFits(KvQuantLayout layout, int length) =>
        length > 0 && layout.GroupHeads == 1 && layout.Heads.HeadDim <= 8 * Lanes && CpuFeatures.Avx512;

    /// <summary>
    /// One query row of one head over its KV head (a decode step of a model without grouping, where no other head shares
    /// the dequantizing), with AVX-512: each quant is widened, scaled and fused into its chain in registers, eight blocks
    /// of positions at a time, instead of going through a tile in scratch. The same chains as the tiled kernel, so the
    /// same bits. scratch: at least <see cref="ScratchLength"/>(1, 1, length, headDim).
    /// </summary>
    internal static void AttendOne(ReadOnlySpan<float> query, ReadOnlySpan<byte> keys, ReadOnlySpan<byte> values, KvQuantLayout layout, int kvHead,
        int length, float scale, Span<float> scratch, Span<float> output, ScoreShape shape = default)
    {
        int headDim = layout.Heads.HeadDim;
        Check(query.Length, 1, headDim, 1, keys.Length, values.Length, layout, kvHead, length, scratch.Length, output.Length);
        if (!OneRowFits(layout, length))
            throw new ArgumentException("The single-row kernel needs AVX-512, a position, and heads of whole quant blocks up to 128 values.");
        if (layout.Type == GgmlType.Q8_0)
            AttendOne<Q8Quants>(query, keys, values, layout, kvHead, length, scale, scratch, output, shape);
        else
            AttendOne<Q4Quants>(query, keys, values, layout, kvHead, length, scale, scratch, output, shape);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AttendOne<TQ>(ReadOnlySpan<float> query, ReadOnlySpan<byte> keys, ReadOnlySpan<byte> values, KvQuantLayout layout, int kvHead,
        int length, float scale, Span<float> scratch, Span<float> output, ScoreShape shape) where TQ : struct, IKvQuants
    {
        int headDim = layout.Heads.HeadDim, blocks = KvBlockLayout.Blocks(length), stride = blocks * Lanes, blockElements = Lanes * headDim;
        // Scratch as the tiled kernel lays it out for one row: query, output, weights, then the tile for the last blocks.
        var weights = scratch.Slice(2 * headDim, stride);
        var chunk = scratch.Slice(2 * headDim + stride, ChunkLength(headDim));
        ref float q = ref MemoryMarshal.GetReference(query);
        nint blockBytes = layout.BlockBytes;
        ref byte k0 = ref Unsafe.AsRef(in keys[layout.GroupOffset(0, kvHead)]);
        int full = blocks / ChunkBlocks * ChunkBlocks;
        for (int b0 = 0; b0 < full; b0 += ChunkBlocks)
        {
            Prefetch(keys, layout, kvHead, b0 + ChunkBlocks, Math.Min(blocks, b0 + 2 * ChunkBlocks));
            ref byte g = ref Unsafe.Add(ref k0, b0 * blockBytes);
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            for (int kb = 0, d = 0; kb < headDim / KvQuantLayout.QuantBlock; kb++)
            {
                // Block j's 16 scales of quant block kb, then its dimensions.
                ref ushort s = ref Unsafe.As<byte, ushort>(ref Unsafe.Add(ref g, kb * Lanes * sizeof(ushort)));
                Vector512<float> s0 = Scales(ref s, 0, blockBytes), s1 = Scales(ref s, 1, blockBytes), s2 = Scales(ref s, 2, blockBytes), s3 = Scales(ref s, 3, blockBytes);
                Vector512<float> s4 = Scales(ref s, 4, blockBytes), s5 = Scales(ref s, 5, blockBytes), s6 = Scales(ref s, 6, blockBytes), s7 = Scales(ref s, 7, blockBytes);
                ref byte src = ref Unsafe.Add(ref g, layout.KeyQuantsOffset + d * TQ.DimensionBytes);
                for (int end = d + KvQuantLayout.QuantBlock; d < end; d++, src = ref Unsafe.Add(ref src, TQ.DimensionBytes))
                {
                    var qd = Vector512.Create(Unsafe.Add(ref q, d));
                    a0 = Vector512.FusedMultiplyAdd(qd, TQ.KeyLanes512(ref src) * s0, a0);
                    a1 = Vector512.FusedMultiplyAdd(qd, TQ.KeyLanes512(ref Unsafe.Add(ref src, blockBytes)) * s1, a1);
                    a2 = Vector512.FusedMultiplyAdd(qd, TQ.KeyLanes512(ref Unsafe.Add(ref src, 2 * blockBytes)) * s2, a2);
                    a3 = Vector512.FusedMultiplyAdd(qd, TQ.KeyLanes512(ref Unsafe.Add(ref src, 3 * blockBytes)) * s3, a3);
                    a4 = Vector512.FusedMultiplyAdd(qd, TQ.KeyLanes512(ref Unsafe.Add(ref src, 4 * blockBytes)) * s4, a4);
                    a5 = Vector512.FusedMultiplyAdd(qd, TQ.KeyLanes512(ref Unsafe.Add(ref src, 5 * blockBytes)) * s5, a5);
                    a6 = Vector512.FusedMultiplyAdd(qd, TQ.KeyLanes512(ref Unsafe.Add(ref src, 6 * blockBytes)) * s6, a6);
                    a7 = Vector512.FusedMultiplyAdd(qd, TQ.KeyLanes512(ref Unsafe.Add(ref src, 7 * blockBytes)) * s7, a7);
                }
            }
            ref float w = ref weights[b0 * Lanes];
            (a0 * scale).StoreUnsafe(ref w, 0);
            (a1 * scale).StoreUnsafe(ref w, 16);
            (a2 * scale).StoreUnsafe(ref w, 32);
            (a3 * scale).StoreUnsafe(ref w, 48);
            (a4 * scale).StoreUnsafe(ref w, 64);
            (a5 * scale).StoreUnsafe(ref w, 80);
            (a6 * scale).StoreUnsafe(ref w, 96);
            (a7 * scale).StoreUnsafe(ref w, 112);
        }
        if (full < blocks)
        {
            // The last blocks, fewer than eight: through the tile, as the tiled kernel runs them.
            DequantizeKeys(keys, layout, kvHead, full, blocks, chunk, Width.Avx512);
            for (int b = full, n; b < blocks; b += n)
            {
                n = Fit(ChunkBlocks, blocks - b);
                AttentionTile.Run<Lanes512, Vector512<float>, float>(1, n, ref q, headDim, headDim,
                    ref chunk[(b - full) * blockElements], 16 * Lanes, Lanes, blockElements, (nint)n * blockElements, ref weights[b * Lanes], stride, scale, 0, false);
            }
        }
        Prefetch(values, layout, kvHead, 0, Math.Min(blocks, ValuePrefetchBlocks));
        Attention.NormalizeScores(weights[..length], false, shape);
        ref byte v0 = ref Unsafe.AsRef(in values[layout.GroupOffset(0, kvHead)]);
        ref float o = ref MemoryMarshal.GetReference(output);
        switch (headDim / Lanes)
        {
            case 2: WeightedValues<TQ, Count2>(weights[..length], ref v0, layout, values, kvHead, ref o); break;
            case 4: WeightedValues<TQ, Count4>(weights[..length], ref v0, layout, values, kvHead, ref o); break;
            case 6: WeightedValues<TQ, Count6>(weights[..length], ref v0, layout, values, kvHead, ref o); break;
            default: WeightedValues<TQ, Count8>(weights[..length], ref v0, layout, values, kvHead, ref o); break;
        }
    }

    // Block j's 16 scales (F16) at s, j blocks on, widened.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Scales(ref ushort s, int j, nint blockBytes) =>
        Float16.Widen512(Vector256.LoadUnsafe(ref Unsafe.As<byte, ushort>(ref Unsafe.AddByteOffset(ref Unsafe.As<ushort, byte>(ref s), j * blockBytes))));

    // o[16·i + lane] = Σ_t weights[t] · value[t][16·i + lane] for i < TG, one fused chain per lane from t = 0; the value
    // rows are each position's TG / 2 quant blocks.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WeightedValues<TQ, TG>(ReadOnlySpan<float> weights, ref byte v0, KvQuantLayout layout, ReadOnlySpan<byte> values, int kvHead, ref float o)
        where TQ : struct, IKvQuants where TG : struct, ITileCount
    {
        int g = TG.Value, typeBytes = layout.TypeBytes, rowBytes = layout.GroupBlocks * typeBytes, blocks = KvBlockLayout.Blocks(weights.Length);
        nint blockBytes = layout.BlockBytes;
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        for (int t = 0; t < weights.Length; t++)
        {
            if (t % Lanes == 0 && t / Lanes + ValuePrefetchBlocks < blocks)
                Prefetch(values, layout, kvHead, t / Lanes + ValuePrefetchBlocks, t / Lanes + ValuePrefetchBlocks + 1);
            ref byte row = ref Unsafe.Add(ref v0, t / Lanes * blockBytes + t % Lanes * rowBytes);
            var w = Vector512.Create(weights[t]);
            var s = Vector512.Create(Float16.ToSingleLookup(Unsafe.ReadUnaligned<ushort>(ref row)));
            ref byte qs = ref Unsafe.Add(ref row, sizeof(ushort));
            c0 = Vector512.FusedMultiplyAdd(w, TQ.ValueLanes512(ref qs, 0) * s, c0);
            c1 = Vector512.FusedMultiplyAdd(w, TQ.ValueLanes512(ref qs, 1) * s, c1);
            if (g > 2)
            {
                row = ref Unsafe.Add(ref row, typeBytes);
                s = Vector512.Create(Float16.ToSingleLookup(Unsafe.ReadUnaligned<ushort>(ref row)));
                qs = ref Unsafe.Add(ref row, sizeof(ushort));
                c2 = Vector512.FusedMultiplyAdd(w, TQ.ValueLanes512(ref qs, 0) * s, c2);
                c3 = Vector512.FusedMultiplyAdd(w, TQ.ValueLanes512(ref qs, 1) * s, c3);
            }
            if (g > 4)
            {
                row = ref Unsafe.Add(ref row, typeBytes);
                s = Vector512.Create(Float16.ToSingleLookup(Unsafe.ReadUnaligned<ushort>(ref row)));
                qs = ref Unsafe.Add(ref row, sizeof(ushort));
                c4 = Vector512.FusedMultiplyAdd(w, TQ.ValueLanes512(ref qs, 0) * s, c4);
                c5 = Vector512.FusedMultiplyAdd(w, TQ.ValueLanes512(ref qs, 1) * s, c5);
            }
            if (g > 6)
            {
                row = ref Unsafe.Add(ref row, typeBytes);
                s = Vector512.Create(Float16.ToSingleLookup(Unsafe.ReadUnaligned<ushort>(ref row)));
                qs = ref Unsafe.Add(ref row, sizeof(ushort));
                c6 = Vector512.FusedMultiplyAdd(w, TQ.ValueLanes512(ref qs, 0) * s, c6);
                c7 = Vector512.FusedMultiplyAdd(w, TQ.ValueLanes512(ref qs, 1) * s, c7);
            }
        }
        c0.StoreUnsafe(ref o, 0);
        c1.StoreUnsafe(ref o, 16);
        if (g > 2) { c2.StoreUnsafe(ref o, 32); c3.StoreUnsafe(ref o, 48); }
        if (g > 4) { c4.StoreUnsafe(ref o, 64); c5.StoreUnsafe(ref o, 80); }
        if (g > 6) { c6.StoreUnsafe(ref o, 96); c7.StoreUnsafe(ref o, 112); }
    }
}

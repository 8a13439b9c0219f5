using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedLM.Kernels;

/// <summary>
/// Operations on sixteen F32 lanes held in a <typeparamref name="TVec"/>: one key dimension of a 16-position block,
/// or 16 dimensions of a value row. Every lane is its own fused multiply-add chain, so the result of a lane never
/// depends on the vector width. (The lanes are the raw register type where one exists: the JIT allocates a
/// wrapping struct's registers worse.)
/// </summary>
internal interface ILanes16<TVec> where TVec : struct
{
    /// <summary>Lane groups a tile may accumulate in registers.</summary>
    static abstract int MaxAccumulators { get; }
    /// <summary>Lane groups of the B operand a tile may hold in registers at once.</summary>
    static abstract int MaxColumns { get; }
    static abstract TVec Load(ref float source);
    /// <summary>Sixteen F16 values, widened.</summary>
    static abstract TVec Load(ref ushort source);
    /// <summary>a in every lane.</summary>
    static abstract TVec Broadcast(ref float a);
    /// <summary>accumulator + a·b per lane, fused.</summary>
    static abstract TVec MultiplyAdd(TVec accumulator, TVec a, TVec b);
    static abstract void Store(TVec value, float scale, ref float destination);
}

/// <summary>Sixteen lanes in one 512-bit vector (32 registers: sixteen accumulators and their operands).</summary>
internal readonly struct Lanes512 : ILanes16<Vector512<float>>
{
    public static int MaxAccumulators => 16;
    public static int MaxColumns => 8;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load(ref float source) => Vector512.LoadUnsafe(ref source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load(ref ushort source) => Float16.Widen512(Vector256.LoadUnsafe(ref source));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Broadcast(ref float a) => Vector512.Create(a);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> MultiplyAdd(Vector512<float> accumulator, Vector512<float> a, Vector512<float> b) =>
        Vector512.FusedMultiplyAdd(a, b, accumulator);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector512<float> value, float scale, ref float destination) => (value * scale).StoreUnsafe(ref destination);
}

/// <summary>Sixteen lanes in two 256-bit vectors (16 registers: four accumulators, two operands and broadcasts).</summary>
internal readonly struct Lanes256 : ILanes16<Lanes256.Pair>
{
    internal readonly record struct Pair(Vector256<float> Lo, Vector256<float> Hi);

    public static int MaxAccumulators => 4;
    public static int MaxColumns => 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Pair Load(ref float source) => new(Vector256.LoadUnsafe(ref source), Vector256.LoadUnsafe(ref source, 8));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Pair Load(ref ushort source) =>
        new(Float16.Widen(Vector128.LoadUnsafe(ref source)), Float16.Widen(Vector128.LoadUnsafe(ref source, 8)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Pair Broadcast(ref float a)
    {
        var v = Vector256.Create(a);
        return new(v, v);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Pair MultiplyAdd(Pair accumulator, Pair a, Pair b) =>
        new(Vector256.FusedMultiplyAdd(a.Lo, b.Lo, accumulator.Lo), Vector256.FusedMultiplyAdd(a.Lo, b.Hi, accumulator.Hi));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Pair value, float scale, ref float destination)
    {
        (value.Lo * scale).StoreUnsafe(ref destination);
        (value.Hi * scale).StoreUnsafe(ref destination, 8);
    }
}

/// <summary>A count fixed per generic instantiation, so the JIT folds the branches that test it.</summary>
internal interface ITileCount
{
    static abstract int Value { get; }
}

internal readonly struct Count1 : ITileCount { public static int Value => 1; }
internal readonly struct Count2 : ITileCount { public static int Value => 2; }
internal readonly struct Count3 : ITileCount { public static int Value => 3; }
internal readonly struct Count4 : ITileCount { public static int Value => 4; }
internal readonly struct Count5 : ITileCount { public static int Value => 5; }
internal readonly struct Count6 : ITileCount { public static int Value => 6; }
internal readonly struct Count7 : ITileCount { public static int Value => 7; }
internal readonly struct Count8 : ITileCount { public static int Value => 8; }

/// <summary>
/// The register tile both halves of attention run on: C[i][j] = scale · Σ_k A[i][k] · B(k, j) for i &lt; TH rows
/// of A (query heads) and j &lt; TN lane groups of 16, each sum one fused chain in k order from zero.
/// A(i, k) = a[i·aStride + k], a float broadcast. B(k, j) = b[(k / 16)·chunkStride + (k % 16)·kStride + j·columnStride],
/// 16 lanes: for Q·Kᵀ, k is the key dimension and j a block of 16 positions; for weights·V, k is the position and
/// j a run of 16 value dimensions. C(i, j) = c[i·cStride + 16·j]. B(k, j) + ahead is prefetched. TH·TN ≤ 16, TN ∈ {1, 2, 4, 8}.
/// k runs over [kStart, kCount); with accumulate, each chain goes on from the C an earlier tile stored with scale 1
/// (the same fused operations as one tile over the whole range: a prefix of the rows can stop early).
/// </summary>
internal static unsafe class AttentionTile
{
    /// <summary>Runs the (th, tn) instantiation.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run<TL, TV, TE>(int th, int tn, ref float a, nint aStride, int kCount,
        ref TE b, nint chunkStride, nint kStride, nint columnStride, nint ahead, ref float c, nint cStride, float scale, int kStart, bool accumulate)
        where TL : struct, ILanes16<TV> where TV : struct where TE : unmanaged
    {
        switch (th)
        {
            case 1: Columns<TL, TV, TE, Count1>(tn, ref a, aStride, kCount, ref b, chunkStride, kStride, columnStride, ahead, ref c, cStride, scale, kStart, accumulate); break;
            case 2: Columns<TL, TV, TE, Count2>(tn, ref a, aStride, kCount, ref b, chunkStride, kStride, columnStride, ahead, ref c, cStride, scale, kStart, accumulate); break;
            case 3: Columns<TL, TV, TE, Count3>(tn, ref a, aStride, kCount, ref b, chunkStride, kStride, columnStride, ahead, ref c, cStride, scale, kStart, accumulate); break;
            case 4: Columns<TL, TV, TE, Count4>(tn, ref a, aStride, kCount, ref b, chunkStride, kStride, columnStride, ahead, ref c, cStride, scale, kStart, accumulate); break;
            case 5: Columns<TL, TV, TE, Count5>(tn, ref a, aStride, kCount, ref b, chunkStride, kStride, columnStride, ahead, ref c, cStride, scale, kStart, accumulate); break;
            case 6: Columns<TL, TV, TE, Count6>(tn, ref a, aStride, kCount, ref b, chunkStride, kStride, columnStride, ahead, ref c, cStride, scale, kStart, accumulate); break;
            case 7: Columns<TL, TV, TE, Count7>(tn, ref a, aStride, kCount, ref b, chunkStride, kStride, columnStride, ahead, ref c, cStride, scale, kStart, accumulate); break;
            case 8: Columns<TL, TV, TE, Count8>(tn, ref a, aStride, kCount, ref b, chunkStride, kStride, columnStride, ahead, ref c, cStride, scale, kStart, accumulate); break;
            default: throw new ArgumentOutOfRangeException(nameof(th), th, "A tile has 1 to 8 rows.");
        }
    }

    /// <summary>
    /// The widest tile of <paramref name="th"/> rows: lane groups, a power of two with th·tn within
    /// <typeparamref name="TL"/>'s accumulators and columns, at most 4 for more than one row.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int Columns<TL, TV>(int th) where TL : struct, ILanes16<TV> where TV : struct
    {
        int tn = 1;
        while (tn < TL.MaxColumns && (th == 1 || tn < 4) && th * tn * 2 <= TL.MaxAccumulators)
            tn *= 2;
        return tn;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Columns<TL, TV, TE, TH>(int tn, ref float a, nint aStride, int kCount,
        ref TE b, nint chunkStride, nint kStride, nint columnStride, nint ahead, ref float c, nint cStride, float scale, int kStart, bool accumulate)
        where TL : struct, ILanes16<TV> where TV : struct where TE : unmanaged where TH : struct, ITileCount
    {
        switch (tn)
        {
            case 1: Tile<TL, TV, TE, TH, Count1>(ref a, aStride, kCount, ref b, chunkStride, kStride, columnStride, ahead, ref c, cStride, scale, kStart, accumulate); break;
            case 2: Tile<TL, TV, TE, TH, Count2>(ref a, aStride, kCount, ref b, chunkStride, kStride, columnStride, ahead, ref c, cStride, scale, kStart, accumulate); break;
            case 4 when TH.Value <= 4: Tile<TL, TV, TE, TH, Count4>(ref a, aStride, kCount, ref b, chunkStride, kStride, columnStride, ahead, ref c, cStride, scale, kStart, accumulate); break;
            case 8 when TH.Value == 1: Tile<TL, TV, TE, TH, Count8>(ref a, aStride, kCount, ref b, chunkStride, kStride, columnStride, ahead, ref c, cStride, scale, kStart, accumulate); break;
            default: throw new ArgumentOutOfRangeException(nameof(tn), tn, "A tile has at most 16 accumulators, in 1, 2, 4 or 8 lane groups.");
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV Load<TL, TV, TE>(ref TE source) where TL : struct, ILanes16<TV> where TV : struct where TE : unmanaged =>
        typeof(TE) == typeof(ushort) ? TL.Load(ref Unsafe.As<TE, ushort>(ref source)) : TL.Load(ref Unsafe.As<TE, float>(ref source));

    // Accumulator i's C: row i / tn, lane group i % tn.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ref float C(ref float c, int i, int tn, nint cStride) => ref Unsafe.Add(ref c, i / tn * cStride + i % tn * 16);

    // Zero, or C's current value where a tile continues chains an earlier tile stored (with scale 1).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV Initial<TL, TV>(bool accumulate, ref float c) where TL : struct, ILanes16<TV> where TV : struct =>
        accumulate ? TL.Load(ref c) : default;

    // Accumulator i is row i / TN, lane group i % TN (ternaries on TN that fold away per instantiation).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile<TL, TV, TE, TH, TN>(ref float a, nint aStride, int kCount,
        ref TE b, nint chunkStride, nint kStride, nint columnStride, nint ahead, ref float c, nint cStride, float scale, int kStart, bool accumulate)
        where TL : struct, ILanes16<TV> where TV : struct where TE : unmanaged where TH : struct, ITileCount where TN : struct, ITileCount
    {
        int th = TH.Value, tn = TN.Value, n = th * tn;
        TV c0 = Initial<TL, TV>(accumulate, ref c), c1 = n > 1 ? Initial<TL, TV>(accumulate, ref C(ref c, 1, tn, cStride)) : default;
        TV c2 = n > 2 ? Initial<TL, TV>(accumulate, ref C(ref c, 2, tn, cStride)) : default, c3 = n > 3 ? Initial<TL, TV>(accumulate, ref C(ref c, 3, tn, cStride)) : default;
        TV c4 = n > 4 ? Initial<TL, TV>(accumulate, ref C(ref c, 4, tn, cStride)) : default, c5 = n > 5 ? Initial<TL, TV>(accumulate, ref C(ref c, 5, tn, cStride)) : default;
        TV c6 = n > 6 ? Initial<TL, TV>(accumulate, ref C(ref c, 6, tn, cStride)) : default, c7 = n > 7 ? Initial<TL, TV>(accumulate, ref C(ref c, 7, tn, cStride)) : default;
        TV c8 = n > 8 ? Initial<TL, TV>(accumulate, ref C(ref c, 8, tn, cStride)) : default, c9 = n > 9 ? Initial<TL, TV>(accumulate, ref C(ref c, 9, tn, cStride)) : default;
        TV c10 = n > 10 ? Initial<TL, TV>(accumulate, ref C(ref c, 10, tn, cStride)) : default, c11 = n > 11 ? Initial<TL, TV>(accumulate, ref C(ref c, 11, tn, cStride)) : default;
        TV c12 = n > 12 ? Initial<TL, TV>(accumulate, ref C(ref c, 12, tn, cStride)) : default, c13 = n > 13 ? Initial<TL, TV>(accumulate, ref C(ref c, 13, tn, cStride)) : default;
        TV c14 = n > 14 ? Initial<TL, TV>(accumulate, ref C(ref c, 14, tn, cStride)) : default, c15 = n > 15 ? Initial<TL, TV>(accumulate, ref C(ref c, 15, tn, cStride)) : default;
        int first = kStart % KvBlockLayout.BlockLength;
        b = ref Unsafe.Add(ref b, kStart / KvBlockLayout.BlockLength * chunkStride);
        for (int k0 = kStart - first; k0 < kCount; k0 += KvBlockLayout.BlockLength, b = ref Unsafe.Add(ref b, chunkStride), first = 0)
        {
            int kEnd = Math.Min(KvBlockLayout.BlockLength, kCount - k0);
            ref float ak = ref Unsafe.Add(ref a, k0 + first);
            ref TE bk = ref Unsafe.Add(ref b, first * kStride);
            for (int k = first; k < kEnd; k++)
            {
                TV b0 = Load<TL, TV, TE>(ref bk);
                TV b1 = tn > 1 ? Load<TL, TV, TE>(ref Unsafe.Add(ref bk, columnStride)) : default;
                TV b2 = tn > 2 ? Load<TL, TV, TE>(ref Unsafe.Add(ref bk, 2 * columnStride)) : default;
                TV b3 = tn > 2 ? Load<TL, TV, TE>(ref Unsafe.Add(ref bk, 3 * columnStride)) : default;
                TV b4 = tn > 4 ? Load<TL, TV, TE>(ref Unsafe.Add(ref bk, 4 * columnStride)) : default;
                TV b5 = tn > 4 ? Load<TL, TV, TE>(ref Unsafe.Add(ref bk, 5 * columnStride)) : default;
                TV b6 = tn > 4 ? Load<TL, TV, TE>(ref Unsafe.Add(ref bk, 6 * columnStride)) : default;
                TV b7 = tn > 4 ? Load<TL, TV, TE>(ref Unsafe.Add(ref bk, 7 * columnStride)) : default;
                // Each row's A once per k: th broadcasts serve th·tn multiply-adds.
                TV a0 = TL.Broadcast(ref ak);
                TV a1 = th > 1 ? TL.Broadcast(ref Unsafe.Add(ref ak, aStride)) : default;
                TV a2 = th > 2 ? TL.Broadcast(ref Unsafe.Add(ref ak, 2 * aStride)) : default;
                TV a3 = th > 3 ? TL.Broadcast(ref Unsafe.Add(ref ak, 3 * aStride)) : default;
                TV a4 = th > 4 ? TL.Broadcast(ref Unsafe.Add(ref ak, 4 * aStride)) : default;
                TV a5 = th > 5 ? TL.Broadcast(ref Unsafe.Add(ref ak, 5 * aStride)) : default;
                TV a6 = th > 6 ? TL.Broadcast(ref Unsafe.Add(ref ak, 6 * aStride)) : default;
                TV a7 = th > 7 ? TL.Broadcast(ref Unsafe.Add(ref ak, 7 * aStride)) : default;
                c0 = TL.MultiplyAdd(c0, a0, b0);
                if (n > 1) c1 = TL.MultiplyAdd(c1, tn == 1 ? a1 : a0, tn == 1 ? b0 : b1);
                if (n > 2) c2 = TL.MultiplyAdd(c2, tn == 1 ? a2 : tn == 2 ? a1 : a0, tn == 1 ? b0 : tn == 2 ? b0 : b2);
                if (n > 3) c3 = TL.MultiplyAdd(c3, tn == 1 ? a3 : tn == 2 ? a1 : a0, tn == 1 ? b0 : tn == 2 ? b1 : b3);
                if (n > 4) c4 = TL.MultiplyAdd(c4, tn == 1 ? a4 : tn == 2 ? a2 : tn == 4 ? a1 : a0, tn == 1 ? b0 : tn == 2 ? b0 : tn == 4 ? b0 : b4);
                if (n > 5) c5 = TL.MultiplyAdd(c5, tn == 1 ? a5 : tn == 2 ? a2 : tn == 4 ? a1 : a0, tn == 1 ? b0 : tn == 2 ? b1 : tn == 4 ? b1 : b5);
                if (n > 6) c6 = TL.MultiplyAdd(c6, tn == 1 ? a6 : tn == 2 ? a3 : tn == 4 ? a1 : a0, tn == 1 ? b0 : tn == 2 ? b0 : tn == 4 ? b2 : b6);
                if (n > 7) c7 = TL.MultiplyAdd(c7, tn == 1 ? a7 : tn == 2 ? a3 : tn == 4 ? a1 : a0, tn == 1 ? b0 : tn == 2 ? b1 : tn == 4 ? b3 : b7);
                if (n > 8) c8 = TL.MultiplyAdd(c8, tn == 1 ? a7 : tn == 2 ? a4 : tn == 4 ? a2 : a1, b0);
                if (n > 9) c9 = TL.MultiplyAdd(c9, tn == 1 ? a7 : tn == 2 ? a4 : tn == 4 ? a2 : a1, tn == 1 ? b0 : b1);
                if (n > 10) c10 = TL.MultiplyAdd(c10, tn == 1 ? a7 : tn == 2 ? a5 : tn == 4 ? a2 : a1, tn == 1 ? b0 : tn == 2 ? b0 : b2);
                if (n > 11) c11 = TL.MultiplyAdd(c11, tn == 1 ? a7 : tn == 2 ? a5 : tn == 4 ? a2 : a1, tn == 1 ? b0 : tn == 2 ? b1 : b3);
                if (n > 12) c12 = TL.MultiplyAdd(c12, tn == 1 ? a7 : tn == 2 ? a6 : tn == 4 ? a3 : a1, tn == 1 ? b0 : tn == 2 ? b0 : tn == 4 ? b0 : b4);
                if (n > 13) c13 = TL.MultiplyAdd(c13, tn == 1 ? a7 : tn == 2 ? a6 : tn == 4 ? a3 : a1, tn == 1 ? b0 : tn == 2 ? b1 : tn == 4 ? b1 : b5);
                if (n > 14) c14 = TL.MultiplyAdd(c14, tn == 1 ? a7 : tn == 2 ? a7 : tn == 4 ? a3 : a1, tn == 1 ? b0 : tn == 2 ? b0 : tn == 4 ? b2 : b6);
                if (n > 15) c15 = TL.MultiplyAdd(c15, tn == 1 ? a7 : tn == 2 ? a7 : tn == 4 ? a3 : a1, tn == 1 ? b0 : tn == 2 ? b1 : tn == 4 ? b3 : b7);
                if (Sse.IsSupported)
                {
                    // The operand a later tile or chunk reads (a hint: never faults), one line per lane group and step.
                    Sse.Prefetch0(Unsafe.AsPointer(ref Unsafe.Add(ref bk, ahead)));
                    if (tn > 1) Sse.Prefetch0(Unsafe.AsPointer(ref Unsafe.Add(ref bk, ahead + columnStride)));
                    if (tn > 2) Sse.Prefetch0(Unsafe.AsPointer(ref Unsafe.Add(ref bk, ahead + 2 * columnStride)));
                    if (tn > 2) Sse.Prefetch0(Unsafe.AsPointer(ref Unsafe.Add(ref bk, ahead + 3 * columnStride)));
                    if (tn > 4) Sse.Prefetch0(Unsafe.AsPointer(ref Unsafe.Add(ref bk, ahead + 4 * columnStride)));
                    if (tn > 4) Sse.Prefetch0(Unsafe.AsPointer(ref Unsafe.Add(ref bk, ahead + 5 * columnStride)));
                    if (tn > 4) Sse.Prefetch0(Unsafe.AsPointer(ref Unsafe.Add(ref bk, ahead + 6 * columnStride)));
                    if (tn > 4) Sse.Prefetch0(Unsafe.AsPointer(ref Unsafe.Add(ref bk, ahead + 7 * columnStride)));
                }
                bk = ref Unsafe.Add(ref bk, kStride);
                ak = ref Unsafe.Add(ref ak, 1);
            }
        }
        TL.Store(c0, scale, ref c);
        if (n > 1) TL.Store(c1, scale, ref C(ref c, 1, tn, cStride));
        if (n > 2) TL.Store(c2, scale, ref C(ref c, 2, tn, cStride));
        if (n > 3) TL.Store(c3, scale, ref C(ref c, 3, tn, cStride));
        if (n > 4) TL.Store(c4, scale, ref C(ref c, 4, tn, cStride));
        if (n > 5) TL.Store(c5, scale, ref C(ref c, 5, tn, cStride));
        if (n > 6) TL.Store(c6, scale, ref C(ref c, 6, tn, cStride));
        if (n > 7) TL.Store(c7, scale, ref C(ref c, 7, tn, cStride));
        if (n > 8) TL.Store(c8, scale, ref C(ref c, 8, tn, cStride));
        if (n > 9) TL.Store(c9, scale, ref C(ref c, 9, tn, cStride));
        if (n > 10) TL.Store(c10, scale, ref C(ref c, 10, tn, cStride));
        if (n > 11) TL.Store(c11, scale, ref C(ref c, 11, tn, cStride));
        if (n > 12) TL.Store(c12, scale, ref C(ref c, 12, tn, cStride));
        if (n > 13) TL.Store(c13, scale, ref C(ref c, 13, tn, cStride));
        if (n > 14) TL.Store(c14, scale, ref C(ref c, 14, tn, cStride));
        if (n > 15) TL.Store(c15, scale, ref C(ref c, 15, tn, cStride));
    }
}

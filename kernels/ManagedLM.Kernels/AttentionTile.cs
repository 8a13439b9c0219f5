using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ManagedLM.Kernels;

/// <summary>
/// Sixteen F32 lanes: one key dimension of a 16-position block, or 16 dimensions of a value row. Every lane
/// is its own fused multiply-add chain, so the result of a lane never depends on the vector width.
/// </summary>
internal interface ILanes16<TSelf> where TSelf : struct, ILanes16<TSelf>
{
    /// <summary>Lane groups a tile may accumulate in registers.</summary>
    static abstract int MaxAccumulators { get; }
    static abstract TSelf Load(ref float source);
    /// <summary>Sixteen F16 values, widened.</summary>
    static abstract TSelf Load(ref ushort source);
    /// <summary>accumulator + a·b per lane, fused (a by reference: the JIT then broadcasts straight from memory).</summary>
    static abstract TSelf MultiplyAdd(TSelf accumulator, ref float a, TSelf b);
    static abstract void Store(TSelf value, float scale, ref float destination);
}

/// <summary>Sixteen lanes in one 512-bit vector (32 registers: eight accumulators and their operands).</summary>
internal readonly struct Lanes512 : ILanes16<Lanes512>
{
    private readonly Vector512<float> _v;
    private Lanes512(Vector512<float> v) => _v = v;

    public static int MaxAccumulators => 8;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lanes512 Load(ref float source) => new(Vector512.LoadUnsafe(ref source));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lanes512 Load(ref ushort source) => new(Float16.Widen512(Vector256.LoadUnsafe(ref source)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lanes512 MultiplyAdd(Lanes512 accumulator, ref float a, Lanes512 b) =>
        new(Vector512.FusedMultiplyAdd(Vector512.Create(a), b._v, accumulator._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Lanes512 value, float scale, ref float destination) => (value._v * scale).StoreUnsafe(ref destination);
}

/// <summary>Sixteen lanes in two 256-bit vectors (16 registers: four accumulators and their operands).</summary>
internal readonly struct Lanes256 : ILanes16<Lanes256>
{
    private readonly Vector256<float> _lo, _hi;
    private Lanes256(Vector256<float> lo, Vector256<float> hi) => (_lo, _hi) = (lo, hi);

    public static int MaxAccumulators => 4;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lanes256 Load(ref float source) =>
        new(Vector256.LoadUnsafe(ref source), Vector256.LoadUnsafe(ref source, 8));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lanes256 Load(ref ushort source) =>
        new(Float16.Widen(Vector128.LoadUnsafe(ref source)), Float16.Widen(Vector128.LoadUnsafe(ref source, 8)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lanes256 MultiplyAdd(Lanes256 accumulator, ref float a, Lanes256 b)
    {
        var va = Vector256.Create(a);
        return new(Vector256.FusedMultiplyAdd(va, b._lo, accumulator._lo), Vector256.FusedMultiplyAdd(va, b._hi, accumulator._hi));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Lanes256 value, float scale, ref float destination)
    {
        (value._lo * scale).StoreUnsafe(ref destination);
        (value._hi * scale).StoreUnsafe(ref destination, 8);
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
/// j a run of 16 value dimensions. C(i, j) = c[i·cStride + 16·j]. TH·TN ≤ 8, TN ∈ {1, 2, 4, 8}.
/// </summary>
internal static class AttentionTile
{
    /// <summary>Runs the (th, tn) instantiation.</summary>
    public static void Run<TL, TE>(int th, int tn, ref float a, nint aStride, int kCount,
        ref TE b, nint chunkStride, nint kStride, nint columnStride, ref float c, nint cStride, float scale)
        where TL : struct, ILanes16<TL> where TE : unmanaged
    {
        switch (th)
        {
            case 1: Columns<TL, TE, Count1>(tn, ref a, aStride, kCount, ref b, chunkStride, kStride, columnStride, ref c, cStride, scale); break;
            case 2: Columns<TL, TE, Count2>(tn, ref a, aStride, kCount, ref b, chunkStride, kStride, columnStride, ref c, cStride, scale); break;
            case 3: Columns<TL, TE, Count3>(tn, ref a, aStride, kCount, ref b, chunkStride, kStride, columnStride, ref c, cStride, scale); break;
            case 4: Columns<TL, TE, Count4>(tn, ref a, aStride, kCount, ref b, chunkStride, kStride, columnStride, ref c, cStride, scale); break;
            case 5: Tile<TL, TE, Count5, Count1>(ref a, aStride, kCount, ref b, chunkStride, kStride, columnStride, ref c, cStride, scale); break;
            case 6: Tile<TL, TE, Count6, Count1>(ref a, aStride, kCount, ref b, chunkStride, kStride, columnStride, ref c, cStride, scale); break;
            case 7: Tile<TL, TE, Count7, Count1>(ref a, aStride, kCount, ref b, chunkStride, kStride, columnStride, ref c, cStride, scale); break;
            case 8: Tile<TL, TE, Count8, Count1>(ref a, aStride, kCount, ref b, chunkStride, kStride, columnStride, ref c, cStride, scale); break;
            default: throw new ArgumentOutOfRangeException(nameof(th), th, "A tile has 1 to 8 rows.");
        }
    }

    /// <summary>The widest tile of <paramref name="th"/> rows: lane groups, a power of two with th·tn within the accumulators.</summary>
    public static int Columns(int th, int maxAccumulators)
    {
        int tn = 1;
        while (tn < 8 && th * tn * 2 <= maxAccumulators)
            tn *= 2;
        return tn;
    }

    private static void Columns<TL, TE, TH>(int tn, ref float a, nint aStride, int kCount,
        ref TE b, nint chunkStride, nint kStride, nint columnStride, ref float c, nint cStride, float scale)
        where TL : struct, ILanes16<TL> where TE : unmanaged where TH : struct, ITileCount
    {
        switch (tn)
        {
            case 1: Tile<TL, TE, TH, Count1>(ref a, aStride, kCount, ref b, chunkStride, kStride, columnStride, ref c, cStride, scale); break;
            case 2 when TH.Value <= 4: Tile<TL, TE, TH, Count2>(ref a, aStride, kCount, ref b, chunkStride, kStride, columnStride, ref c, cStride, scale); break;
            case 4 when TH.Value <= 2: Tile<TL, TE, TH, Count4>(ref a, aStride, kCount, ref b, chunkStride, kStride, columnStride, ref c, cStride, scale); break;
            case 8 when TH.Value == 1: Tile<TL, TE, TH, Count8>(ref a, aStride, kCount, ref b, chunkStride, kStride, columnStride, ref c, cStride, scale); break;
            default: throw new ArgumentOutOfRangeException(nameof(tn), tn, "A tile has at most 8 accumulators, in 1, 2, 4 or 8 lane groups.");
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TL Load<TL, TE>(ref TE source) where TL : struct, ILanes16<TL> where TE : unmanaged =>
        typeof(TE) == typeof(ushort) ? TL.Load(ref Unsafe.As<TE, ushort>(ref source)) : TL.Load(ref Unsafe.As<TE, float>(ref source));

    // Accumulator i is row i / TN, lane group i % TN; the ternaries on TN fold away per instantiation.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile<TL, TE, TH, TN>(ref float a, nint aStride, int kCount,
        ref TE b, nint chunkStride, nint kStride, nint columnStride, ref float c, nint cStride, float scale)
        where TL : struct, ILanes16<TL> where TE : unmanaged where TH : struct, ITileCount where TN : struct, ITileCount
    {
        int n = TH.Value * TN.Value, tn = TN.Value;
        TL c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        for (int k0 = 0; k0 < kCount; k0 += KvBlockLayout.BlockLength, b = ref Unsafe.Add(ref b, chunkStride))
        {
            int kEnd = Math.Min(KvBlockLayout.BlockLength, kCount - k0);
            ref float ak = ref Unsafe.Add(ref a, k0);
            ref TE bk = ref b;
            for (int k = 0; k < kEnd; k++)
            {
                TL b0 = Load<TL, TE>(ref bk);
                TL b1 = tn > 1 ? Load<TL, TE>(ref Unsafe.Add(ref bk, columnStride)) : default;
                TL b2 = tn > 2 ? Load<TL, TE>(ref Unsafe.Add(ref bk, 2 * columnStride)) : default;
                TL b3 = tn > 2 ? Load<TL, TE>(ref Unsafe.Add(ref bk, 3 * columnStride)) : default;
                TL b4 = tn > 4 ? Load<TL, TE>(ref Unsafe.Add(ref bk, 4 * columnStride)) : default;
                TL b5 = tn > 4 ? Load<TL, TE>(ref Unsafe.Add(ref bk, 5 * columnStride)) : default;
                TL b6 = tn > 4 ? Load<TL, TE>(ref Unsafe.Add(ref bk, 6 * columnStride)) : default;
                TL b7 = tn > 4 ? Load<TL, TE>(ref Unsafe.Add(ref bk, 7 * columnStride)) : default;
                c0 = TL.MultiplyAdd(c0, ref ak, b0);
                if (n > 1)
                    c1 = TL.MultiplyAdd(c1, ref Unsafe.Add(ref ak, 1 / tn * aStride), tn == 1 ? b0 : b1);
                if (n > 2)
                    c2 = TL.MultiplyAdd(c2, ref Unsafe.Add(ref ak, 2 / tn * aStride), tn <= 2 ? b0 : b2);
                if (n > 3)
                    c3 = TL.MultiplyAdd(c3, ref Unsafe.Add(ref ak, 3 / tn * aStride), tn == 1 ? b0 : tn == 2 ? b1 : b3);
                if (n > 4)
                    c4 = TL.MultiplyAdd(c4, ref Unsafe.Add(ref ak, 4 / tn * aStride), tn == 8 ? b4 : b0);
                if (n > 5)
                    c5 = TL.MultiplyAdd(c5, ref Unsafe.Add(ref ak, 5 / tn * aStride), tn == 1 ? b0 : tn == 8 ? b5 : b1);
                if (n > 6)
                    c6 = TL.MultiplyAdd(c6, ref Unsafe.Add(ref ak, 6 / tn * aStride), tn <= 2 ? b0 : tn == 4 ? b2 : b6);
                if (n > 7)
                    c7 = TL.MultiplyAdd(c7, ref Unsafe.Add(ref ak, 7 / tn * aStride), tn == 1 ? b0 : tn == 2 ? b1 : tn == 4 ? b3 : b7);
                bk = ref Unsafe.Add(ref bk, kStride);
                ak = ref Unsafe.Add(ref ak, 1);
            }
        }
        TL.Store(c0, scale, ref c);
        if (n > 1) TL.Store(c1, scale, ref Unsafe.Add(ref c, 1 / tn * cStride + 1 % tn * 16));
        if (n > 2) TL.Store(c2, scale, ref Unsafe.Add(ref c, 2 / tn * cStride + 2 % tn * 16));
        if (n > 3) TL.Store(c3, scale, ref Unsafe.Add(ref c, 3 / tn * cStride + 3 % tn * 16));
        if (n > 4) TL.Store(c4, scale, ref Unsafe.Add(ref c, 4 / tn * cStride + 4 % tn * 16));
        if (n > 5) TL.Store(c5, scale, ref Unsafe.Add(ref c, 5 / tn * cStride + 5 % tn * 16));
        if (n > 6) TL.Store(c6, scale, ref Unsafe.Add(ref c, 6 / tn * cStride + 6 % tn * 16));
        if (n > 7) TL.Store(c7, scale, ref Unsafe.Add(ref c, 7 / tn * cStride + 7 % tn * 16));
    }
}

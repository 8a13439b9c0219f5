using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedLM.Kernels;

/// <summary>A width of the dequantizer, fixed per generic instantiation so that the JIT keeps one path.</summary>
internal interface IDequantizeWidth
{
    static abstract AttentionQuantized.Width Width { get; }
}

internal readonly struct Wide512 : IDequantizeWidth { public static AttentionQuantized.Width Width => AttentionQuantized.Width.Avx512; }
internal readonly struct Wide256 : IDequantizeWidth { public static AttentionQuantized.Width Width => AttentionQuantized.Width.Avx2; }
internal readonly struct Narrow : IDequantizeWidth { public static AttentionQuantized.Width Width => AttentionQuantized.Width.Scalar; }

/// <summary>
/// How one block type of a <see cref="KvQuantLayout"/> dequantizes (value = quant · scale, as ggml): a run of key
/// dimensions (16 positions each, one scale per position) into [dimension][16], and a value block's 32 quants.
/// </summary>
internal interface IKvQuants
{
    /// <summary>Bytes of one key dimension's 16 quants.</summary>
    static abstract int DimensionBytes { get; }

    /// <summary>y[16·d + lane] = quant(d, lane) · scale[lane] for d &lt; count.</summary>
    static abstract void Keys512(ref byte src, int count, Vector512<float> scale, ref float y);

    /// <summary><see cref="Keys512"/> in two 256-bit halves (lanes 0–7 scaled by lo, 8–15 by hi).</summary>
    static abstract void Keys256(ref byte src, int count, Vector256<float> lo, Vector256<float> hi, ref float y);

    /// <summary><see cref="Keys512"/> one value at a time, the scales as F16.</summary>
    static abstract void KeysScalar(ref byte src, int count, ref ushort scales, ref float y);

    /// <summary>y[j] = quant j · d for a value block's 32 quants.</summary>
    static abstract void Block512(ref byte qs, float d, ref float y);

    static abstract void Block256(ref byte qs, float d, ref float y);

    static abstract void BlockScalar(ref byte qs, float d, ref float y);

    /// <summary>A key dimension's 16 quants as floats (unscaled).</summary>
    static abstract Vector512<float> KeyLanes512(ref byte src);

    /// <summary>Quants [16·half, 16·half + 16) of a value block as floats (unscaled).</summary>
    static abstract Vector512<float> ValueLanes512(ref byte qs, int half);
}

/// <summary>Q8_0: a signed byte per quant (keys: 16 bytes per dimension).</summary>
internal readonly struct Q8Quants : IKvQuants
{
    public static int DimensionBytes => 16;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Keys512(ref byte src, int count, Vector512<float> scale, ref float y)
    {
        // Byte i of the run is value i of y: a dimension's 16 quants are its 16 lanes.
        ref sbyte q = ref Unsafe.As<byte, sbyte>(ref src);
        nuint i = 0, end = (nuint)count * 16;
        for (; i + 64 <= end; i += 64)
        {
            // Four dimensions: one cache line of quants.
            Vector512<int> a = Avx512F.ConvertToVector512Int32(Vector128.LoadUnsafe(ref q, i));
            Vector512<int> b = Avx512F.ConvertToVector512Int32(Vector128.LoadUnsafe(ref q, i + 16));
            Vector512<int> c = Avx512F.ConvertToVector512Int32(Vector128.LoadUnsafe(ref q, i + 32));
            Vector512<int> e = Avx512F.ConvertToVector512Int32(Vector128.LoadUnsafe(ref q, i + 48));
            (Avx512F.ConvertToVector512Single(a) * scale).StoreUnsafe(ref y, i);
            (Avx512F.ConvertToVector512Single(b) * scale).StoreUnsafe(ref y, i + 16);
            (Avx512F.ConvertToVector512Single(c) * scale).StoreUnsafe(ref y, i + 32);
            (Avx512F.ConvertToVector512Single(e) * scale).StoreUnsafe(ref y, i + 48);
        }
        for (; i < end; i += 16)
            (Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.LoadUnsafe(ref q, i))) * scale).StoreUnsafe(ref y, i);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Keys256(ref byte src, int count, Vector256<float> lo, Vector256<float> hi, ref float y)
    {
        ref sbyte q = ref Unsafe.As<byte, sbyte>(ref src);
        for (nuint i = 0, end = (nuint)count * 16; i < end; i += 16)
        {
            Vector128<sbyte> v = Vector128.LoadUnsafe(ref q, i);
            (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(v)) * lo).StoreUnsafe(ref y, i);
            (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(v, 8))) * hi).StoreUnsafe(ref y, i + 8);
        }
    }

    public static void KeysScalar(ref byte src, int count, ref ushort scales, ref float y)
    {
        for (int i = 0; i < count * 16; i++)
            Unsafe.Add(ref y, i) = (sbyte)Unsafe.Add(ref src, i) * Float16.ToSingle(Unsafe.Add(ref scales, i % 16));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Block512(ref byte qs, float d, ref float y)
    {
        ref sbyte q = ref Unsafe.As<byte, sbyte>(ref qs);
        var scale = Vector512.Create(d);
        (Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.LoadUnsafe(ref q))) * scale).StoreUnsafe(ref y);
        (Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.LoadUnsafe(ref q, 16))) * scale).StoreUnsafe(ref y, 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Block256(ref byte qs, float d, ref float y)
    {
        ref sbyte q = ref Unsafe.As<byte, sbyte>(ref qs);
        for (nuint i = 0; i < 32; i += 16)
        {
            Vector128<sbyte> v = Vector128.LoadUnsafe(ref q, i);
            (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(v)) * d).StoreUnsafe(ref y, i);
            (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(v, 8))) * d).StoreUnsafe(ref y, i + 8);
        }
    }

    public static void BlockScalar(ref byte qs, float d, ref float y)
    {
        for (int j = 0; j < 32; j++)
            Unsafe.Add(ref y, j) = (sbyte)Unsafe.Add(ref qs, j) * d;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> KeyLanes512(ref byte src) =>
        Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.LoadUnsafe(ref Unsafe.As<byte, sbyte>(ref src))));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> ValueLanes512(ref byte qs, int half) =>
        Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.LoadUnsafe(ref Unsafe.As<byte, sbyte>(ref qs), (nuint)(16 * half))));
}

/// <summary>
/// Q4_0: 4-bit quants, 8 subtracted (keys: 8 bytes per dimension, lane i in the low nibble of byte i and lane i + 8 in
/// its high nibble; a value block's element j in the low nibble of byte j, j + 16 in its high nibble).
/// </summary>
internal readonly struct Q4Quants : IKvQuants
{
    public static int DimensionBytes => 8;

    // Low and high nibbles of 16 bytes, 8 subtracted: the signed quants.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector128<sbyte> Lo, Vector128<sbyte> Hi) Split(Vector128<byte> v)
    {
        Vector128<byte> mask = Vector128.Create((byte)0x0F), eight = Vector128.Create((byte)8);
        return (((v & mask) - eight).AsSByte(), ((Vector128.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & mask) - eight).AsSByte());
    }

    // Dimensions d and d + 1 from their 16 bytes: each dimension's low nibbles (lanes 0–7), then its high ones (lanes 8–15).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector128<sbyte> First, Vector128<sbyte> Second) Dimensions(Vector128<byte> v)
    {
        var (lo, hi) = Split(v);
        return (Sse2.UnpackLow(lo.AsUInt64(), hi.AsUInt64()).AsSByte(), Sse2.UnpackHigh(lo.AsUInt64(), hi.AsUInt64()).AsSByte());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Keys512(ref byte src, int count, Vector512<float> scale, ref float y)
    {
        int d = 0;
        for (; d + 2 <= count; d += 2)
        {
            var (a, b) = Dimensions(Vector128.LoadUnsafe(ref src, (nuint)(d * 8)));
            (Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(a)) * scale).StoreUnsafe(ref y, (nuint)(d * 16));
            (Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(b)) * scale).StoreUnsafe(ref y, (nuint)(d * 16 + 16));
        }
        if (d < count)
        {
            // The last dimension alone: its 8 bytes only.
            var (a, _) = Dimensions(Vector128.CreateScalar(Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref src, d * 8))).AsByte());
            (Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(a)) * scale).StoreUnsafe(ref y, (nuint)(d * 16));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Keys256(ref byte src, int count, Vector256<float> lo, Vector256<float> hi, ref float y)
    {
        for (int d = 0; d < count; d++)
        {
            var (a, _) = Dimensions(Vector128.CreateScalar(Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref src, d * 8))).AsByte());
            (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(a)) * lo).StoreUnsafe(ref y, (nuint)(d * 16));
            (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(a, 8))) * hi).StoreUnsafe(ref y, (nuint)(d * 16 + 8));
        }
    }

    public static void KeysScalar(ref byte src, int count, ref ushort scales, ref float y)
    {
        for (int d = 0; d < count; d++)
        {
            for (int lane = 0; lane < 16; lane++)
            {
                byte b = Unsafe.Add(ref src, d * 8 + lane % 8);
                int q = (lane < 8 ? b & 0x0F : b >> 4) - 8;
                Unsafe.Add(ref y, d * 16 + lane) = q * Float16.ToSingle(Unsafe.Add(ref scales, lane));
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Block512(ref byte qs, float d, ref float y)
    {
        var (lo, hi) = Split(Vector128.LoadUnsafe(ref qs));
        var scale = Vector512.Create(d);
        (Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(lo)) * scale).StoreUnsafe(ref y);
        (Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(hi)) * scale).StoreUnsafe(ref y, 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Block256(ref byte qs, float d, ref float y)
    {
        var (lo, hi) = Split(Vector128.LoadUnsafe(ref qs));
        (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(lo)) * d).StoreUnsafe(ref y);
        (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(lo, 8))) * d).StoreUnsafe(ref y, 8);
        (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(hi)) * d).StoreUnsafe(ref y, 16);
        (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(hi, 8))) * d).StoreUnsafe(ref y, 24);
    }

    public static void BlockScalar(ref byte qs, float d, ref float y)
    {
        for (int j = 0; j < 16; j++)
        {
            Unsafe.Add(ref y, j) = ((Unsafe.Add(ref qs, j) & 0x0F) - 8) * d;
            Unsafe.Add(ref y, j + 16) = ((Unsafe.Add(ref qs, j) >> 4) - 8) * d;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> KeyLanes512(ref byte src)
    {
        var (a, _) = Dimensions(Vector128.CreateScalar(Unsafe.ReadUnaligned<ulong>(ref src)).AsByte());
        return Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(a));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> ValueLanes512(ref byte qs, int half)
    {
        var (lo, hi) = Split(Vector128.LoadUnsafe(ref qs));
        return Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(half == 0 ? lo : hi));
    }
}

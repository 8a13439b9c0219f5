using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedLM.Kernels.Quants;

/// <summary>
/// A 32-element weight block whose values are Scale·q[j] with signed quants q (Q4_0, Q5_0, Q8_0, IQ4_NL):
/// dotted with Q8_0 activation blocks.
/// </summary>
internal interface ISignedQuantBlock<TSelf> where TSelf : unmanaged, ISignedQuantBlock<TSelf>
{
    static abstract float Scale(ref readonly TSelf block);

    /// <summary>The 32 quants in element order (reference path).</summary>
    static abstract void Quants(ref readonly TSelf block, Span<sbyte> q);

    /// <summary>The same 32 quants as one vector; called only when <see cref="CpuFeatures.Avx2"/>.</summary>
    static abstract Vector256<sbyte> Quants256(ref readonly TSelf block);

    /// <summary>What <see cref="UnsignedQuants256"/> adds to every quant so that all are non-negative.</summary>
    static abstract int Offset { get; }

    /// <summary>The 32 quants plus <see cref="Offset"/>, as unsigned bytes (VPDPBUSD's unsigned operand); AVX2 only.</summary>
    static abstract Vector256<byte> UnsignedQuants256(ref readonly TSelf block);
}

/// <summary>
/// A 32-element weight block whose values are Scale·q[j] + Min with unsigned quants q (Q4_1, Q5_1):
/// dotted with Q8_1 activation blocks, whose stored sum s = d·Σq_a carries the Min term.
/// </summary>
internal interface IUnsignedQuantBlock<TSelf> where TSelf : unmanaged, IUnsignedQuantBlock<TSelf>
{
    static abstract float Scale(ref readonly TSelf block);
    static abstract float Min(ref readonly TSelf block);

    /// <summary>The 32 quants in element order (reference path).</summary>
    static abstract void Quants(ref readonly TSelf block, Span<byte> q);

    /// <summary>The same 32 quants as one vector; called only when <see cref="CpuFeatures.Avx2"/>.</summary>
    static abstract Vector256<byte> Quants256(ref readonly TSelf block);
}

/// <summary>
/// Dequantization and integer dot products of the 32-element legacy blocks against Q8_0 / Q8_1 activations.
/// <para>
/// Summation order (shared by the AVX2 path and its scalar reference, so the two agree bit for bit):
/// block b's integer sum Σ q_w·q_a is exact; it is scaled by d_w·d_a (exact in F32) and fused-added into
/// partial sum b mod 8; the eight partials are combined as ((p0+p4)+(p2+p6)) + ((p1+p5)+(p3+p7)).
/// </para>
/// </summary>
internal static class LegacyDot
{
    internal const int BlockSize = 32;
    internal const int Q8_0Bytes = 34; // d: F16, qs: 32 × int8
    internal const int Q8_1Bytes = 36; // d: F16, s: F16 (d·Σqs), qs: 32 × int8

    public static void DequantizeSigned<T>(ReadOnlySpan<T> blocks, Span<float> dst) where T : unmanaged, ISignedQuantBlock<T>
    {
        CheckDequantize(blocks.Length, dst.Length);
        Span<sbyte> q = stackalloc sbyte[BlockSize];
        for (int b = 0; b < blocks.Length; b++)
        {
            float d = T.Scale(in blocks[b]);
            T.Quants(in blocks[b], q);
            Span<float> y = dst.Slice(b * BlockSize, BlockSize);
            for (int j = 0; j < BlockSize; j++)
                y[j] = q[j] * d;
        }
    }

    public static void DequantizeUnsigned<T>(ReadOnlySpan<T> blocks, Span<float> dst) where T : unmanaged, IUnsignedQuantBlock<T>
    {
        CheckDequantize(blocks.Length, dst.Length);
        Span<byte> q = stackalloc byte[BlockSize];
        for (int b = 0; b < blocks.Length; b++)
        {
            float d = T.Scale(in blocks[b]), m = T.Min(in blocks[b]);
            T.Quants(in blocks[b], q);
            Span<float> y = dst.Slice(b * BlockSize, BlockSize);
            for (int j = 0; j < BlockSize; j++)
                y[j] = q[j] * d + m;
        }
    }

    /// <summary>Σ over blocks of d_w·d_a·Σ_j q_w[j]·q_a[j], against Q8_0 activation blocks.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Signed<T>(ReadOnlySpan<T> weights, ReadOnlySpan<byte> activation) where T : unmanaged, ISignedQuantBlock<T>
    {
        CheckActivation(weights.Length, activation.Length, Q8_0Bytes);
        return CpuFeatures.Avx2 ? SignedAvx2(weights, activation) : SignedReference(weights, activation);
    }

    /// <summary>Σ over blocks of d_w·d_a·Σ_j q_w[j]·q_a[j] + m_w·s_a, against Q8_1 activation blocks.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Unsigned<T>(ReadOnlySpan<T> weights, ReadOnlySpan<byte> activation) where T : unmanaged, IUnsignedQuantBlock<T>
    {
        CheckActivation(weights.Length, activation.Length, Q8_1Bytes);
        return CpuFeatures.Avx2 ? UnsignedAvx2(weights, activation) : UnsignedReference(weights, activation);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float SignedReference<T>(ReadOnlySpan<T> weights, ReadOnlySpan<byte> activation) where T : unmanaged, ISignedQuantBlock<T>
    {
        Span<float> partial = stackalloc float[8];
        Span<sbyte> q = stackalloc sbyte[BlockSize];
        for (int b = 0; b < weights.Length; b++)
        {
            ReadOnlySpan<byte> a = activation.Slice(b * Q8_0Bytes, Q8_0Bytes);
            T.Quants(in weights[b], q);
            int sum = 0;
            for (int j = 0; j < BlockSize; j++)
                sum += q[j] * (sbyte)a[2 + j];
            float d = T.Scale(in weights[b]) * Float16.ToSingle(MemoryMarshal.Read<ushort>(a));
            partial[b & 7] = MathF.FusedMultiplyAdd(sum, d, partial[b & 7]);
        }
        return Combine8(partial);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float UnsignedReference<T>(ReadOnlySpan<T> weights, ReadOnlySpan<byte> activation) where T : unmanaged, IUnsignedQuantBlock<T>
    {
        Span<float> partial = stackalloc float[8];
        Span<byte> q = stackalloc byte[BlockSize];
        for (int b = 0; b < weights.Length; b++)
        {
            ReadOnlySpan<byte> a = activation.Slice(b * Q8_1Bytes, Q8_1Bytes);
            T.Quants(in weights[b], q);
            int sum = 0;
            for (int j = 0; j < BlockSize; j++)
                sum += q[j] * (sbyte)a[4 + j];
            float d = T.Scale(in weights[b]) * Float16.ToSingle(MemoryMarshal.Read<ushort>(a));
            float s = Float16.ToSingle(MemoryMarshal.Read<ushort>(a[2..]));
            float p = MathF.FusedMultiplyAdd(sum, d, partial[b & 7]);
            partial[b & 7] = MathF.FusedMultiplyAdd(T.Min(in weights[b]), s, p);
        }
        return Combine8(partial);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float SignedAvx2<T>(ReadOnlySpan<T> weights, ReadOnlySpan<byte> activation) where T : unmanaged, ISignedQuantBlock<T>
    {
        int nb = weights.Length, full = nb & ~7, i = 0;
        ref T w = ref MemoryMarshal.GetReference(weights);
        ref byte a = ref MemoryMarshal.GetReference(activation);
        Vector256<float> acc = Vector256<float>.Zero;
        for (; i < full; i += 8)
            acc = SignedGroupAvx2(ref Unsafe.Add(ref w, i), ref Unsafe.Add(ref a, (nint)i * Q8_0Bytes), 8, acc);
        if (i < nb)
            acc = SignedGroupAvx2(ref Unsafe.Add(ref w, i), ref Unsafe.Add(ref a, (nint)i * Q8_0Bytes), nb - i, acc);
        return Combine8(acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float UnsignedAvx2<T>(ReadOnlySpan<T> weights, ReadOnlySpan<byte> activation) where T : unmanaged, IUnsignedQuantBlock<T>
    {
        int nb = weights.Length, full = nb & ~7, i = 0;
        ref T w = ref MemoryMarshal.GetReference(weights);
        ref byte a = ref MemoryMarshal.GetReference(activation);
        Vector256<float> acc = Vector256<float>.Zero;
        for (; i < full; i += 8)
            acc = UnsignedGroupAvx2(ref Unsafe.Add(ref w, i), ref Unsafe.Add(ref a, (nint)i * Q8_1Bytes), 8, acc);
        if (i < nb)
            acc = UnsignedGroupAvx2(ref Unsafe.Add(ref w, i), ref Unsafe.Add(ref a, (nint)i * Q8_1Bytes), nb - i, acc);
        return Combine8(acc);
    }

    /// <summary>The eight blocks from <paramref name="w"/> (the first <paramref name="count"/>; the rest count as zero) fused into the eight partial sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> SignedGroupAvx2<T>(ref T w, ref byte a, int count, Vector256<float> acc)
        where T : unmanaged, ISignedQuantBlock<T>
    {
        Floats8 scale = default;
        Vector256<int> sums = Reduce8(
            Avx2.HorizontalAdd(
                Avx2.HorizontalAdd(SignedBlockAvx2(ref w, ref a, 0, 0 < count, ref scale[0]), SignedBlockAvx2(ref w, ref a, 1, 1 < count, ref scale[1])),
                Avx2.HorizontalAdd(SignedBlockAvx2(ref w, ref a, 2, 2 < count, ref scale[2]), SignedBlockAvx2(ref w, ref a, 3, 3 < count, ref scale[3]))),
            Avx2.HorizontalAdd(
                Avx2.HorizontalAdd(SignedBlockAvx2(ref w, ref a, 4, 4 < count, ref scale[4]), SignedBlockAvx2(ref w, ref a, 5, 5 < count, ref scale[5])),
                Avx2.HorizontalAdd(SignedBlockAvx2(ref w, ref a, 6, 6 < count, ref scale[6]), SignedBlockAvx2(ref w, ref a, 7, 7 < count, ref scale[7]))));
        return Fma.MultiplyAdd(Avx.ConvertToVector256Single(sums), Vector256.LoadUnsafe(ref scale[0]), acc);
    }

    /// <summary>As <see cref="SignedGroupAvx2"/>, with each block's m_w·s_a fused in after its d_w·d_a·Σq_w·q_a.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> UnsignedGroupAvx2<T>(ref T w, ref byte a, int count, Vector256<float> acc)
        where T : unmanaged, IUnsignedQuantBlock<T>
    {
        Floats8 scale = default, min = default, sum = default;
        Vector256<int> sums = Reduce8(
            Avx2.HorizontalAdd(
                Avx2.HorizontalAdd(
                    UnsignedBlockAvx2(ref w, ref a, 0, 0 < count, ref scale[0], ref min[0], ref sum[0]),
                    UnsignedBlockAvx2(ref w, ref a, 1, 1 < count, ref scale[1], ref min[1], ref sum[1])),
                Avx2.HorizontalAdd(
                    UnsignedBlockAvx2(ref w, ref a, 2, 2 < count, ref scale[2], ref min[2], ref sum[2]),
                    UnsignedBlockAvx2(ref w, ref a, 3, 3 < count, ref scale[3], ref min[3], ref sum[3]))),
            Avx2.HorizontalAdd(
                Avx2.HorizontalAdd(
                    UnsignedBlockAvx2(ref w, ref a, 4, 4 < count, ref scale[4], ref min[4], ref sum[4]),
                    UnsignedBlockAvx2(ref w, ref a, 5, 5 < count, ref scale[5], ref min[5], ref sum[5])),
                Avx2.HorizontalAdd(
                    UnsignedBlockAvx2(ref w, ref a, 6, 6 < count, ref scale[6], ref min[6], ref sum[6]),
                    UnsignedBlockAvx2(ref w, ref a, 7, 7 < count, ref scale[7], ref min[7], ref sum[7]))));
        acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(sums), Vector256.LoadUnsafe(ref scale[0]), acc);
        return Fma.MultiplyAdd(Vector256.LoadUnsafe(ref min[0]), Vector256.LoadUnsafe(ref sum[0]), acc);
    }

    /// <summary>Eight partial sums of block <paramref name="b"/>'s Σ q_w·q_a and its d_w·d_a (zeros when absent).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> SignedBlockAvx2<T>(ref T weights, ref byte activation, int b, bool present, ref float scale)
        where T : unmanaged, ISignedQuantBlock<T>
    {
        if (!present)
            return Vector256<int>.Zero;
        ref readonly T w = ref Unsafe.Add(ref weights, b);
        ref byte a = ref Unsafe.Add(ref activation, (nint)b * Q8_0Bytes);
        scale = T.Scale(in w) * Float16.ToSingleLookup(Unsafe.ReadUnaligned<ushort>(ref a));
        Vector256<sbyte> x = T.Quants256(in w);
        Vector256<sbyte> y = Vector256.LoadUnsafe(ref Unsafe.Add(ref a, 2)).AsSByte();
        // |x| as unsigned times y with x's sign: maddubs needs one unsigned operand. Activation quants lie
        // in [-127, 127] (Q8 quantizers never give -128), so negating them cannot overflow.
        Vector256<short> pairs = Avx2.MultiplyAddAdjacent(Avx2.Abs(x), Avx2.Sign(y, x));
        return Avx2.MultiplyAddAdjacent(pairs, Vector256<short>.One);
    }

    /// <summary>As <see cref="SignedBlockAvx2"/> for Q8_1 activations; also gives m_w and s_a.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> UnsignedBlockAvx2<T>(ref T weights, ref byte activation, int b, bool present,
        ref float scale, ref float min, ref float sum) where T : unmanaged, IUnsignedQuantBlock<T>
    {
        if (!present)
            return Vector256<int>.Zero;
        ref readonly T w = ref Unsafe.Add(ref weights, b);
        ref byte a = ref Unsafe.Add(ref activation, (nint)b * Q8_1Bytes);
        scale = T.Scale(in w) * Float16.ToSingleLookup(Unsafe.ReadUnaligned<ushort>(ref a));
        min = T.Min(in w);
        sum = Float16.ToSingleLookup(Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref a, 2)));
        Vector256<sbyte> y = Vector256.LoadUnsafe(ref Unsafe.Add(ref a, 4)).AsSByte();
        Vector256<short> pairs = Avx2.MultiplyAddAdjacent(T.Quants256(in w), y);
        return Avx2.MultiplyAddAdjacent(pairs, Vector256<short>.One);
    }

    /// <summary>Eight floats on the stack: the per-block scales of one group.</summary>
    [InlineArray(8)]
    private struct Floats8
    {
        private float _element0;
    }

    /// <summary>
    /// [Σv0, ..., Σv7] from e = hadd(hadd(v0, v1), hadd(v2, v3)) and f, the same of v4..v7: within each
    /// 128-bit lane those hold the four vectors' sums over that lane.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> Reduce8(Vector256<int> e, Vector256<int> f) =>
        Avx2.Add(Avx2.Permute2x128(e, f, 0x20), Avx2.Permute2x128(e, f, 0x31));

    /// <summary>((p0+p4)+(p2+p6)) + ((p1+p5)+(p3+p7)).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Combine8(Vector256<float> p)
    {
        Vector128<float> h = p.GetLower() + p.GetUpper();
        h += Sse.MoveHighToLow(h, h);
        return h.ToScalar() + h.GetElement(1);
    }

    internal static float Combine8(ReadOnlySpan<float> p) => ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]));

    /// <summary>32 nibbles from 16 bytes: element j is the low nibble of byte j, element j+16 its high nibble.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<byte> Nibbles(ref readonly byte qs)
    {
        Vector128<byte> packed = Vector128.LoadUnsafe(in qs);
        Vector128<byte> mask = Vector128.Create((byte)0x0F);
        return Vector256.Create(packed & mask, Vector128.ShiftRightLogical(packed.AsUInt16(), 4).AsByte() & mask);
    }

    /// <summary>32 bytes from 32 bits (little endian): 0xFF where the bit is set, 0 where clear.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<byte> BitsToBytes(uint bits)
    {
        // Byte i takes byte i/8 of the word; OR-ing every bit but i%8 leaves all ones only where bit i%8 was set.
        Vector256<byte> spread = Avx2.Shuffle(Vector256.Create(bits).AsByte(),
            Vector256.Create(0x0000000000000000ul, 0x0101010101010101ul, 0x0202020202020202ul, 0x0303030303030303ul).AsByte());
        return Vector256.Equals(spread | Vector256.Create(0x7FBFDFEFF7FBFDFEul).AsByte(), Vector256<byte>.AllBitsSet);
    }

    private static void CheckDequantize(int blocks, int values)
    {
        if (values != blocks * BlockSize)
            throw new ArgumentException($"{blocks} blocks hold {blocks * BlockSize} values; the destination has {values}.");
    }

    internal static void CheckActivation(int blocks, int activationBytes, int blockBytes)
    {
        if (activationBytes < (long)blocks * blockBytes)
            throw new ArgumentException($"{blocks} weight blocks need {(long)blocks * blockBytes} activation bytes; got {activationBytes}.");
    }
}

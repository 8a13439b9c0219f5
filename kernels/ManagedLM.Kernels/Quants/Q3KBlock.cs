using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedLM.Kernels.Quants;

/// <summary>
/// ggml's <c>block_q3_K</c> (110 bytes, 3.4375 bits per weight): 16 sub-blocks of 16 values with 6-bit
/// scales; value = D·(scale − 32)·q, q in [−4, 3]. Value 128c + 32s + t has its low 2 bits in bits 2s..2s+1
/// of Qs[32c + t] and, in bit 4c+s of HMask[t], a set bit for q ≥ 0 (clear: subtract 4).
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct Q3KBlock : IQuantizableBlock<Q3KBlock>, ISuperBlock<Q3KBlock>
{
    /// <summary>High bits of the values.</summary>
    public fixed byte HMask[KQuants.QK / 8];

    /// <summary>Low 2 bits of the values.</summary>
    public fixed byte Qs[KQuants.QK / 4];

    /// <summary>16 scales of 6 bits: low nibbles in bytes 0-7 (scales 0-7) and their high nibbles (8-15), top 2 bits in bytes 8-11.</summary>
    public fixed byte Scales[12];

    /// <summary>Super-block scale (fp16 bits).</summary>
    public ushort D;

    public static GgmlType Type => GgmlType.Q3_K;
    public static int BlockSize => KQuants.QK;
    public static GgmlType DotType => GgmlType.Q8_K;

    /// <summary>The 16 scales (0..63, before the −32) unpacked to one byte each, as ggml's kmask shuffle.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<byte> UnpackScales(byte* packed)
    {
        const uint Low2 = 0x03030303, Low4 = 0x0f0f0f0f;
        uint a0 = Unsafe.ReadUnaligned<uint>(packed);
        uint a1 = Unsafe.ReadUnaligned<uint>(packed + 4);
        uint top = Unsafe.ReadUnaligned<uint>(packed + 8);
        return Vector128.Create(
            (a0 & Low4) | (((top >> 0) & Low2) << 4),
            (a1 & Low4) | (((top >> 2) & Low2) << 4),
            ((a0 >> 4) & Low4) | (((top >> 4) & Low2) << 4),
            ((a1 >> 4) & Low4) | (((top >> 6) & Low2) << 4)).AsByte();
    }

    public static void Dequantize(ReadOnlySpan<Q3KBlock> blocks, Span<float> dst)
    {
        KQuants.CheckDequantizeLengths(blocks.Length, dst.Length);
        byte* scales = stackalloc byte[16];
        fixed (Q3KBlock* px = blocks)
        fixed (float* py = dst)
        {
            float* y = py;
            for (int i = 0; i < blocks.Length; i++)
            {
                float d = Float16.ToSingle(px[i].D);
                UnpackScales(px[i].Scales).Store(scales);
                byte* q = px[i].Qs, hm = px[i].HMask;
                int s = 0, m = 1;
                for (int n = 0; n < KQuants.QK; n += 128, q += 32)
                {
                    for (int shift = 0; shift < 8; shift += 2, m <<= 1)
                    {
                        float dl = d * (scales[s++] - 32);
                        for (int l = 0; l < 16; l++) *y++ = dl * (((q[l] >> shift) & 3) - ((hm[l] & m) != 0 ? 0 : 4));
                        dl = d * (scales[s++] - 32);
                        for (int l = 16; l < 32; l++) *y++ = dl * (((q[l] >> shift) & 3) - ((hm[l] & m) != 0 ? 0 : 4));
                    }
                }
            }
        }
    }

    public static float Dot(ReadOnlySpan<Q3KBlock> blocks, ReadOnlySpan<byte> activation) =>
        KQuants.Dot(blocks, activation, &DotAvx2, &DotReference);

    static void IQuantBlock<Q3KBlock>.MultiplyRows(byte* rows, long rowBytes, int rowCount, int blocksPerRow,
        byte* activations, int activationStride, int count, float* y, int yStride) =>
        SuperBlockDot.MultiplyRows<Q3KBlock>(rows, rowBytes, rowCount, blocksPerRow, activations, activationStride, count, y, yStride);

    /// <summary>Scalar reference: <see cref="SuperBlockDot.DotReference{T}"/> over the scalar unpacking.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotReference(Q3KBlock* x, Q8KBlock* y, int nb) => SuperBlockDot.DotReference(x, y, nb);

    /// <summary>The vector path; bit-identical to <see cref="DotReference"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotAvx2(Q3KBlock* x, Q8KBlock* y, int nb) => SuperBlockDot.Dot(x, y, nb);

    static SuperBlockOffset ISuperBlock<Q3KBlock>.Offset => SuperBlockOffset.IntegerOffset;

    /// <summary>Levels q + 4 in 0..7; the signed scale (scale − 32) per 16 values; mins 4·scale; D = M = d.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void ISuperBlock<Q3KBlock>.UnpackReference(Q3KBlock* x, UnpackedSuperBlock* u)
    {
        byte* scales = stackalloc byte[16];
        UnpackScales(x->Scales).Store(scales);
        for (int v = 0; v < KQuants.QK; v++)
        {
            int c = v / 128, s = v % 128 / 32, t = v % 32;
            int low = (x->Qs[32 * c + t] >> (2 * s)) & 3, high = (x->HMask[t] >> (4 * c + s)) & 1;
            u->Q[v] = (byte)(low | (high << 2));
        }
        for (int j = 0; j < 16; j++)
        {
            u->Scales[j] = (short)(scales[j] - 32);
            u->Mins[j] = (short)(4 * (scales[j] - 32));
        }
        u->D = u->M = Float16.ToSingle(x->D);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void ISuperBlock<Q3KBlock>.UnpackAvx2(Q3KBlock* x, UnpackedSuperBlock* u)
    {
        Vector256<byte> hm = Avx.LoadVector256(x->HMask);
        for (int c = 0; c < 2; c++)
        {
            Vector256<ushort> q = Avx.LoadVector256(x->Qs + 32 * c).AsUInt16();
            Avx.Store(u->Q + 128 * c, Values(q, hm, 4 * c));
            Avx.Store(u->Q + 128 * c + 32, Values(Avx2.ShiftRightLogical(q, 2), hm, 4 * c + 1));
            Avx.Store(u->Q + 128 * c + 64, Values(Avx2.ShiftRightLogical(q, 4), hm, 4 * c + 2));
            Avx.Store(u->Q + 128 * c + 96, Values(Avx2.ShiftRightLogical(q, 6), hm, 4 * c + 3));
        }
        Vector256<short> scales = Avx2.Subtract(Avx2.ConvertToVector256Int16(UnpackScales(x->Scales)).AsInt16(), Vector256.Create((short)32));
        Avx.Store(u->Scales, scales);
        Avx.Store(u->Mins, Avx2.ShiftLeftLogical(scales, 2));
        u->D = u->M = Float16.ToSingleLookup(x->D);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> ISuperBlock<Q3KBlock>.Lanes(Q3KBlock* x, sbyte* q8, out Vector256<short> mins, out float d, out float m) =>
        SuperBlockDot.LanesViaUnpack(x, q8, out mins, out d, out m);

    // q + 4 for 32 values: the 2 low bits from the shifted Qs bytes, 4 where HMask bit `bit` is set.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Values(Vector256<ushort> shifted, Vector256<byte> hm, int bit)
    {
        Vector256<byte> mask = Vector256.Create((byte)(1 << bit));
        return Avx2.Or(Avx2.And(shifted.AsByte(), Vector256.Create((byte)3)), Avx2.And(Avx2.CompareEqual(Avx2.And(hm, mask), mask), Vector256.Create((byte)4)));
    }

    /// <summary>Quantizes like ggml's <c>quantize_row_q3_K_ref</c>, byte for byte.</summary>
    public static void Quantize(ReadOnlySpan<float> src, Span<Q3KBlock> dst)
    {
        KQuants.CheckQuantizeLengths(GgmlType.Q3_K, src.Length, dst.Length);
        Span<sbyte> levels = stackalloc sbyte[KQuants.QK];
        Span<float> scales = stackalloc float[16];
        for (int i = 0; i < dst.Length; i++)
        {
            ReadOnlySpan<float> x = src.Slice(i * KQuants.QK, KQuants.QK);
            for (int j = 0; j < 16; j++)
                scales[j] = KQuants.MakeQ3Quants(4, x.Slice(16 * j, 16), levels.Slice(16 * j, 16));
            float maxScale = KQuants.MaxByMagnitude(scales, out float amax);
            fixed (Q3KBlock* b = &dst[i])
            {
                new Span<byte>(b->Scales, 12).Clear();
                if (maxScale != 0)
                {
                    float iscale = -32f / maxScale;
                    for (int j = 0; j < 16; j++)
                    {
                        int l = Math.Clamp((int)(sbyte)KQuants.NearestInt(iscale * scales[j]), -32, 31) + 32;
                        if (j < 8)
                            b->Scales[j] = (byte)(l & 0xF);
                        else
                            b->Scales[j - 8] |= (byte)((l & 0xF) << 4);
                        b->Scales[j % 4 + 8] |= (byte)((l >> 4) << (2 * (j / 4)));
                    }
                    b->D = Float16.FromSingle(1 / iscale);
                }
                else
                {
                    b->D = Float16.FromSingle(0f);
                }
                float d = Float16.ToSingle(b->D);
                for (int j = 0; j < 16; j++)
                {
                    int sc = j < 8 ? b->Scales[j] & 0xF : b->Scales[j - 8] >> 4;
                    sc = (sc | (((b->Scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
                    float dl = d * sc;
                    if (dl == 0)
                        continue;
                    for (int l = 16 * j; l < 16 * j + 16; l++)
                        levels[l] = (sbyte)(Math.Clamp(KQuants.NearestInt(x[l] / dl), -4, 3) + 4);
                }
                new Span<byte>(b->HMask, KQuants.QK / 8).Clear();
                int m = 0;
                byte hm = 1;
                for (int j = 0; j < KQuants.QK; j++)
                {
                    if (levels[j] > 3)
                    {
                        b->HMask[m] |= hm;
                        levels[j] -= 4;
                    }
                    if (++m == KQuants.QK / 8)
                    {
                        m = 0;
                        hm <<= 1;
                    }
                }
                KQuants.Pack2Bit(MemoryMarshal.Cast<sbyte, byte>(levels), b->Qs);
            }
        }
    }
}

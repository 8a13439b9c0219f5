using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedLM.Kernels.Quants;

/// <summary>
/// ggml's <c>block_q5_K</c> (176 bytes, 5.5 bits per weight): Q4_K's layout plus a fifth bit per value;
/// value = D·scale·q − DMin·min with q in [0, 31]. Bit 2c of Qh[l] is the high bit of value 64c+l,
/// bit 2c+1 that of value 64c+32+l.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct Q5KBlock : IQuantizableBlock<Q5KBlock>, ISuperBlock<Q5KBlock>
{
    /// <summary>Super-block scale of the sub-block scales (fp16 bits).</summary>
    public ushort D;

    /// <summary>Super-block scale of the sub-block mins (fp16 bits).</summary>
    public ushort DMin;

    /// <summary>8 scales and 8 mins, 6 bits each (ggml's get_scale_min_k4 layout).</summary>
    public fixed byte Scales[12];

    /// <summary>High bits of the values.</summary>
    public fixed byte Qh[KQuants.QK / 8];

    /// <summary>Low 4 bits of the values, laid out as Q4_K's.</summary>
    public fixed byte Qs[KQuants.QK / 2];

    public static GgmlType Type => GgmlType.Q5_K;
    public static int BlockSize => KQuants.QK;
    public static GgmlType DotType => GgmlType.Q8_K;

    public static void Dequantize(ReadOnlySpan<Q5KBlock> blocks, Span<float> dst)
    {
        KQuants.CheckDequantizeLengths(blocks.Length, dst.Length);
        fixed (Q5KBlock* px = blocks)
        fixed (float* py = dst)
        {
            float* y = py;
            for (int i = 0; i < blocks.Length; i++)
            {
                Q5KBlock* b = px + i;
                float d = Float16.ToSingle(b->D), min = Float16.ToSingle(b->DMin);
                byte* ql = b->Qs, qh = b->Qh;
                for (int j = 0; j < 8; j += 2, ql += 32)
                {
                    KQuants.GetScaleMinK4(j, b->Scales, out byte sc, out byte m);
                    float d1 = d * sc, m1 = min * m;
                    KQuants.GetScaleMinK4(j + 1, b->Scales, out sc, out m);
                    float d2 = d * sc, m2 = min * m;
                    int u1 = 1 << j, u2 = 2 << j;
                    for (int l = 0; l < 32; l++) *y++ = d1 * ((ql[l] & 0xF) + ((qh[l] & u1) != 0 ? 16 : 0)) - m1;
                    for (int l = 0; l < 32; l++) *y++ = d2 * ((ql[l] >> 4) + ((qh[l] & u2) != 0 ? 16 : 0)) - m2;
                }
            }
        }
    }

    public static float Dot(ReadOnlySpan<Q5KBlock> blocks, ReadOnlySpan<byte> activation) =>
        KQuants.Dot(blocks, activation, &DotAvx2, &DotReference);

    static void IQuantBlock<Q5KBlock>.MultiplyRows(byte* rows, long rowBytes, int rowCount, int blocksPerRow,
        byte* activations, int activationStride, int count, float* y, int yStride) =>
        SuperBlockDot.MultiplyRows<Q5KBlock>(rows, rowBytes, rowCount, blocksPerRow, activations, activationStride, count, y, yStride);

    /// <summary>Scalar reference: <see cref="SuperBlockDot.DotReference{T}"/> over the scalar unpacking.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotReference(Q5KBlock* x, Q8KBlock* y, int nb) => SuperBlockDot.DotReference(x, y, nb);

    /// <summary>The vector path; bit-identical to <see cref="DotReference"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotAvx2(Q5KBlock* x, Q8KBlock* y, int nb) => SuperBlockDot.Dot(x, y, nb);

    static SuperBlockOffset ISuperBlock<Q5KBlock>.Offset => SuperBlockOffset.FloatMins;

    /// <summary>Levels 0..31; per 16 values the scale and min of their 32-value sub-block; D = d, M = dmin.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void ISuperBlock<Q5KBlock>.UnpackReference(Q5KBlock* x, UnpackedSuperBlock* u)
    {
        KQuants.ScalesAndMinsReference(x->Scales, u);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
            {
                u->Q[64 * c + l] = (byte)((x->Qs[32 * c + l] & 0xF) | (((x->Qh[l] >> (2 * c)) & 1) << 4));
                u->Q[64 * c + 32 + l] = (byte)((x->Qs[32 * c + l] >> 4) | (((x->Qh[l] >> (2 * c + 1)) & 1) << 4));
            }
        u->D = Float16.ToSingle(x->D);
        u->M = Float16.ToSingle(x->DMin);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void ISuperBlock<Q5KBlock>.UnpackAvx2(Q5KBlock* x, UnpackedSuperBlock* u)
    {
        KQuants.ScalesAndMins(x->Scales, out var scales, out var mins);
        Avx.Store(u->Scales, scales);
        Avx.Store(u->Mins, mins);
        Vector256<byte> h = Avx.LoadVector256(x->Qh);
        for (int c = 0; c < 4; c++)
        {
            Values(x->Qs + 32 * c, h, c, out Vector256<byte> lo, out Vector256<byte> hi);
            Avx.Store(u->Q + 64 * c, lo);
            Avx.Store(u->Q + 64 * c + 32, hi);
        }
        u->D = Float16.ToSingleLookup(x->D);
        u->M = Float16.ToSingleLookup(x->DMin);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> ISuperBlock<Q5KBlock>.Lanes(Q5KBlock* x, sbyte* q8, out Vector256<short> mins, out float d, out float m)
    {
        KQuants.ScalesAndMins(x->Scales, out var scales, out mins);
        d = Float16.ToSingleLookup(x->D);
        m = Float16.ToSingleLookup(x->DMin);
        return LanesAvx2(x, q8, scales);
    }

    /// <summary>
    /// The integer lanes straight from the packed block (256-bit: on Zen 5 a single-row Q4_K dot runs at 30 GB/s this way
    /// against 20 GB/s with 512-bit vectors, whose assembly from two halves costs more than it saves); scales per 16 values.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> LanesAvx2(Q5KBlock* x, sbyte* q8, Vector256<short> scales)
    {
        Vector256<byte> h = Avx.LoadVector256(x->Qh);
        Vector256<int> acc = Vector256<int>.Zero;
        for (int c = 0; c < 4; c++)
        {
            Values(x->Qs + 32 * c, h, c, out Vector256<byte> lo, out Vector256<byte> hi);
            Vector256<short> eight = c < 2 ? KQuants.EightScales(scales, 0) : KQuants.EightScales(scales, 1);
            Vector256<short> scaleLo = c % 2 == 0 ? KQuants.ScalePair(eight, 0) : KQuants.ScalePair(eight, 2);
            Vector256<short> scaleHi = c % 2 == 0 ? KQuants.ScalePair(eight, 1) : KQuants.ScalePair(eight, 3);
            acc = Avx2.Add(acc, Avx2.Add(KQuants.ScaledDot(lo, Avx.LoadVector256(q8 + 64 * c), scaleLo),
                KQuants.ScaledDot(hi, Avx.LoadVector256(q8 + 64 * c + 32), scaleHi)));
        }
        return acc;
    }

    // Values 64c..64c+31 (lo) and 64c+32..64c+63 (hi): nibbles as Q4_K's, fifth bits from Qh bits 2c and 2c+1.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Values(byte* ql, Vector256<byte> h, int c, out Vector256<byte> lo, out Vector256<byte> hi)
    {
        Vector256<byte> low4 = Vector256.Create((byte)0x0F), bit4 = Vector256.Create((byte)0x10);
        Vector256<byte> mlo = Vector256.Create((byte)(1 << (2 * c))), mhi = Vector256.Create((byte)(2 << (2 * c)));
        Vector256<byte> q = Avx.LoadVector256(ql);
        lo = Avx2.Or(Avx2.And(q, low4), Avx2.And(Avx2.CompareEqual(Avx2.And(h, mlo), mlo), bit4));
        hi = Avx2.Or(Avx2.And(Avx2.ShiftRightLogical(q.AsUInt16(), 4).AsByte(), low4), Avx2.And(Avx2.CompareEqual(Avx2.And(h, mhi), mhi), bit4));
    }

    /// <summary>Quantizes like ggml's <c>quantize_row_q5_K_ref</c>, byte for byte.</summary>
    public static void Quantize(ReadOnlySpan<float> src, Span<Q5KBlock> dst)
    {
        KQuants.CheckQuantizeLengths(GgmlType.Q5_K, src.Length, dst.Length);
        Span<byte> levels = stackalloc byte[KQuants.QK];
        for (int i = 0; i < dst.Length; i++)
        {
            ReadOnlySpan<float> x = src.Slice(i * KQuants.QK, KQuants.QK);
            fixed (Q5KBlock* b = &dst[i])
            {
                KQuants.QuantizeScaleMinSuperBlock(x, 31, -0.5f, 0.1f, 15, b->Scales, out b->D, out b->DMin, levels);
                byte* ql = b->Qs, qh = b->Qh;
                new Span<byte>(qh, KQuants.QK / 8).Clear();
                int m1 = 1, m2 = 2;
                for (int n = 0; n < KQuants.QK; n += 64, ql += 32, m1 <<= 2, m2 <<= 2)
                {
                    for (int j = 0; j < 32; j++)
                    {
                        int l1 = levels[n + j], l2 = levels[n + j + 32];
                        if (l1 > 15) { l1 -= 16; qh[j] |= (byte)m1; }
                        if (l2 > 15) { l2 -= 16; qh[j] |= (byte)m2; }
                        ql[j] = (byte)(l1 | (l2 << 4));
                    }
                }
            }
        }
    }
}

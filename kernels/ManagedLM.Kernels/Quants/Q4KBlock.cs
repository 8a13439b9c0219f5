using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedLM.Kernels.Quants;

/// <summary>
/// ggml's <c>block_q4_K</c> (144 bytes, 4.5 bits per weight): 8 sub-blocks of 32 values, each with a
/// 6-bit scale and 6-bit min; value = D·scale·q − DMin·min with q in [0, 15].
/// Qs holds 4 chunks of 64 values: byte l of chunk c has value 64c+l in its low nibble and 64c+32+l in its high one.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct Q4KBlock : IQuantizableBlock<Q4KBlock>, ISuperBlock<Q4KBlock>
{
    /// <summary>Super-block scale of the sub-block scales (fp16 bits).</summary>
    public ushort D;

    /// <summary>Super-block scale of the sub-block mins (fp16 bits).</summary>
    public ushort DMin;

    /// <summary>8 scales and 8 mins, 6 bits each (ggml's get_scale_min_k4 layout).</summary>
    public fixed byte Scales[12];

    /// <summary>256 4-bit values.</summary>
    public fixed byte Qs[KQuants.QK / 2];

    public static GgmlType Type => GgmlType.Q4_K;
    public static int BlockSize => KQuants.QK;
    public static GgmlType DotType => GgmlType.Q8_K;

    public static void Dequantize(ReadOnlySpan<Q4KBlock> blocks, Span<float> dst)
    {
        KQuants.CheckDequantizeLengths(blocks.Length, dst.Length);
        fixed (Q4KBlock* px = blocks)
        fixed (float* py = dst)
        {
            float* y = py;
            for (int i = 0; i < blocks.Length; i++)
            {
                Q4KBlock* b = px + i;
                float d = Float16.ToSingle(b->D), min = Float16.ToSingle(b->DMin);
                byte* q = b->Qs;
                for (int j = 0; j < 8; j += 2, q += 32)
                {
                    KQuants.GetScaleMinK4(j, b->Scales, out byte sc, out byte m);
                    float d1 = d * sc, m1 = min * m;
                    KQuants.GetScaleMinK4(j + 1, b->Scales, out sc, out m);
                    float d2 = d * sc, m2 = min * m;
                    for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xF) - m1;
                    for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
                }
            }
        }
    }

    public static float Dot(ReadOnlySpan<Q4KBlock> blocks, ReadOnlySpan<byte> activation) =>
        KQuants.Dot(blocks, activation, &DotAvx2, &DotReference);

    static void IQuantBlock<Q4KBlock>.MultiplyRows(byte* rows, long rowBytes, int rowCount, int blocksPerRow,
        byte* activations, int activationStride, int count, float* y, int yStride) =>
        SuperBlockDot.MultiplyRows<Q4KBlock>(rows, rowBytes, rowCount, blocksPerRow, activations, activationStride, count, y, yStride);

    /// <summary>Scalar reference: <see cref="SuperBlockDot.DotReference{T}"/> over the scalar unpacking.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotReference(Q4KBlock* x, Q8KBlock* y, int nb) => SuperBlockDot.DotReference(x, y, nb);

    /// <summary>The vector path (AVX2 unpacking, AVX2/VNNI/AVX-512 lanes); bit-identical to <see cref="DotReference"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotAvx2(Q4KBlock* x, Q8KBlock* y, int nb) => SuperBlockDot.Dot(x, y, nb);

    static SuperBlockOffset ISuperBlock<Q4KBlock>.Offset => SuperBlockOffset.FloatMins;

    /// <summary>Levels 0..15; per 16 values the scale and min of their 32-value sub-block; D = d, M = dmin.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void ISuperBlock<Q4KBlock>.UnpackReference(Q4KBlock* x, UnpackedSuperBlock* u)
    {
        KQuants.ScalesAndMinsReference(x->Scales, u);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
            {
                u->Q[64 * c + l] = (byte)(x->Qs[32 * c + l] & 0xF);
                u->Q[64 * c + 32 + l] = (byte)(x->Qs[32 * c + l] >> 4);
            }
        u->D = Float16.ToSingle(x->D);
        u->M = Float16.ToSingle(x->DMin);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void ISuperBlock<Q4KBlock>.UnpackAvx2(Q4KBlock* x, UnpackedSuperBlock* u)
    {
        KQuants.ScalesAndMins(x->Scales, out var scales, out var mins);
        Avx.Store(u->Scales, scales);
        Avx.Store(u->Mins, mins);
        Vector256<byte> low4 = Vector256.Create((byte)0x0F);
        for (int c = 0; c < 4; c++)
        {
            Vector256<byte> q = Avx.LoadVector256(x->Qs + 32 * c);
            Avx.Store(u->Q + 64 * c, Avx2.And(q, low4));
            Avx.Store(u->Q + 64 * c + 32, Avx2.And(Avx2.ShiftRightLogical(q.AsUInt16(), 4).AsByte(), low4));
        }
        u->D = Float16.ToSingleLookup(x->D);
        u->M = Float16.ToSingleLookup(x->DMin);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> ISuperBlock<Q4KBlock>.Lanes(Q4KBlock* x, sbyte* q8, out Vector256<short> mins, out float d, out float m)
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
    internal static Vector256<int> LanesAvx2(Q4KBlock* x, sbyte* q8, Vector256<short> scales)
    {
        Vector256<short> lo = KQuants.EightScales(scales, 0), hi = KQuants.EightScales(scales, 1);
        Vector256<int> acc = Chunk(x->Qs, q8, KQuants.ScalePair(lo, 0), KQuants.ScalePair(lo, 1));
        acc = Avx2.Add(acc, Chunk(x->Qs + 32, q8 + 64, KQuants.ScalePair(lo, 2), KQuants.ScalePair(lo, 3)));
        acc = Avx2.Add(acc, Chunk(x->Qs + 64, q8 + 128, KQuants.ScalePair(hi, 0), KQuants.ScalePair(hi, 1)));
        return Avx2.Add(acc, Chunk(x->Qs + 96, q8 + 192, KQuants.ScalePair(hi, 2), KQuants.ScalePair(hi, 3)));
    }

    // 32 bytes of nibbles = 64 values: low nibbles the first 32, high nibbles the next 32.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Chunk(byte* q4, sbyte* q8, Vector256<short> scaleLo, Vector256<short> scaleHi)
    {
        Vector256<byte> low4 = Vector256.Create((byte)0x0F);
        Vector256<byte> q = Avx.LoadVector256(q4);
        return Avx2.Add(KQuants.ScaledDot(Avx2.And(q, low4), Avx.LoadVector256(q8), scaleLo),
            KQuants.ScaledDot(Avx2.And(Avx2.ShiftRightLogical(q.AsUInt16(), 4).AsByte(), low4), Avx.LoadVector256(q8 + 32), scaleHi));
    }

    /// <summary>Quantizes like ggml's <c>quantize_row_q4_K_ref</c>, byte for byte.</summary>
    public static void Quantize(ReadOnlySpan<float> src, Span<Q4KBlock> dst)
    {
        KQuants.CheckQuantizeLengths(GgmlType.Q4_K, src.Length, dst.Length);
        Span<byte> levels = stackalloc byte[KQuants.QK];
        for (int i = 0; i < dst.Length; i++)
        {
            ReadOnlySpan<float> x = src.Slice(i * KQuants.QK, KQuants.QK);
            fixed (Q4KBlock* b = &dst[i])
            {
                KQuants.QuantizeScaleMinSuperBlock(x, 15, -1f, 0.1f, 20, b->Scales, out b->D, out b->DMin, levels);
                byte* q = b->Qs;
                for (int j = 0; j < KQuants.QK; j += 64, q += 32)
                    for (int l = 0; l < 32; l++)
                        q[l] = (byte)(levels[j + l] | (levels[j + l + 32] << 4));
            }
        }
    }
}

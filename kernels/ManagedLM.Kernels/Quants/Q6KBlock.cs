using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedLM.Kernels.Quants;

/// <summary>
/// ggml's <c>block_q6_K</c> (210 bytes, 6.5625 bits per weight): 16 sub-blocks of 16 values with int8
/// scales; value = D·scale·(q − 32), q in [0, 63]. Per 128-value half h: Ql[64h + l] holds values l (low
/// nibble) and 64+l (high), Ql[64h + 32 + l] values 32+l and 96+l; Qh[32h + l] the top 2 bits of
/// values l, 32+l, 64+l, 96+l in bits 0-1, 2-3, 4-5, 6-7.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct Q6KBlock : IQuantizableBlock<Q6KBlock>, ISuperBlock<Q6KBlock>
{
    /// <summary>Low 4 bits of the values.</summary>
    public fixed byte Ql[KQuants.QK / 2];

    /// <summary>High 2 bits of the values.</summary>
    public fixed byte Qh[KQuants.QK / 4];

    /// <summary>Sub-block scales.</summary>
    public fixed sbyte Scales[KQuants.QK / 16];

    /// <summary>Super-block scale (fp16 bits).</summary>
    public ushort D;

    public static GgmlType Type => GgmlType.Q6_K;
    public static int BlockSize => KQuants.QK;
    public static GgmlType DotType => GgmlType.Q8_K;

    public static void Dequantize(ReadOnlySpan<Q6KBlock> blocks, Span<float> dst)
    {
        KQuants.CheckDequantizeLengths(blocks.Length, dst.Length);
        fixed (Q6KBlock* px = blocks)
        fixed (float* py = dst)
        {
            float* y = py;
            for (int i = 0; i < blocks.Length; i++)
            {
                float d = Float16.ToSingle(px[i].D);
                byte* ql = px[i].Ql, qh = px[i].Qh;
                sbyte* sc = px[i].Scales;
                for (int n = 0; n < KQuants.QK; n += 128, y += 128, ql += 64, qh += 32, sc += 8)
                {
                    for (int l = 0; l < 32; l++)
                    {
                        int s = l / 16;
                        y[l] = d * sc[s] * ((ql[l] & 0xF | ((qh[l] >> 0) & 3) << 4) - 32);
                        y[l + 32] = d * sc[s + 2] * ((ql[l + 32] & 0xF | ((qh[l] >> 2) & 3) << 4) - 32);
                        y[l + 64] = d * sc[s + 4] * ((ql[l] >> 4 | ((qh[l] >> 4) & 3) << 4) - 32);
                        y[l + 96] = d * sc[s + 6] * ((ql[l + 32] >> 4 | ((qh[l] >> 6) & 3) << 4) - 32);
                    }
                }
            }
        }
    }

    public static float Dot(ReadOnlySpan<Q6KBlock> blocks, ReadOnlySpan<byte> activation) =>
        KQuants.Dot(blocks, activation, &DotAvx2, &DotReference);

    static void IQuantBlock<Q6KBlock>.MultiplyRows(byte* rows, long rowBytes, int rowCount, int blocksPerRow,
        byte* activations, int activationStride, int count, float* y, int yStride) =>
        SuperBlockDot.MultiplyRows<Q6KBlock>(rows, rowBytes, rowCount, blocksPerRow, activations, activationStride, count, y, yStride);

    /// <summary>Scalar reference: <see cref="SuperBlockDot.DotReference{T}"/> over the scalar unpacking.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotReference(Q6KBlock* x, Q8KBlock* y, int nb) => SuperBlockDot.DotReference(x, y, nb);

    /// <summary>The vector path; bit-identical to <see cref="DotReference"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotAvx2(Q6KBlock* x, Q8KBlock* y, int nb) => SuperBlockDot.Dot(x, y, nb);

    static SuperBlockOffset ISuperBlock<Q6KBlock>.Offset => SuperBlockOffset.IntegerOffset;

    /// <summary>Levels q in 0..63 (the value is q − 32); the signed scale per 16 values; mins 32·scale; D = M = d.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void ISuperBlock<Q6KBlock>.UnpackReference(Q6KBlock* x, UnpackedSuperBlock* u)
    {
        byte* ql = x->Ql, qh = x->Qh;
        for (int n = 0; n < KQuants.QK; n += 128, ql += 64, qh += 32)
        {
            for (int l = 0; l < 32; l++)
            {
                u->Q[n + l] = (byte)((ql[l] & 0xF) | ((qh[l] & 3) << 4));
                u->Q[n + l + 32] = (byte)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4));
                u->Q[n + l + 64] = (byte)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
                u->Q[n + l + 96] = (byte)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
            }
        }
        for (int j = 0; j < 16; j++)
        {
            u->Scales[j] = x->Scales[j];
            u->Mins[j] = (short)(32 * x->Scales[j]);
        }
        u->D = u->M = Float16.ToSingle(x->D);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void ISuperBlock<Q6KBlock>.UnpackAvx2(Q6KBlock* x, UnpackedSuperBlock* u)
    {
        for (int h = 0; h < 2; h++)
        {
            Values(x->Ql + 64 * h, x->Qh + 32 * h, out var v0, out var v1, out var v2, out var v3);
            Avx.Store(u->Q + 128 * h, v0);
            Avx.Store(u->Q + 128 * h + 32, v1);
            Avx.Store(u->Q + 128 * h + 64, v2);
            Avx.Store(u->Q + 128 * h + 96, v3);
        }
        Vector256<short> scales = Avx2.ConvertToVector256Int16(x->Scales);
        Avx.Store(u->Scales, scales);
        Avx.Store(u->Mins, Avx2.ShiftLeftLogical(scales, 5));
        u->D = u->M = Float16.ToSingleLookup(x->D);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> ISuperBlock<Q6KBlock>.Lanes(Q6KBlock* x, sbyte* q8, out Vector256<short> mins, out float d, out float m)
    {
        Vector256<short> scales = Avx2.ConvertToVector256Int16(x->Scales);
        mins = Avx2.ShiftLeftLogical(scales, 5);
        d = m = Float16.ToSingleLookup(x->D);
        return LanesAvx2(x, q8, scales);
    }

    /// <summary>
    /// The integer lanes straight from the packed block (256-bit: on Zen 5 a single-row Q4_K dot runs at 30 GB/s this way
    /// against 20 GB/s with 512-bit vectors, whose assembly from two halves costs more than it saves); scales per 16 values.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> LanesAvx2(Q6KBlock* x, sbyte* q8, Vector256<short> scales)
    {
        Vector256<int> acc = Vector256<int>.Zero;
        for (int h = 0; h < 2; h++)
        {
            Vector256<short> eight = h == 0 ? KQuants.EightScales(scales, 0) : KQuants.EightScales(scales, 1);
            Values(x->Ql + 64 * h, x->Qh + 32 * h, out var v0, out var v1, out var v2, out var v3);
            sbyte* a = q8 + 128 * h;
            acc = Avx2.Add(acc, KQuants.ScaledDot(v0, Avx.LoadVector256(a), KQuants.ScalePair(eight, 0)));
            acc = Avx2.Add(acc, KQuants.ScaledDot(v1, Avx.LoadVector256(a + 32), KQuants.ScalePair(eight, 1)));
            acc = Avx2.Add(acc, KQuants.ScaledDot(v2, Avx.LoadVector256(a + 64), KQuants.ScalePair(eight, 2)));
            acc = Avx2.Add(acc, KQuants.ScaledDot(v3, Avx.LoadVector256(a + 96), KQuants.ScalePair(eight, 3)));
        }
        return acc;
    }

    // 128 values (levels 0..63 in element order, 32 per vector) from 64 bytes of low nibbles and 32 bytes of high bit pairs.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Values(byte* ql, byte* qh, out Vector256<byte> v0, out Vector256<byte> v1, out Vector256<byte> v2, out Vector256<byte> v3)
    {
        Vector256<byte> low4 = Vector256.Create((byte)0x0F), bits01 = Vector256.Create((byte)0x03), bits45 = Vector256.Create((byte)0x30);
        Vector256<byte> la = Avx.LoadVector256(ql), lb = Avx.LoadVector256(ql + 32), h = Avx.LoadVector256(qh);
        v0 = Avx2.Or(Avx2.And(la, low4), Avx2.ShiftLeftLogical(Avx2.And(h, bits01).AsUInt16(), 4).AsByte());
        v1 = Avx2.Or(Avx2.And(lb, low4), Avx2.And(Avx2.ShiftLeftLogical(h.AsUInt16(), 2).AsByte(), bits45));
        v2 = Avx2.Or(Avx2.And(Avx2.ShiftRightLogical(la.AsUInt16(), 4).AsByte(), low4), Avx2.And(h, bits45));
        v3 = Avx2.Or(Avx2.And(Avx2.ShiftRightLogical(lb.AsUInt16(), 4).AsByte(), low4), Avx2.And(Avx2.ShiftRightLogical(h.AsUInt16(), 2).AsByte(), bits45));
    }

    /// <summary>Quantizes like ggml's <c>quantize_row_q6_K_ref</c>, byte for byte.</summary>
    public static void Quantize(ReadOnlySpan<float> src, Span<Q6KBlock> dst)
    {
        KQuants.CheckQuantizeLengths(GgmlType.Q6_K, src.Length, dst.Length);
        Span<sbyte> levels = stackalloc sbyte[KQuants.QK];
        Span<float> scales = stackalloc float[16];
        for (int i = 0; i < dst.Length; i++)
        {
            ReadOnlySpan<float> x = src.Slice(i * KQuants.QK, KQuants.QK);
            for (int j = 0; j < 16; j++)
                scales[j] = KQuants.MakeQxQuants(32, x.Slice(16 * j, 16), levels.Slice(16 * j, 16));
            float maxScale = KQuants.MaxByMagnitude(scales, out float maxAbsScale);
            if (maxAbsScale < KQuants.GroupMaxEps)
            {
                dst[i] = default;
                continue;
            }
            fixed (Q6KBlock* b = &dst[i])
            {
                float iscale = -128f / maxScale;
                b->D = Float16.FromSingle(1 / iscale);
                for (int j = 0; j < 16; j++)
                    b->Scales[j] = (sbyte)Math.Min(127, KQuants.NearestInt(iscale * scales[j]));
                float d = Float16.ToSingle(b->D);
                for (int j = 0; j < 16; j++)
                {
                    float dl = d * b->Scales[j];
                    if (dl == 0)
                        continue;
                    for (int l = 16 * j; l < 16 * j + 16; l++)
                        levels[l] = (sbyte)(Math.Clamp(KQuants.NearestInt(x[l] / dl), -32, 31) + 32);
                }
                byte* ql = b->Ql, qh = b->Qh;
                for (int j = 0; j < KQuants.QK; j += 128, ql += 64, qh += 32)
                {
                    for (int l = 0; l < 32; l++)
                    {
                        int q1 = levels[j + l], q2 = levels[j + l + 32], q3 = levels[j + l + 64], q4 = levels[j + l + 96];
                        ql[l] = (byte)((q1 & 0xF) | ((q3 & 0xF) << 4));
                        ql[l + 32] = (byte)((q2 & 0xF) | ((q4 & 0xF) << 4));
                        qh[l] = (byte)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
                    }
                }
            }
        }
    }
}

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
public unsafe struct Q6KBlock : IQuantizableBlock<Q6KBlock>
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

    /// <summary>Scalar reference (ggml's vec_dot_q6_K_q8_K math): per block the exact isum = Σ_j scale_j·Σ (q−32)·q8, then sum += (d·dy)·isum.</summary>
    internal static float DotReference(Q6KBlock* x, Q8KBlock* y, int nb)
    {
        sbyte* values = stackalloc sbyte[KQuants.QK];
        float sum = 0;
        for (int i = 0; i < nb; i++)
        {
            byte* ql = x[i].Ql, qh = x[i].Qh;
            for (int n = 0; n < KQuants.QK; n += 128, ql += 64, qh += 32)
            {
                for (int l = 0; l < 32; l++)
                {
                    values[n + l] = (sbyte)((ql[l] & 0xF | ((qh[l] >> 0) & 3) << 4) - 32);
                    values[n + l + 32] = (sbyte)((ql[l + 32] & 0xF | ((qh[l] >> 2) & 3) << 4) - 32);
                    values[n + l + 64] = (sbyte)((ql[l] >> 4 | ((qh[l] >> 4) & 3) << 4) - 32);
                    values[n + l + 96] = (sbyte)((ql[l + 32] >> 4 | ((qh[l] >> 6) & 3) << 4) - 32);
                }
            }
            int isum = 0;
            for (int j = 0; j < 16; j++)
            {
                int s = 0;
                for (int l = 16 * j; l < 16 * j + 16; l++)
                    s += values[l] * y[i].Qs[l];
                isum += x[i].Scales[j] * s;
            }
            sum += KQuants.BlockDot(x[i].D, y[i].D, isum);
        }
        return sum;
    }

    /// <summary>
    /// AVX2 path: maddubs of the unsigned 6-bit q with Q8_K values, madd by the sub-block scales, minus
    /// 32·Σ_j scale_j·bsums_j for the offset; the same integers as the reference.
    /// </summary>
    internal static float DotAvx2(Q6KBlock* x, Q8KBlock* y, int nb)
    {
        float sum = 0;
        for (int i = 0; i < nb; i++)
        {
            Vector256<short> scales = Avx2.ConvertToVector256Int16(x[i].Scales);
            Vector256<int> acc = Half(x[i].Ql, x[i].Qh, y[i].Qs, KQuants.EightScales(scales, 0));
            acc = Avx2.Add(acc, Half(x[i].Ql + 64, x[i].Qh + 32, y[i].Qs + 128, KQuants.EightScales(scales, 1)));
            Vector256<int> offset = Avx2.MultiplyAddAdjacent(Avx.LoadVector256(y[i].BSums), scales);
            acc = Avx2.Subtract(acc, Avx2.ShiftLeftLogical(offset, 5));
            sum += KQuants.BlockDot(x[i].D, y[i].D, KQuants.HorizontalSum(acc));
        }
        return sum;
    }

    // 128 values: 64 bytes of low nibbles, 32 bytes of high bit pairs, their 8 scales.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Half(byte* ql, byte* qh, sbyte* q8, Vector256<short> scales)
    {
        Vector256<byte> low4 = Vector256.Create((byte)0x0F), bits01 = Vector256.Create((byte)0x03), bits45 = Vector256.Create((byte)0x30);
        Vector256<byte> la = Avx.LoadVector256(ql), lb = Avx.LoadVector256(ql + 32), h = Avx.LoadVector256(qh);
        Vector256<byte> v0 = Avx2.Or(Avx2.And(la, low4), Avx2.ShiftLeftLogical(Avx2.And(h, bits01).AsUInt16(), 4).AsByte());
        Vector256<byte> v1 = Avx2.Or(Avx2.And(lb, low4), Avx2.And(Avx2.ShiftLeftLogical(h.AsUInt16(), 2).AsByte(), bits45));
        Vector256<byte> v2 = Avx2.Or(Avx2.And(Avx2.ShiftRightLogical(la.AsUInt16(), 4).AsByte(), low4), Avx2.And(h, bits45));
        Vector256<byte> v3 = Avx2.Or(Avx2.And(Avx2.ShiftRightLogical(lb.AsUInt16(), 4).AsByte(), low4),
            Avx2.And(Avx2.ShiftRightLogical(h.AsUInt16(), 2).AsByte(), bits45));
        Vector256<int> acc = KQuants.ScaledDot(v0, Avx.LoadVector256(q8), KQuants.ScalePair(scales, 0));
        acc = Avx2.Add(acc, KQuants.ScaledDot(v1, Avx.LoadVector256(q8 + 32), KQuants.ScalePair(scales, 1)));
        acc = Avx2.Add(acc, KQuants.ScaledDot(v2, Avx.LoadVector256(q8 + 64), KQuants.ScalePair(scales, 2)));
        return Avx2.Add(acc, KQuants.ScaledDot(v3, Avx.LoadVector256(q8 + 96), KQuants.ScalePair(scales, 3)));
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

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
public unsafe struct Q5KBlock : IQuantizableBlock<Q5KBlock>
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

    /// <summary>
    /// Scalar reference (ggml's vec_dot_q5_K_q8_K math): per block the exact integers
    /// isum = Σ_j scale_j·Σ q·q8 and msum = Σ_j min_j·(bsums of sub-block j), then
    /// sum += (d·dy)·isum − (dmin·dy)·msum.
    /// </summary>
    internal static float DotReference(Q5KBlock* x, Q8KBlock* y, int nb)
    {
        uint* sm = stackalloc uint[4];
        byte* scales = (byte*)sm, mins = scales + 8;
        float sum = 0;
        for (int i = 0; i < nb; i++)
        {
            KQuants.UnpackScaleMinK4(x[i].Scales, out sm[0], out sm[1], out sm[2], out sm[3]);
            byte* ql = x[i].Qs, qh = x[i].Qh;
            sbyte* q8 = y[i].Qs;
            int isum = 0;
            for (int j = 0; j < 8; j += 2, ql += 32, q8 += 64)
            {
                int lo = 0, hi = 0;
                for (int l = 0; l < 32; l++)
                {
                    lo += ((ql[l] & 0xF) | (((qh[l] >> j) & 1) << 4)) * q8[l];
                    hi += ((ql[l] >> 4) | (((qh[l] >> (j + 1)) & 1) << 4)) * q8[l + 32];
                }
                isum += scales[j] * lo + scales[j + 1] * hi;
            }
            int msum = KQuants.MinsDot(y[i].BSums, mins);
            sum += KQuants.BlockDot(x[i].D, x[i].DMin, y[i].D, isum, msum);
        }
        return sum;
    }

    /// <summary>AVX2 path: Q4_K's with the fifth bit OR-ed in from Qh; same integers as the reference.</summary>
    internal static float DotAvx2(Q5KBlock* x, Q8KBlock* y, int nb)
    {
        float sum = 0;
        for (int i = 0; i < nb; i++)
        {
            KQuants.UnpackScaleMinK4(x[i].Scales, out uint s03, out uint s47, out uint m03, out uint m47);
            byte* ql = x[i].Qs;
            sbyte* q8 = y[i].Qs;
            Vector256<byte> h = Avx.LoadVector256(x[i].Qh);
            Vector256<int> acc = Chunk(ql, h, 0x01, q8, s03 & 0xFF, (s03 >> 8) & 0xFF);
            acc = Avx2.Add(acc, Chunk(ql + 32, h, 0x04, q8 + 64, (s03 >> 16) & 0xFF, s03 >> 24));
            acc = Avx2.Add(acc, Chunk(ql + 64, h, 0x10, q8 + 128, s47 & 0xFF, (s47 >> 8) & 0xFF));
            acc = Avx2.Add(acc, Chunk(ql + 96, h, 0x40, q8 + 192, (s47 >> 16) & 0xFF, s47 >> 24));
            int isum = KQuants.HorizontalSum(acc), msum = KQuants.MinsDotAvx2(y[i].BSums, m03, m47);
            sum += KQuants.BlockDot(x[i].D, x[i].DMin, y[i].D, isum, msum);
        }
        return sum;
    }

    // 64 values: nibbles as Q4_K's, fifth bits from Qh bit loBit (first 32) and bit loBit·2 (next 32).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Chunk(byte* ql, Vector256<byte> h, byte loBit, sbyte* q8, uint scaleLo, uint scaleHi)
    {
        Vector256<byte> low4 = Vector256.Create((byte)0x0F), bit4 = Vector256.Create((byte)0x10);
        Vector256<byte> mlo = Vector256.Create(loBit), mhi = Vector256.Create((byte)(loBit << 1));
        Vector256<byte> q = Avx.LoadVector256(ql);
        Vector256<byte> lo = Avx2.Or(Avx2.And(q, low4), Avx2.And(Avx2.CompareEqual(Avx2.And(h, mlo), mlo), bit4));
        Vector256<byte> hi = Avx2.Or(Avx2.And(Avx2.ShiftRightLogical(q.AsUInt16(), 4).AsByte(), low4),
            Avx2.And(Avx2.CompareEqual(Avx2.And(h, mhi), mhi), bit4));
        return KQuants.ScaledChunk(lo, hi, q8, scaleLo, scaleHi);
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

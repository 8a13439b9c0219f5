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
public unsafe struct Q4KBlock : IQuantizableBlock<Q4KBlock>
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

    /// <summary>
    /// Scalar reference (ggml's vec_dot_q4_K_q8_K math): per block the exact integers
    /// isum = Σ_j scale_j·Σ q·q8 and msum = Σ_j min_j·(bsums of sub-block j), then
    /// sum += (d·dy)·isum − (dmin·dy)·msum.
    /// </summary>
    internal static float DotReference(Q4KBlock* x, Q8KBlock* y, int nb)
    {
        uint* sm = stackalloc uint[4];
        byte* scales = (byte*)sm, mins = scales + 8;
        float sum = 0;
        for (int i = 0; i < nb; i++)
        {
            KQuants.UnpackScaleMinK4(x[i].Scales, out sm[0], out sm[1], out sm[2], out sm[3]);
            byte* q4 = x[i].Qs;
            sbyte* q8 = y[i].Qs;
            int isum = 0;
            for (int j = 0; j < 8; j += 2, q4 += 32, q8 += 64)
            {
                int lo = 0, hi = 0;
                for (int l = 0; l < 32; l++)
                {
                    lo += (q4[l] & 0xF) * q8[l];
                    hi += (q4[l] >> 4) * q8[l + 32];
                }
                isum += scales[j] * lo + scales[j + 1] * hi;
            }
            int msum = KQuants.MinsDot(y[i].BSums, mins);
            sum += KQuants.BlockDot(x[i].D, x[i].DMin, y[i].D, isum, msum);
        }
        return sum;
    }

    /// <summary>AVX2 path: maddubs of nibbles with Q8_K values, madd by sub-block scale; same integers as the reference.</summary>
    internal static float DotAvx2(Q4KBlock* x, Q8KBlock* y, int nb)
    {
        float sum = 0;
        for (int i = 0; i < nb; i++)
        {
            KQuants.UnpackScaleMinK4(x[i].Scales, out uint s03, out uint s47, out uint m03, out uint m47);
            byte* q4 = x[i].Qs;
            sbyte* q8 = y[i].Qs;
            Vector256<int> acc = Chunk(q4, q8, s03 & 0xFF, (s03 >> 8) & 0xFF);
            acc = Avx2.Add(acc, Chunk(q4 + 32, q8 + 64, (s03 >> 16) & 0xFF, s03 >> 24));
            acc = Avx2.Add(acc, Chunk(q4 + 64, q8 + 128, s47 & 0xFF, (s47 >> 8) & 0xFF));
            acc = Avx2.Add(acc, Chunk(q4 + 96, q8 + 192, (s47 >> 16) & 0xFF, s47 >> 24));
            int isum = KQuants.HorizontalSum(acc), msum = KQuants.MinsDotAvx2(y[i].BSums, m03, m47);
            sum += KQuants.BlockDot(x[i].D, x[i].DMin, y[i].D, isum, msum);
        }
        return sum;
    }

    // 32 bytes of nibbles = 64 values: low nibbles the first 32, high nibbles the next 32.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Chunk(byte* q4, sbyte* q8, uint scaleLo, uint scaleHi)
    {
        Vector256<byte> low4 = Vector256.Create((byte)0x0F);
        Vector256<byte> q = Avx.LoadVector256(q4);
        return KQuants.ScaledChunk(Avx2.And(q, low4), Avx2.And(Avx2.ShiftRightLogical(q.AsUInt16(), 4).AsByte(), low4), q8, scaleLo, scaleHi);
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

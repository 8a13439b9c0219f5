using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedLM.Kernels.Quants;

/// <summary>
/// ggml's <c>block_q8_K</c> (292 bytes): 256 int8 values with one float scale and the sums of each
/// 16 values. The activation type of every K-quant dot product (and IQ4_XS's).
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct Q8KBlock : IQuantizableBlock<Q8KBlock>
{
    /// <summary>Scale: value = D · Qs[i].</summary>
    public float D;

    /// <summary>Quantized values.</summary>
    public fixed sbyte Qs[KQuants.QK];

    /// <summary>Σ of Qs[16j .. 16j+15] for j = 0..15.</summary>
    public fixed short BSums[KQuants.QK / 16];

    public static GgmlType Type => GgmlType.Q8_K;
    public static int BlockSize => KQuants.QK;
    public static GgmlType DotType => GgmlType.Q8_K;

    public static void Dequantize(ReadOnlySpan<Q8KBlock> blocks, Span<float> dst)
    {
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly Q8KBlock b = ref blocks[i];
            Span<float> y = dst.Slice(i * KQuants.QK, KQuants.QK);
            for (int j = 0; j < KQuants.QK; j++)
                y[j] = b.D * b.Qs[j];
        }
    }

    public static float Dot(ReadOnlySpan<Q8KBlock> blocks, ReadOnlySpan<byte> activation) =>
        KQuants.Dot(blocks, activation, &DotAvx2, &DotReference);

    /// <summary>Scalar reference: Σ over blocks of (dx·dy)·Σ qx·qy, the integer sum exact per block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotReference(Q8KBlock* x, Q8KBlock* y, int nb)
    {
        float sum = 0;
        for (int i = 0; i < nb; i++)
        {
            int isum = 0;
            for (int j = 0; j < KQuants.QK; j++)
                isum += x[i].Qs[j] * y[i].Qs[j];
            sum += x[i].D * y[i].D * isum;
        }
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotAvx2(Q8KBlock* x, Q8KBlock* y, int nb)
    {
        float sum = 0;
        Vector256<short> ones = Vector256.Create((short)1);
        for (int i = 0; i < nb; i++)
        {
            sbyte* qx = x[i].Qs, qy = y[i].Qs;
            Vector256<int> acc = Vector256<int>.Zero;
            for (int j = 0; j < KQuants.QK; j += 32)
            {
                Vector256<sbyte> a = Avx.LoadVector256(qx + j), b = Avx.LoadVector256(qy + j);
                // |a| · (b with a's sign): maddubs needs an unsigned first operand.
                Vector256<short> p = Avx2.MultiplyAddAdjacent(Avx2.Abs(a), Avx2.Sign(b, a));
                acc = Avx2.Add(acc, Avx2.MultiplyAddAdjacent(p, ones));
            }
            sum += x[i].D * y[i].D * KQuants.HorizontalSum(acc);
        }
        return sum;
    }

    /// <summary>Quantizes like ggml's <c>quantize_row_q8_K_ref</c> (bit-identical; an all-zero block also gets zero sums).</summary>
    public static void Quantize(ReadOnlySpan<float> src, Span<Q8KBlock> dst)
    {
        KQuants.CheckQuantizeLengths(GgmlType.Q8_K, src.Length, dst.Length);
        fixed (float* x = src)
        fixed (Q8KBlock* y = dst)
        {
            if (CpuFeatures.Avx2)
                QuantizeAvx2(x, y, dst.Length);
            else
                QuantizeReference(x, y, dst.Length);
        }
    }

    /// <summary>Scalar reference of <see cref="Quantize"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void QuantizeReference(float* x, Q8KBlock* y, int nb)
    {
        for (int i = 0; i < nb; i++, x += KQuants.QK)
        {
            float max = KQuants.MaxByMagnitude(new ReadOnlySpan<float>(x, KQuants.QK), out float amax);
            if (amax == 0)
            {
                y[i] = default;
                continue;
            }
            float iscale = -127f / max;
            for (int j = 0; j < KQuants.QK; j++)
                y[i].Qs[j] = (sbyte)Math.Min(127, KQuants.NearestInt(iscale * x[j]));
            for (int j = 0; j < KQuants.QK / 16; j++)
            {
                int sum = 0;
                for (int k = 0; k < 16; k++)
                    sum += y[i].Qs[16 * j + k];
                y[i].BSums[j] = (short)sum;
            }
            y[i].D = 1 / iscale;
        }
    }

    /// <summary>
    /// AVX2 <see cref="Quantize"/>: cvtps2dq rounds half to even under the default MXCSR, as nearest_int does
    /// for |v| ≤ 127; the max keeps the sign of the first element of largest magnitude, as the scalar scan does.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void QuantizeAvx2(float* x, Q8KBlock* y, int nb)
    {
        Vector256<float> absMask = Vector256.Create(0x7fffffff).AsSingle();
        Vector256<int> packOrder = Vector256.Create(0, 4, 1, 5, 2, 6, 3, 7);
        Vector256<int> limit = Vector256.Create(127);
        for (int i = 0; i < nb; i++, x += KQuants.QK)
        {
            Vector256<float> vmax = Vector256<float>.Zero;
            for (int j = 0; j < KQuants.QK; j += 8)
                vmax = Avx.Max(vmax, Avx.And(Avx.LoadVector256(x + j), absMask));
            Vector128<float> m4 = Sse.Max(vmax.GetLower(), vmax.GetUpper());
            m4 = Sse.Max(m4, Sse.MoveHighToLow(m4, m4));
            m4 = Sse.MaxScalar(m4, Sse3.MoveHighAndDuplicate(m4));
            float amax = m4.ToScalar();
            if (amax == 0)
            {
                y[i] = default;
                continue;
            }
            Vector256<float> vamax = Vector256.Create(amax);
            float max = 0;
            for (int j = 0; j < KQuants.QK; j += 8)
            {
                uint hit = Vector256.Equals(Avx.And(Avx.LoadVector256(x + j), absMask), vamax).ExtractMostSignificantBits();
                if (hit != 0)
                {
                    max = x[j + BitOperations.TrailingZeroCount(hit)];
                    break;
                }
            }
            float iscale = -127f / max;
            Vector256<float> mul = Vector256.Create(iscale);
            sbyte* qs = y[i].Qs;
            short* bsums = y[i].BSums;
            for (int j = 0; j < KQuants.QK; j += 64)
            {
                // 8 vectors of 8 values; groups of 16 are (q0,q1), (q2,q3), (q4,q5), (q6,q7).
                Vector256<int> q0 = Round(x + j, mul, limit), q1 = Round(x + j + 8, mul, limit);
                Vector256<int> q2 = Round(x + j + 16, mul, limit), q3 = Round(x + j + 24, mul, limit);
                Vector256<int> q4 = Round(x + j + 32, mul, limit), q5 = Round(x + j + 40, mul, limit);
                Vector256<int> q6 = Round(x + j + 48, mul, limit), q7 = Round(x + j + 56, mul, limit);
                Store32(qs + j, q0, q1, q2, q3, packOrder);
                Store32(qs + j + 32, q4, q5, q6, q7, packOrder);
                // Four group sums: hadd twice leaves (lanes 0-3 | lanes 4-7) partial sums per group.
                Vector256<int> h = Avx2.HorizontalAdd(
                    Avx2.HorizontalAdd(Avx2.Add(q0, q1), Avx2.Add(q2, q3)),
                    Avx2.HorizontalAdd(Avx2.Add(q4, q5), Avx2.Add(q6, q7)));
                Vector128<int> sums = Sse2.Add(h.GetLower(), h.GetUpper());
                Sse2.StoreScalar((long*)(bsums + j / 16), Sse2.PackSignedSaturate(sums, sums).AsInt64());
            }
            y[i].D = 1 / iscale;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Round(float* x, Vector256<float> mul, Vector256<int> limit) =>
        Avx2.Min(Avx.ConvertToVector256Int32(Avx.Multiply(mul, Avx.LoadVector256(x))), limit);

    // 32 int32 (in order a, b, c, d) narrowed to 32 int8; pack works per 128-bit lane, the permute restores order.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store32(sbyte* dst, Vector256<int> a, Vector256<int> b, Vector256<int> c, Vector256<int> d, Vector256<int> order)
    {
        Vector256<sbyte> packed = Avx2.PackSignedSaturate(Avx2.PackSignedSaturate(a, b), Avx2.PackSignedSaturate(c, d));
        Avx.Store(dst, Avx2.PermuteVar8x32(packed.AsInt32(), order).AsSByte());
    }
}

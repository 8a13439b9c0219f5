using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedLM.Kernels.Quants;

/// <summary>
/// The 32-value block quantizer of Q8_0 and Q8_1, byte for byte as ggml's <c>quantize_row_q8_0_ref</c>:
/// d = max|x|/127, q[j] = roundf(x[j]·(1/d)) (halves away from zero), d stored as F16.
/// The AVX2 path gives the same bytes as the scalar reference for finite inputs.
/// </summary>
internal static class Q8Quantizer
{
    /// <summary>The float just below 0.5: trunc(v + copysign(it, v)) is roundf(v) for |v| &lt; 2^23.</summary>
    private const uint JustBelowHalfBits = 0x3EFF_FFFFu;

    /// <summary>Quantizes 32 values at <paramref name="x"/> into 32 quants at <paramref name="q"/>; returns Σq when <paramref name="sum"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Block(ref readonly float x, ref sbyte q, out float d, bool sum) =>
        CpuFeatures.Avx2 ? BlockAvx2(in x, ref q, out d, sum) : BlockReference(in x, ref q, out d);

    internal static int BlockReference(ref readonly float x, ref sbyte q, out float d) => Reference(in x, ref q, out d, activation: false);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int BlockAvx2(ref readonly float x, ref sbyte q, out float d, bool sum) => Avx2Block(in x, ref q, out d, sum, activation: false);

    /// <summary>
    /// Quantizes 32 values as llama.cpp's CPU backend quantizes a matmul's activations on x86 (quantize_row_q8_0 and
    /// quantize_row_q8_1, AVX2): the multiplier is 127/max|x| rather than 1/d, and halves round to even; d = max|x|/127 as
    /// the reference. Returns Σq when <paramref name="sum"/>. Weights keep <see cref="Block"/>, as llama-quantize writes them.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int ActivationBlock(ref readonly float x, ref sbyte q, out float d, bool sum) =>
        CpuFeatures.Avx2 ? ActivationBlockAvx2(in x, ref q, out d, sum) : ActivationBlockReference(in x, ref q, out d);

    internal static int ActivationBlockReference(ref readonly float x, ref sbyte q, out float d) => Reference(in x, ref q, out d, activation: true);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int ActivationBlockAvx2(ref readonly float x, ref sbyte q, out float d, bool sum) => Avx2Block(in x, ref q, out d, sum, activation: true);

    // d = max|x| / 127 either way; weights multiply by 1/d and round halves away from zero (the reference quantizer),
    // activations by 127/max|x| and round halves to even (llama.cpp's x86 quantize_row_q8_0/q8_1).
    private static int Reference(ref readonly float x, ref sbyte q, out float d, bool activation)
    {
        float amax = 0;
        for (int j = 0; j < LegacyDot.BlockSize; j++)
        {
            float a = MathF.Abs(Unsafe.Add(ref Unsafe.AsRef(in x), j));
            amax = amax > a ? amax : a;
        }
        d = amax / 127;
        float id = activation ? (amax != 0 ? 127 / amax : 0) : (d != 0 ? 1 / d : 0);
        var rounding = activation ? MidpointRounding.ToEven : MidpointRounding.AwayFromZero;
        int total = 0;
        for (int j = 0; j < LegacyDot.BlockSize; j++)
        {
            int v = (int)MathF.Round(Unsafe.Add(ref Unsafe.AsRef(in x), j) * id, rounding);
            Unsafe.Add(ref q, j) = (sbyte)v;
            total += v;
        }
        return total;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Avx2Block(ref readonly float x, ref sbyte q, out float d, bool sum, bool activation)
    {
        Vector256<float> sign = Vector256.Create(-0f);
        Vector256<float> v0 = Vector256.LoadUnsafe(in x), v1 = Vector256.LoadUnsafe(in x, 8);
        Vector256<float> v2 = Vector256.LoadUnsafe(in x, 16), v3 = Vector256.LoadUnsafe(in x, 24);
        // maxps(a, b) is a > b ? a : b, as the reference's comparison; order does not matter for finite values.
        Vector256<float> m = Avx.Max(Avx.Max(Avx.AndNot(sign, v0), Avx.AndNot(sign, v1)), Avx.Max(Avx.AndNot(sign, v2), Avx.AndNot(sign, v3)));
        Vector128<float> m4 = Sse.Max(m.GetLower(), m.GetUpper());
        m4 = Sse.Max(m4, Sse.MoveHighToLow(m4, m4));
        m4 = Sse.MaxScalar(m4, Sse.Shuffle(m4, m4, 0b01_01_01_01));
        float amax = m4.ToScalar();
        d = amax / 127;
        var id = Vector256.Create(activation ? (amax != 0 ? 127 / amax : 0) : (d != 0 ? 1 / d : 0));
        Vector256<int> q0, q1, q2, q3;
        if (activation)
            (q0, q1, q2, q3) = (RoundHalfEven(Avx.Multiply(v0, id)), RoundHalfEven(Avx.Multiply(v1, id)), RoundHalfEven(Avx.Multiply(v2, id)), RoundHalfEven(Avx.Multiply(v3, id)));
        else
            (q0, q1, q2, q3) = (RoundHalfAway(Avx.Multiply(v0, id)), RoundHalfAway(Avx.Multiply(v1, id)), RoundHalfAway(Avx.Multiply(v2, id)), RoundHalfAway(Avx.Multiply(v3, id)));
        // Packing interleaves 128-bit lanes: dword k of the result holds quants 4·perm[k]..+3.
        Vector256<sbyte> packed = Avx2.PackSignedSaturate(Avx2.PackSignedSaturate(q0, q1), Avx2.PackSignedSaturate(q2, q3));
        Avx2.PermuteVar8x32(packed.AsInt32(), Vector256.Create(0, 4, 1, 5, 2, 6, 3, 7)).AsSByte().StoreUnsafe(ref q);
        return sum ? Vector256.Sum(Avx2.Add(Avx2.Add(q0, q1), Avx2.Add(q2, q3))) : 0;
    }

    /// <summary>Per lane, the nearest integer, halves to even (_mm256_round_ps with _MM_ROUND_NEAREST).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> RoundHalfEven(Vector256<float> v) => Avx.ConvertToVector256Int32WithTruncation(Avx.RoundToNearestInteger(v));

    /// <summary>roundf per lane (halves away from zero), exact for |v| &lt; 2^23: v + copysign(0.5⁻, v), truncated.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> RoundHalfAway(Vector256<float> v)
    {
        Vector256<float> half = Avx.Or(Avx.And(v, Vector256.Create(-0f)), Vector256.Create(BitConverter.UInt32BitsToSingle(JustBelowHalfBits)));
        return Avx.ConvertToVector256Int32WithTruncation(Avx.Add(v, half));
    }
}

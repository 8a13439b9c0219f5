using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ManagedLM.Kernels.Quants;

/// <summary>
/// The 32-value block quantizer of Q8_0 and Q8_1, byte for byte as ggml's <c>quantize_row_q8_0_ref</c>:
/// d = max|x|/127, q[j] = roundf(x[j]·(1/d)) (halves away from zero), d stored as F16.
/// The vector path gives the same bytes as the scalar reference for finite inputs.
/// </summary>
internal static class Q8Quantizer
{
    internal static readonly bool UseVector = Vector256.IsHardwareAccelerated;

    /// <summary>Quantizes 32 values at <paramref name="x"/> into 32 quants at <paramref name="q"/>; returns Σq.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Block(ref readonly float x, ref sbyte q, out float d) =>
        UseVector ? BlockVector(in x, ref q, out d) : BlockReference(in x, ref q, out d);

    internal static int BlockReference(ref readonly float x, ref sbyte q, out float d)
    {
        float amax = 0;
        for (int j = 0; j < LegacyDot.BlockSize; j++)
        {
            float a = MathF.Abs(Unsafe.Add(ref Unsafe.AsRef(in x), j));
            amax = amax > a ? amax : a;
        }
        d = amax / 127;
        float id = d != 0 ? 1 / d : 0;
        int sum = 0;
        for (int j = 0; j < LegacyDot.BlockSize; j++)
        {
            int v = (int)MathF.Round(Unsafe.Add(ref Unsafe.AsRef(in x), j) * id, MidpointRounding.AwayFromZero);
            Unsafe.Add(ref q, j) = (sbyte)v;
            sum += v;
        }
        return sum;
    }

    internal static int BlockVector(ref readonly float x, ref sbyte q, out float d)
    {
        Vector256<float> v0 = Vector256.LoadUnsafe(in x);
        Vector256<float> v1 = Vector256.LoadUnsafe(in x, 8);
        Vector256<float> v2 = Vector256.LoadUnsafe(in x, 16);
        Vector256<float> v3 = Vector256.LoadUnsafe(in x, 24);
        Vector256<float> m = Vector256.Max(Vector256.Max(Vector256.Abs(v0), Vector256.Abs(v1)), Vector256.Max(Vector256.Abs(v2), Vector256.Abs(v3)));
        Vector128<float> m4 = Vector128.Max(m.GetLower(), m.GetUpper());
        m4 = Vector128.Max(m4, Vector128.Shuffle(m4, Vector128.Create(2, 3, 0, 1)));
        float amax = MathF.Max(m4.ToScalar(), m4.GetElement(1));
        d = amax / 127;
        var id = Vector256.Create(d != 0 ? 1 / d : 0);
        Vector256<int> q0 = RoundHalfAwayToInt(v0 * id), q1 = RoundHalfAwayToInt(v1 * id);
        Vector256<int> q2 = RoundHalfAwayToInt(v2 * id), q3 = RoundHalfAwayToInt(v3 * id);
        Vector256.Narrow(Vector256.Narrow(q0, q1), Vector256.Narrow(q2, q3)).StoreUnsafe(ref q);
        return Vector256.Sum((q0 + q1) + (q2 + q3));
    }

    /// <summary>roundf per lane: the nearest integer, halves away from zero.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> RoundHalfAwayToInt(Vector256<float> v)
    {
        Vector256<float> t = Vector256.Truncate(v);
        Vector256<float> away = (Vector256.Create(1f).AsUInt32() | (v.AsUInt32() & Vector256.Create(0x8000_0000u))).AsSingle();
        Vector256<float> up = Vector256.GreaterThanOrEqual(Vector256.Abs(v - t), Vector256.Create(0.5f));
        return Vector256.ConvertToInt32(t + (away & up));
    }
}

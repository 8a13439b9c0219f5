using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ManagedLM.Kernels;

/// <summary>
/// The softmax of attention scores: <see cref="Softmax"/>'s stable form (the maximum subtracted first, a row of all −∞
/// uniform) with an exp of a few fused multiply-adds instead of the runtime's (a Cephes-style polynomial, within
/// 2 ulp: the weights are rounded to F16 after it anyway), in one pass that also sums. Element i's exp is the same
/// operations on every path, and the sum runs in 16 partial sums (element i into sum i % 16) combined in a fixed
/// tree, so 512-bit, 256-bit and scalar code give the same bits.
/// </summary>
public static class AttentionSoftmax
{
    private static readonly bool Use512 = CpuFeatures.Vector512;
    private static readonly bool Use256 = CpuFeatures.Vector256;

    private const float Log2E = 1.44269504088896341f;
    private const float Ln2High = 0.693359375f, Ln2Low = -2.12194440e-4f;
    private const float P0 = 1.9875691500e-4f, P1 = 1.3981999507e-3f, P2 = 8.3334519073e-3f, P3 = 4.1665795894e-2f, P4 = 1.6666665459e-1f, P5 = 5.0000001201e-1f;
    // Below this, exp would leave the normal range (2^-126): the weight is 0.
    private const float Underflow = -87f;

    /// <summary>x ← softmax(x), then each weight rounded to F16 when <paramref name="roundToHalf"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void InPlace(Span<float> x, bool roundToHalf)
    {
        if (x.IsEmpty)
            return;
        float max = Maximum.Of(x);
        if (float.IsNegativeInfinity(max))
            x.Fill(1.0f / x.Length);
        else
            Scale(x, 1f / ExpShifted(x, max, Use512, Use256));
        if (roundToHalf)
            Float16.Round(x, x);
    }

    /// <summary>
    /// x[i] ← exp(x[i] − max), returning Σ x[i] in the 16 partial sums, on 512-bit, 256-bit or scalar code
    /// (tests run each).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float ExpShifted(Span<float> x, float max, bool use512, bool use256)
    {
        int n = x.Length, i = 0;
        ref float p = ref MemoryMarshal.GetReference(x);
        Span<float> partial = stackalloc float[16]; // partial[j]: Σ exp over elements i ≡ j (mod 16)
        if (use512)
        {
            var m = Vector512.Create(max);
            var sum = Vector512<float>.Zero;
            for (; i + 16 <= n; i += 16)
            {
                var e = Exp(Vector512.LoadUnsafe(ref p, (nuint)i) - m);
                e.StoreUnsafe(ref p, (nuint)i);
                sum += e;
            }
            sum.CopyTo(partial);
        }
        else if (use256)
        {
            var m = Vector256.Create(max);
            Vector256<float> lo = Vector256<float>.Zero, hi = Vector256<float>.Zero;
            for (; i + 16 <= n; i += 16)
            {
                var e0 = Exp(Vector256.LoadUnsafe(ref p, (nuint)i) - m);
                var e1 = Exp(Vector256.LoadUnsafe(ref p, (nuint)i + 8) - m);
                e0.StoreUnsafe(ref p, (nuint)i);
                e1.StoreUnsafe(ref p, (nuint)i + 8);
                lo += e0;
                hi += e1;
            }
            lo.CopyTo(partial);
            hi.CopyTo(partial[8..]);
        }
        for (; i < n; i++)
        {
            float e = Exp(Unsafe.Add(ref p, i) - max);
            Unsafe.Add(ref p, i) = e;
            partial[i % 16] += e;
        }
        // The fixed tree: sums j and j + 8, then j and j + 4, j and j + 2, then the last two.
        for (int width = 8; width >= 1; width /= 2)
        {
            for (int j = 0; j < width; j++)
                partial[j] += partial[j + width];
        }
        return partial[0];
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Scale(Span<float> x, float s)
    {
        int n = x.Length, i = 0;
        ref float p = ref MemoryMarshal.GetReference(x);
        if (Use512)
        {
            for (; i + 16 <= n; i += 16)
                (Vector512.LoadUnsafe(ref p, (nuint)i) * s).StoreUnsafe(ref p, (nuint)i);
        }
        if (Use256)
        {
            for (; i + 8 <= n; i += 8)
                (Vector256.LoadUnsafe(ref p, (nuint)i) * s).StoreUnsafe(ref p, (nuint)i);
        }
        for (; i < n; i++)
            Unsafe.Add(ref p, i) *= s;
    }

    /// <summary>exp(x) for x ≤ 0 (NaN stays NaN): x = n·ln 2 + r, |r| ≤ ln 2 / 2, exp(r) by a degree-7 polynomial, times 2^n.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float Exp(float x)
    {
        float n = MathF.Round(x * Log2E);
        float r = MathF.FusedMultiplyAdd(n, -Ln2High, x);
        r = MathF.FusedMultiplyAdd(n, -Ln2Low, r);
        float q = MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(
            P0, r, P1), r, P2), r, P3), r, P4), r, P5);
        float y = MathF.FusedMultiplyAdd(q, r * r, r) + 1f;
        float scale = BitConverter.Int32BitsToSingle(((int)n + 127) << 23);
        return x < Underflow ? 0f : y * scale;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Exp(Vector512<float> x)
    {
        var n = Vector512.Round(x * Log2E);
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2High), x);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Low), r);
        var q = Vector512.FusedMultiplyAdd(Vector512.FusedMultiplyAdd(Vector512.FusedMultiplyAdd(Vector512.FusedMultiplyAdd(Vector512.FusedMultiplyAdd(
            Vector512.Create(P0), r, Vector512.Create(P1)), r, Vector512.Create(P2)), r, Vector512.Create(P3)), r, Vector512.Create(P4)), r, Vector512.Create(P5));
        var y = Vector512.FusedMultiplyAdd(q, r * r, r) + Vector512<float>.One;
        var scale = ((Vector512.ConvertToInt32(n) + Vector512.Create(127)) << 23).AsSingle();
        return Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512.Create(Underflow)), Vector512<float>.Zero, y * scale);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Exp(Vector256<float> x)
    {
        var n = Vector256.Round(x * Log2E);
        var r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2High), x);
        r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Low), r);
        var q = Vector256.FusedMultiplyAdd(Vector256.FusedMultiplyAdd(Vector256.FusedMultiplyAdd(Vector256.FusedMultiplyAdd(Vector256.FusedMultiplyAdd(
            Vector256.Create(P0), r, Vector256.Create(P1)), r, Vector256.Create(P2)), r, Vector256.Create(P3)), r, Vector256.Create(P4)), r, Vector256.Create(P5));
        var y = Vector256.FusedMultiplyAdd(q, r * r, r) + Vector256<float>.One;
        var scale = ((Vector256.ConvertToInt32(n) + Vector256.Create(127)) << 23).AsSingle();
        return Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256.Create(Underflow)), Vector256<float>.Zero, y * scale);
    }
}

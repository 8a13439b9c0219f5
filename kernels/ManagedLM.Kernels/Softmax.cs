using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ManagedLM.Kernels;

/// <summary>
/// Numerically stable softmax: subtracts the maximum first (TensorPrimitives.SoftMax does not, and
/// gives NaN for inputs such as [1000, 1000]), and sums in a fixed order (<see cref="Sum"/>), so a row gives the
/// same weights wherever it sits in memory. Every element's exp goes through the same 256-bit vector code (the tail padded
/// into one more vector), so an element's weight never depends on its index or the row's length.
/// </summary>
public static class Softmax
{
    /// <summary>x ← softmax(x). A row of all −∞ becomes uniform.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void InPlace(Span<float> x)
    {
        if (x.IsEmpty)
            return;
        float max = Maximum.Of(x);
        if (float.IsNegativeInfinity(max))
        {
            x.Fill(1.0f / x.Length);
            return;
        }
        ExpShifted(x, max);
        Scale(x, (float)(1.0 / Sum.OfChunks(x)));
    }

    // x[i] ← exp(x[i] − max).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ExpShifted(Span<float> x, float max)
    {
        int n = x.Length, i = 0;
        ref float p = ref MemoryMarshal.GetReference(x);
        if (CpuFeatures.Vector256)
        {
            var m = Vector256.Create(max);
            for (; i + 8 <= n; i += 8)
                Vector256.Exp(Vector256.LoadUnsafe(ref p, (nuint)i) - m).StoreUnsafe(ref p, (nuint)i);
            if (i < n)
            {
                Span<float> tail = stackalloc float[8];
                x[i..].CopyTo(tail);
                Vector256.Exp(Vector256.Create((ReadOnlySpan<float>)tail) - m).CopyTo(tail);
                tail[..(n - i)].CopyTo(x[i..]);
            }
        }
        else
        {
            for (; i < n; i++)
                Unsafe.Add(ref p, i) = MathF.Exp(Unsafe.Add(ref p, i) - max);
        }
    }

    // x[i] ← x[i]·s.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Scale(Span<float> x, float s)
    {
        int n = x.Length, i = 0;
        ref float p = ref MemoryMarshal.GetReference(x);
        if (CpuFeatures.Vector256)
        {
            for (; i + 8 <= n; i += 8)
                (Vector256.LoadUnsafe(ref p, (nuint)i) * s).StoreUnsafe(ref p, (nuint)i);
        }
        for (; i < n; i++)
            Unsafe.Add(ref p, i) *= s;
    }

    /// <summary>Scalar reference in double.</summary>
    internal static void Reference(Span<float> x)
    {
        double max = double.NegativeInfinity;
        foreach (float v in x) max = Math.Max(max, v);
        double sum = 0;
        var e = new double[x.Length];
        for (int i = 0; i < x.Length; i++) sum += e[i] = Math.Exp(x[i] - max);
        for (int i = 0; i < x.Length; i++) x[i] = (float)(e[i] / sum);
    }
}

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ManagedLM.Kernels;

/// <summary>
/// Reductions in a fixed order, so the result depends only on the values, never on where the span sits in
/// memory. (TensorPrimitives' reductions first align to the address, so the same row at another address can
/// round differently: two generators, or a prompt chunk and a single token, would disagree in the last bit.)
/// </summary>
public static class Sum
{
    /// <summary>Σ x[i]², each square rounded to float and summed in double, as ggml's rms_norm: eight double lanes from the first element, then the tail.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static double OfSquares(ReadOnlySpan<float> x)
    {
        int n = x.Length, i = 0;
        double sum = 0;
        ref float p = ref MemoryMarshal.GetReference(x);
        if (CpuFeatures.Vector256 && n >= 8)
        {
            Vector256<double> lo = Vector256<double>.Zero, hi = lo;
            for (; i + 8 <= n; i += 8)
            {
                var v = Vector256.LoadUnsafe(ref p, (nuint)i);
                var (a, b) = Vector256.Widen(v * v);
                lo += a;
                hi += b;
            }
            sum = Vector256.Sum(lo + hi);
        }
        for (; i < n; i++)
        {
            float v = Unsafe.Add(ref p, i);
            sum += v * v;
        }
        return sum;
    }

    /// <summary>
    /// Σ x[i] as ggml's softmax sums (ggml_vec_soft_max_f32, AVX2): each run of eight is summed in float as
    /// ((x0+x4)+(x2+x6)) + ((x1+x5)+(x3+x7)) and added to a double, then the tail one by one.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static double OfChunks(ReadOnlySpan<float> x)
    {
        int n = x.Length, i = 0;
        double sum = 0;
        ref float p = ref MemoryMarshal.GetReference(x);
        for (; i + 8 <= n; i += 8)
        {
            var v = Vector256.LoadUnsafe(ref p, (nuint)i);
            var h = v.GetLower() + v.GetUpper();                            // x0+x4, x1+x5, x2+x6, x3+x7
            var q = h + Vector128.Shuffle(h, Vector128.Create(2, 3, 2, 3)); // (x0+x4)+(x2+x6), (x1+x5)+(x3+x7)
            sum += q.GetElement(0) + q.GetElement(1);
        }
        for (; i < n; i++)
            sum += Unsafe.Add(ref p, i);
        return sum;
    }
}

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ManagedLM.Kernels;

/// <summary>
/// Layer normalization with a weight and a bias (BERT): dst = (x − mean) / √(variance + eps) · weight + bias, as llama.cpp's
/// CPU backend computes ggml_norm, ggml_mul and ggml_add: the sum of x added to a double in index order and rounded to
/// float, mean = sum / n in float; the centred values d = x − mean; their squares summed in float in chunks of eight, each
/// chunk as ((d0²+d4²)+(d2²+d6²)) + ((d1²+d5²)+(d3²+d7²)) added to a double, the tail one by one; variance = that / n
/// rounded to float; then d · (1 / √(variance + eps)), · weight and + bias, each rounded to float. The order is fixed, so
/// a row's result depends only on its values.
/// </summary>
public static class LayerNorm
{
    /// <summary>
    /// Normalizes <paramref name="x"/> into <paramref name="dst"/> (may alias x); <paramref name="bias"/> may be empty (none),
    /// else every span is as long as x.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Apply(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, float eps, Span<float> dst)
    {
        int n = x.Length;
        if (n == 0 || weight.Length != n || dst.Length != n || (!bias.IsEmpty && bias.Length != n))
            throw new ArgumentException($"LayerNorm lengths differ: x {n}, weight {weight.Length}, bias {bias.Length}, dst {dst.Length}.");
        float mean = (float)InOrder(x) / n;
        double squares = CenteredSquares(x, mean, dst);
        float variance = (float)(squares / n);
        float scale = 1.0f / MathF.Sqrt(variance + eps);
        Finish(dst, scale, weight, bias);
    }

    // Σ x[i] in double, one value at a time (ggml_vec_sum_f32 without Accelerate).
    private static double InOrder(ReadOnlySpan<float> x)
    {
        double sum = 0;
        foreach (float v in x)
            sum += v;
        return sum;
    }

    // d[i] = x[i] − mean into dst; returns Σ d² as ggml_vec_cvar_f32's AVX2 branch adds it.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static double CenteredSquares(ReadOnlySpan<float> x, float mean, Span<float> dst)
    {
        int n = x.Length, i = 0;
        double sum = 0;
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float pd = ref MemoryMarshal.GetReference(dst);
        var m = Vector256.Create(mean);
        for (; i + 8 <= n; i += 8)
        {
            var d = Vector256.LoadUnsafe(ref px, (nuint)i) - m;
            d.StoreUnsafe(ref pd, (nuint)i);
            var s = d * d;
            var h = s.GetLower() + s.GetUpper();                            // s0+s4, s1+s5, s2+s6, s3+s7
            var q = h + Vector128.Shuffle(h, Vector128.Create(2, 3, 2, 3)); // (s0+s4)+(s2+s6), (s1+s5)+(s3+s7)
            sum += q.GetElement(0) + q.GetElement(1);
        }
        for (; i < n; i++)
        {
            float d = Unsafe.Add(ref px, i) - mean;
            Unsafe.Add(ref pd, i) = d;
            sum += d * d;
        }
        return sum;
    }

    // dst[i] = (dst[i]·scale)·weight[i] (+ bias[i]), each step rounded to float.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Finish(Span<float> dst, float scale, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias)
    {
        int n = dst.Length, i = 0;
        bool biased = !bias.IsEmpty;
        ref float pd = ref MemoryMarshal.GetReference(dst);
        ref float pw = ref MemoryMarshal.GetReference(weight);
        ref float pb = ref MemoryMarshal.GetReference(biased ? bias : weight);
        if (CpuFeatures.Vector256)
        {
            for (; i + 8 <= n; i += 8)
            {
                var y = Vector256.LoadUnsafe(ref pd, (nuint)i) * scale * Vector256.LoadUnsafe(ref pw, (nuint)i);
                if (biased)
                    y += Vector256.LoadUnsafe(ref pb, (nuint)i);
                y.StoreUnsafe(ref pd, (nuint)i);
            }
        }
        for (; i < n; i++)
        {
            float y = Unsafe.Add(ref pd, i) * scale * Unsafe.Add(ref pw, i);
            Unsafe.Add(ref pd, i) = biased ? y + Unsafe.Add(ref pb, i) : y;
        }
    }

    /// <summary>Scalar reference in double: (x − mean) / √(variance + eps) · weight + bias, rounded once at the end.</summary>
    internal static void Reference(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, float eps, Span<float> dst)
    {
        int n = x.Length;
        double mean = 0, variance = 0;
        foreach (float v in x)
            mean += v;
        mean /= n;
        foreach (float v in x)
            variance += (v - mean) * (v - mean);
        variance /= n;
        double scale = 1 / Math.Sqrt(variance + eps);
        for (int i = 0; i < n; i++)
            dst[i] = (float)((x[i] - mean) * scale * weight[i] + (bias.IsEmpty ? 0 : bias[i]));
    }
}

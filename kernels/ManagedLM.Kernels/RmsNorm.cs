using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ManagedLM.Kernels;

/// <summary>Root-mean-square normalization: dst = x / sqrt(mean(x²) + eps) · weight.</summary>
public static class RmsNorm
{
    /// <summary>Normalizes <paramref name="x"/> into <paramref name="dst"/> (may alias x); all spans the same length.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Apply(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> dst)
    {
        if (weight.Length != x.Length || dst.Length != x.Length)
            throw new ArgumentException($"RmsNorm lengths differ: x {x.Length}, weight {weight.Length}, dst {dst.Length}.");
        Scaled(x, Scale(x, eps), weight, dst);
    }

    /// <summary>dst[i] = (x[i]·scale)·weight[i], each product rounded to F32 (the same floats however many lanes compute them).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Scaled(ReadOnlySpan<float> x, float scale, ReadOnlySpan<float> weight, Span<float> dst)
    {
        int n = x.Length, i = 0;
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float pw = ref MemoryMarshal.GetReference(weight);
        ref float pd = ref MemoryMarshal.GetReference(dst);
        if (CpuFeatures.Vector512)
        {
            for (; i + 16 <= n; i += 16)
                (Vector512.LoadUnsafe(ref px, (nuint)i) * scale * Vector512.LoadUnsafe(ref pw, (nuint)i)).StoreUnsafe(ref pd, (nuint)i);
        }
        if (CpuFeatures.Vector256)
        {
            for (; i + 8 <= n; i += 8)
                (Vector256.LoadUnsafe(ref px, (nuint)i) * scale * Vector256.LoadUnsafe(ref pw, (nuint)i)).StoreUnsafe(ref pd, (nuint)i);
        }
        for (; i < n; i++)
            Unsafe.Add(ref pd, i) = Unsafe.Add(ref px, i) * scale * Unsafe.Add(ref pw, i);
    }

    /// <summary>Normalizes each of the <paramref name="x"/>.Length / weight.Length heads of x in place (per-head q/k norm).</summary>
    public static void ApplyPerHead(Span<float> x, ReadOnlySpan<float> weight, float eps)
    {
        int d = weight.Length;
        if (d == 0 || x.Length % d != 0)
            throw new ArgumentException($"Length {x.Length} is not a multiple of the head size {d}.");
        for (int h = 0; h < x.Length; h += d)
        {
            var head = x.Slice(h, d);
            Apply(head, weight, eps, head);
        }
    }

    /// <summary>1 / sqrt(mean(x²) + eps), the sum of squares accumulated in double as ggml does (in a fixed order: <see cref="Sum"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float Scale(ReadOnlySpan<float> x, float eps)
    {
        double sum = Sum.OfSquares(x);
        float mean = (float)(sum / x.Length);
        return 1.0f / MathF.Sqrt(mean + eps);
    }
}

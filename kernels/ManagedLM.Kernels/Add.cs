using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ManagedLM.Kernels;

/// <summary>Element-wise sums (the residual stream, biases), compiled optimized from the first call.</summary>
public static class Add
{
    /// <summary>x[i] += y[i] for i &lt; x.Length (<paramref name="y"/> at least as long).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void InPlace(Span<float> x, ReadOnlySpan<float> y)
    {
        if (y.Length < x.Length)
            throw new ArgumentException($"The addend holds {y.Length} values; {x.Length} needed.", nameof(y));
        int n = x.Length, i = 0;
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float py = ref MemoryMarshal.GetReference(y);
        if (CpuFeatures.Vector512)
        {
            for (; i + 16 <= n; i += 16)
                (Vector512.LoadUnsafe(ref px, (nuint)i) + Vector512.LoadUnsafe(ref py, (nuint)i)).StoreUnsafe(ref px, (nuint)i);
        }
        if (CpuFeatures.Vector256)
        {
            for (; i + 8 <= n; i += 8)
                (Vector256.LoadUnsafe(ref px, (nuint)i) + Vector256.LoadUnsafe(ref py, (nuint)i)).StoreUnsafe(ref px, (nuint)i);
        }
        for (; i < n; i++)
            Unsafe.Add(ref px, i) += Unsafe.Add(ref py, i);
    }
}

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ManagedLM.Kernels;

/// <summary>The largest value of a span, NaN if any value is NaN (as <c>TensorPrimitives.Max</c>), compiled optimized from the first call.</summary>
public static class Maximum
{
    /// <summary>max(x); NaN when x holds a NaN. <paramref name="x"/> must not be empty.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Of(ReadOnlySpan<float> x)
    {
        if (x.IsEmpty)
            throw new ArgumentException("The maximum of no values is undefined.", nameof(x));
        int n = x.Length, i = 0;
        ref float p = ref MemoryMarshal.GetReference(x);
        float max = float.NegativeInfinity;
        bool nan = false;
        if (CpuFeatures.Vector256 && n >= 8)
        {
            Vector256<float> m = Vector256.Create(float.NegativeInfinity), bad = Vector256<float>.Zero;
            for (; i + 8 <= n; i += 8)
            {
                var v = Vector256.LoadUnsafe(ref p, (nuint)i);
                m = Vector256.MaxNative(m, v);
                bad |= ~Vector256.Equals(v, v);
            }
            max = Horizontal(m);
            nan = bad != Vector256<float>.Zero;
        }
        for (; i < n; i++)
        {
            float v = Unsafe.Add(ref p, i);
            nan |= float.IsNaN(v);
            max = v > max ? v : max;
        }
        return nan ? float.NaN : max;
    }

    private static float Horizontal(Vector256<float> m)
    {
        var h = Vector128.MaxNative(m.GetLower(), m.GetUpper());
        float a = MathF.Max(h[0], h[1]), b = MathF.Max(h[2], h[3]);
        return MathF.Max(a, b);
    }
}

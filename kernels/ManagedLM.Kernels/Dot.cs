using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ManagedLM.Kernels;

/// <summary>F32 dot products.</summary>
public static unsafe class Dot
{
    /// <summary>Σ a[i]·b[i] over equal-length spans.</summary>
    public static float F32(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length)
            throw new ArgumentException($"Lengths differ: {a.Length} and {b.Length}.");
        return F32Core(a, b);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float F32Core(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        int n = a.Length, i = 0;
        float sum = 0;
        if (CpuFeatures.Vector256 && n >= 8)
        {
            ref float pa = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(a);
            ref float pb = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(b);
            Vector256<float> s0 = Vector256<float>.Zero, s1 = s0, s2 = s0, s3 = s0;
            for (; i + 32 <= n; i += 32)
            {
                s0 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref pa, (nuint)i), Vector256.LoadUnsafe(ref pb, (nuint)i), s0);
                s1 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref pa, (nuint)i + 8), Vector256.LoadUnsafe(ref pb, (nuint)i + 8), s1);
                s2 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref pa, (nuint)i + 16), Vector256.LoadUnsafe(ref pb, (nuint)i + 16), s2);
                s3 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref pa, (nuint)i + 24), Vector256.LoadUnsafe(ref pb, (nuint)i + 24), s3);
            }
            for (; i + 8 <= n; i += 8)
                s0 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref pa, (nuint)i), Vector256.LoadUnsafe(ref pb, (nuint)i), s0);
            sum = Vector256.Sum((s0 + s1) + (s2 + s3));
        }
        for (; i < n; i++)
            sum = MathF.FusedMultiplyAdd(a[i], b[i], sum);
        return sum;
    }

    /// <summary>y[b·yStride + r] = dot(row r, activation row b) for F32 rows <paramref name="rowBytes"/> apart and F32 activation rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void MultiplyRows(byte* rows, long rowBytes, int rowCount, int cols, byte* activations, int stride, int count,
        float* y, int yStride)
    {
        for (int r = 0; r < rowCount; r++, rows += rowBytes)
        {
            var w = new ReadOnlySpan<float>(rows, cols);
            for (int b = 0; b < count; b++)
                y[b * yStride + r] = F32Core(w, new ReadOnlySpan<float>(activations + (nint)b * stride, cols));
        }
    }

    /// <summary>Scalar reference for <see cref="F32"/>, accumulated in double.</summary>
    internal static float F32Reference(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double sum = 0;
        for (int i = 0; i < a.Length; i++)
            sum += (double)a[i] * b[i];
        return (float)sum;
    }
}

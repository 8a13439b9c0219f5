using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace ManagedLM.Kernels;

/// <summary>
/// Numerically stable softmax: subtracts the maximum first (TensorPrimitives.SoftMax does not, and
/// gives NaN for inputs such as [1000, 1000]), and sums in a fixed order (<see cref="Sum"/>), so a row gives the
/// same weights wherever it sits in memory.
/// </summary>
public static class Softmax
{
    /// <summary>x ← softmax(x). A row of all −∞ becomes uniform.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void InPlace(Span<float> x)
    {
        if (x.IsEmpty)
            return;
        float max = TensorPrimitives.Max(x);
        if (float.IsNegativeInfinity(max))
        {
            x.Fill(1.0f / x.Length);
            return;
        }
        TensorPrimitives.Subtract(x, max, x);
        TensorPrimitives.Exp(x, x);
        TensorPrimitives.Multiply(x, (float)(1.0 / Sum.OfChunks(x)), x);
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

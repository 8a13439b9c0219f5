using System.Runtime.CompilerServices;

namespace ManagedLM.Kernels;

/// <summary>
/// Matrix × vector for weights of any supported type: y[r] = W[r,:] · x.
/// The activation x is prepared once per matmul input (<see cref="PrepareActivation"/>): quantized
/// to the block type the weight type's dot product consumes (Q8_0, Q8_1 or Q8_K, as ggml does), rounded
/// to F16/BF16 for 16-bit weights (as ggml does), or kept as F32 for F32 weights. The same prepared activation serves every row and every matrix of
/// the same weight type and width (Q, K and V share one).
/// </summary>
public static unsafe class MatVec
{
    /// <summary>True when <paramref name="type"/> weights can be multiplied.</summary>
    public static bool Supports(GgmlType type) => TypeTable.Of((uint)type).Multiplies;

    /// <summary>The form of the activation for <paramref name="weightType"/> weights (F32, F16, BF16, Q8_0, Q8_1 or Q8_K).</summary>
    public static GgmlType ActivationType(GgmlType weightType) => Multiplier(weightType).DotType;

    /// <summary>Every activation form some weight type consumes (each once): what a buffer of prepared activations may need.</summary>
    public static ReadOnlySpan<GgmlType> ActivationTypes => TypeTable.DotTypes;

    /// <summary>Bytes of a prepared activation of <paramref name="cols"/> values for <paramref name="weightType"/> weights.</summary>
    public static int ActivationBytes(GgmlType weightType, int cols) =>
        checked((int)GgmlTypes.RowBytes(ActivationType(weightType), cols));

    /// <summary>Converts x into the activation form of <paramref name="weightType"/> (<see cref="ActivationBytes"/> bytes), as llama.cpp's CPU backend does (<see cref="Quantize.ActivationRow"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PrepareActivation(GgmlType weightType, ReadOnlySpan<float> x, Span<byte> activation) =>
        Quantize.ActivationRow(ActivationType(weightType), x, activation);

    /// <summary>
    /// y[i] = dot(row rowStart+i of W, x) for i in [0, y.Length). W has rows of <paramref name="cols"/>
    /// elements, <paramref name="rowBytes"/> apart, starting at <paramref name="weights"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Rows(GgmlType weightType, byte* weights, long rowBytes, int cols, ReadOnlySpan<byte> activation, int rowStart, Span<float> y)
    {
        ref readonly TypeTraits t = ref Multiplier(weightType);
        if (activation.Length < GgmlTypes.RowBytes(t.DotType, cols))
            throw new ArgumentException($"The activation holds {activation.Length} bytes; {cols} values of {t.DotType} need more.", nameof(activation));
        fixed (byte* a = activation)
        fixed (float* py = y)
            t.MultiplyRows(weights + rowStart * rowBytes, rowBytes, y.Length, cols, a, activation.Length, 1, py, 1);
    }

    /// <summary>The row of a type whose weights multiply; throws <see cref="NotSupportedException"/> for any other.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static ref readonly TypeTraits Multiplier(GgmlType weightType)
    {
        ref readonly TypeTraits t = ref TypeTable.Of((uint)weightType);
        if (!t.Multiplies)
            throw new NotSupportedException($"Matrix multiplication with {GgmlTypes.Name(weightType)} weights is not supported.");
        return ref t;
    }
}

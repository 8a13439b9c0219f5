using System.Runtime.CompilerServices;

namespace ManagedLM.Kernels;

/// <summary>
/// Matrix × matrix: weight rows against a batch of activation rows (the tokens of a prompt chunk, or one
/// token of each of several sequences). Each weight row is read from memory once and dotted with every
/// activation row while it is in L1, so a batch of B rows costs one pass over the weights instead of B.
/// Every product equals what <see cref="MatVec.Rows"/> gives for that activation alone, bit for bit.
/// </summary>
public static unsafe class MatMul
{
    /// <summary>
    /// y[b·yStride + i] = dot(row rowStart+i of W, activation row b) for b in [0, batch), i in [0, rowCount).
    /// W has rows of <paramref name="cols"/> elements, <paramref name="rowBytes"/> apart, starting at
    /// <paramref name="weights"/>; activation row b (prepared by <see cref="MatVec.PrepareActivation"/>) starts
    /// at byte b·activationStride.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Rows(GgmlType weightType, byte* weights, long rowBytes, int cols,
        ReadOnlySpan<byte> activations, int activationStride, int batch, int rowStart, int rowCount, Span<float> y, int yStride)
    {
        ref readonly TypeTraits t = ref MatVec.Multiplier(weightType);
        Check(t.DotType, cols, activations.Length, activationStride, batch, rowCount, y.Length, yStride);
        fixed (byte* a = activations)
        fixed (float* py = y)
            t.MultiplyRows(weights + rowStart * rowBytes, rowBytes, rowCount, cols, a, activationStride, batch, py, yStride);
    }

    private static void Check(GgmlType dotType, int cols, int activationBytes, int stride, int batch, int rowCount, int yLength, int yStride)
    {
        long rowActivation = GgmlTypes.RowBytes(dotType, cols);
        if (batch < 1 || rowCount < 0)
            throw new ArgumentOutOfRangeException(nameof(batch), "The batch must hold at least one row.");
        if (stride < rowActivation || activationBytes < (long)(batch - 1) * stride + rowActivation)
            throw new ArgumentException($"{batch} activation rows of {rowActivation} bytes, {stride} apart, do not fit {activationBytes} bytes.");
        if (rowCount > 0 && (yStride < rowCount || yLength < (long)(batch - 1) * yStride + rowCount))
            throw new ArgumentException($"{batch} output rows of {rowCount} values, {yStride} apart, do not fit {yLength} values.");
    }
}

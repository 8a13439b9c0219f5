using System.Runtime.InteropServices;
using ManagedLM.Kernels.Quants;

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
    public static void Rows(GgmlType weightType, byte* weights, long rowBytes, int cols,
        ReadOnlySpan<byte> activations, int activationStride, int batch, int rowStart, int rowCount, Span<float> y, int yStride)
    {
        Check(weightType, cols, activations.Length, activationStride, batch, rowCount, y.Length, yStride);
        byte* row = weights + rowStart * rowBytes;
        switch (weightType)
        {
            case GgmlType.F32: FloatRows(row, rowBytes, cols, activations, activationStride, batch, rowCount, y, yStride); break;
            // float and legacy block types
            case GgmlType.F16: HalfRows.RowsMany<F16Format>(row, rowBytes, cols, activations, activationStride, batch, rowCount, y, yStride); break;
            case GgmlType.BF16: HalfRows.RowsMany<BF16Format>(row, rowBytes, cols, activations, activationStride, batch, rowCount, y, yStride); break;
            case GgmlType.Q4_0: BlockRows<Q4_0Block>(row, rowBytes, cols, activations, activationStride, batch, rowCount, y, yStride); break;
            case GgmlType.Q4_1: BlockRows<Q4_1Block>(row, rowBytes, cols, activations, activationStride, batch, rowCount, y, yStride); break;
            case GgmlType.Q5_0: BlockRows<Q5_0Block>(row, rowBytes, cols, activations, activationStride, batch, rowCount, y, yStride); break;
            case GgmlType.Q5_1: BlockRows<Q5_1Block>(row, rowBytes, cols, activations, activationStride, batch, rowCount, y, yStride); break;
            case GgmlType.Q8_0: BlockRows<Q8_0Block>(row, rowBytes, cols, activations, activationStride, batch, rowCount, y, yStride); break;
            case GgmlType.Q8_1: BlockRows<Q8_1Block>(row, rowBytes, cols, activations, activationStride, batch, rowCount, y, yStride); break;
            case GgmlType.IQ4_NL: BlockRows<IQ4NLBlock>(row, rowBytes, cols, activations, activationStride, batch, rowCount, y, yStride); break;
            // K-quants and IQ4_XS
            case GgmlType.Q2_K: BlockRows<Q2KBlock>(row, rowBytes, cols, activations, activationStride, batch, rowCount, y, yStride); break;
            case GgmlType.Q3_K: BlockRows<Q3KBlock>(row, rowBytes, cols, activations, activationStride, batch, rowCount, y, yStride); break;
            case GgmlType.Q4_K: BlockRows<Q4KBlock>(row, rowBytes, cols, activations, activationStride, batch, rowCount, y, yStride); break;
            case GgmlType.Q5_K: BlockRows<Q5KBlock>(row, rowBytes, cols, activations, activationStride, batch, rowCount, y, yStride); break;
            case GgmlType.Q6_K: BlockRows<Q6KBlock>(row, rowBytes, cols, activations, activationStride, batch, rowCount, y, yStride); break;
            case GgmlType.IQ4_XS: BlockRows<IQ4XSBlock>(row, rowBytes, cols, activations, activationStride, batch, rowCount, y, yStride); break;
            default:
                throw new NotSupportedException($"Matrix multiplication with {GgmlTypes.Name(weightType)} weights is not supported.");
        }
    }

    private static void FloatRows(byte* row, long rowBytes, int cols, ReadOnlySpan<byte> activations, int stride, int batch,
        int rowCount, Span<float> y, int yStride)
    {
        for (int i = 0; i < rowCount; i++, row += rowBytes)
        {
            var w = new ReadOnlySpan<float>(row, cols);
            for (int b = 0; b < batch; b++)
                y[b * yStride + i] = Dot.F32Core(w, MemoryMarshal.Cast<byte, float>(activations.Slice(b * stride))[..cols]);
        }
    }

    private static void BlockRows<T>(byte* row, long rowBytes, int cols, ReadOnlySpan<byte> activations, int stride, int batch,
        int rowCount, Span<float> y, int yStride) where T : unmanaged, IQuantBlock<T>
    {
        fixed (byte* a = activations)
        fixed (float* py = y)
            T.MultiplyRows(row, rowBytes, rowCount, cols / T.BlockSize, a, stride, batch, py, yStride);
    }

    private static void Check(GgmlType weightType, int cols, int activationBytes, int stride, int batch, int rowCount, int yLength, int yStride)
    {
        int rowActivation = MatVec.ActivationBytes(weightType, cols);
        if (batch < 1 || rowCount < 0)
            throw new ArgumentOutOfRangeException(nameof(batch), "The batch must hold at least one row.");
        if (stride < rowActivation || activationBytes < (long)(batch - 1) * stride + rowActivation)
            throw new ArgumentException($"{batch} activation rows of {rowActivation} bytes, {stride} apart, do not fit {activationBytes} bytes.");
        if (rowCount > 0 && (yStride < rowCount || yLength < (long)(batch - 1) * yStride + rowCount))
            throw new ArgumentException($"{batch} output rows of {rowCount} values, {yStride} apart, do not fit {yLength} values.");
    }
}

using System.Runtime.InteropServices;
using ManagedLM.Kernels.Quants;

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
    public static bool Supports(GgmlType type) => type switch
    {
        GgmlType.F32 => true,
        // float and legacy block types
        GgmlType.F16 or GgmlType.BF16 or GgmlType.Q4_0 or GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1
            or GgmlType.Q8_0 or GgmlType.Q8_1 or GgmlType.IQ4_NL => true,
        // K-quants and IQ4_XS
        GgmlType.Q2_K or GgmlType.Q3_K or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K or GgmlType.IQ4_XS => true,
        _ => false,
    };

    /// <summary>The form of the activation for <paramref name="weightType"/> weights (F32, F16, BF16, Q8_0, Q8_1 or Q8_K).</summary>
    public static GgmlType ActivationType(GgmlType weightType) => weightType switch
    {
        GgmlType.F32 => GgmlType.F32,
        // float and legacy block types
        GgmlType.F16 => GgmlType.F16,
        GgmlType.BF16 => GgmlType.BF16,
        GgmlType.Q4_0 or GgmlType.Q5_0 or GgmlType.Q8_0 or GgmlType.IQ4_NL => GgmlType.Q8_0,
        GgmlType.Q4_1 or GgmlType.Q5_1 or GgmlType.Q8_1 => GgmlType.Q8_1,
        // K-quants and IQ4_XS
        GgmlType.Q2_K or GgmlType.Q3_K or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K or GgmlType.IQ4_XS => GgmlType.Q8_K,
        _ => throw new NotSupportedException($"Matrix multiplication with {GgmlTypes.Name(weightType)} weights is not supported."),
    };

    /// <summary>Bytes of a prepared activation of <paramref name="cols"/> values for <paramref name="weightType"/> weights.</summary>
    public static int ActivationBytes(GgmlType weightType, int cols) =>
        checked((int)GgmlTypes.RowBytes(ActivationType(weightType), cols));

    /// <summary>Converts x into the activation form of <paramref name="weightType"/> (<see cref="ActivationBytes"/> bytes).</summary>
    public static void PrepareActivation(GgmlType weightType, ReadOnlySpan<float> x, Span<byte> activation) =>
        Quantize.Row(ActivationType(weightType), x, activation);

    /// <summary>
    /// y[i] = dot(row rowStart+i of W, x) for i in [0, y.Length). W has rows of <paramref name="cols"/>
    /// elements, <paramref name="rowBytes"/> apart, starting at <paramref name="weights"/>.
    /// </summary>
    public static void Rows(GgmlType weightType, byte* weights, long rowBytes, int cols, ReadOnlySpan<byte> activation, int rowStart, Span<float> y)
    {
        byte* row = weights + rowStart * rowBytes;
        switch (weightType)
        {
            case GgmlType.F32:
            {
                var x = MemoryMarshal.Cast<byte, float>(activation)[..cols];
                for (int i = 0; i < y.Length; i++, row += rowBytes)
                    y[i] = Dot.F32Core(new ReadOnlySpan<float>(row, cols), x);
                break;
            }
            // float and legacy block types
            case GgmlType.F16: HalfRows.Rows<F16Format>(row, rowBytes, cols, activation, y); break;
            case GgmlType.BF16: HalfRows.Rows<BF16Format>(row, rowBytes, cols, activation, y); break;
            case GgmlType.Q4_0: BlockRows<Q4_0Block>(row, rowBytes, cols, activation, y); break;
            case GgmlType.Q4_1: BlockRows<Q4_1Block>(row, rowBytes, cols, activation, y); break;
            case GgmlType.Q5_0: BlockRows<Q5_0Block>(row, rowBytes, cols, activation, y); break;
            case GgmlType.Q5_1: BlockRows<Q5_1Block>(row, rowBytes, cols, activation, y); break;
            case GgmlType.Q8_0: BlockRows<Q8_0Block>(row, rowBytes, cols, activation, y); break;
            case GgmlType.Q8_1: BlockRows<Q8_1Block>(row, rowBytes, cols, activation, y); break;
            case GgmlType.IQ4_NL: BlockRows<IQ4NLBlock>(row, rowBytes, cols, activation, y); break;
            // K-quants and IQ4_XS
            case GgmlType.Q2_K: BlockRows<Q2KBlock>(row, rowBytes, cols, activation, y); break;
            case GgmlType.Q3_K: BlockRows<Q3KBlock>(row, rowBytes, cols, activation, y); break;
            case GgmlType.Q4_K: BlockRows<Q4KBlock>(row, rowBytes, cols, activation, y); break;
            case GgmlType.Q5_K: BlockRows<Q5KBlock>(row, rowBytes, cols, activation, y); break;
            case GgmlType.Q6_K: BlockRows<Q6KBlock>(row, rowBytes, cols, activation, y); break;
            case GgmlType.IQ4_XS: BlockRows<IQ4XSBlock>(row, rowBytes, cols, activation, y); break;
            default:
                throw new NotSupportedException($"Matrix multiplication with {GgmlTypes.Name(weightType)} weights is not supported.");
        }
    }

    internal static void BlockRows<T>(byte* row, long rowBytes, int cols, ReadOnlySpan<byte> activation, Span<float> y)
        where T : unmanaged, IQuantBlock<T>
    {
        if (activation.Length < GgmlTypes.RowBytes(T.DotType, cols))
            throw new ArgumentException($"The activation holds {activation.Length} bytes; {cols} values of {T.DotType} need more.", nameof(activation));
        fixed (byte* a = activation)
        fixed (float* py = y)
            T.MultiplyRows(row, rowBytes, y.Length, cols / T.BlockSize, a, activation.Length, 1, py, 1);
    }
}

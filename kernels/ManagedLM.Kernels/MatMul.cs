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

    /// <summary>Rows per group of a repacked matrix: a matrix repacks when its row count is a multiple of it.</summary>
    public const int RepackGroupRows = Quants.SignedBlockGroups.GroupRows;

    /// <summary>
    /// True when <paramref name="weightType"/> weights have a repacked layout (several rows' blocks side by side, see
    /// <see cref="Repack"/>) that multiplies faster than the file's layout on this CPU.
    /// </summary>
    public static bool RepackPays(GgmlType weightType) => CpuFeatures.AvxVnni && TypeTable.Of((uint)weightType).Repacks;

    /// <summary>True when <paramref name="weightType"/> weights have a repacked layout (on any CPU; see <see cref="RepackPays"/>).</summary>
    public static bool CanRepack(GgmlType weightType) => TypeTable.Of((uint)weightType).Repacks;

    /// <summary>Bytes of the repacked form of <paramref name="rows"/> rows of <paramref name="cols"/> values.</summary>
    public static long RepackedBytes(GgmlType weightType, int rows, int cols)
    {
        ref readonly TypeTraits t = ref Repacker(weightType, rows);
        return t.RepackedBytes(rows, cols);
    }

    /// <summary>
    /// Copies <paramref name="rows"/> rows (a multiple of <see cref="RepackGroupRows"/>) of <paramref name="cols"/> values,
    /// <paramref name="rowBytes"/> apart from <paramref name="weights"/>, into the repacked layout <see cref="RepackedRows"/> reads.
    /// </summary>
    public static void Repack(GgmlType weightType, byte* weights, long rowBytes, int rows, int cols, Span<byte> packed)
    {
        ref readonly TypeTraits t = ref Repacker(weightType, rows);
        if (packed.Length < t.RepackedBytes(rows, cols))
            throw new ArgumentException($"{rows} × {cols} repacked {GgmlTypes.Name(weightType)} values need {t.RepackedBytes(rows, cols)} bytes.", nameof(packed));
        fixed (byte* p = packed)
            t.Repack(weights, rowBytes, rows, cols, p);
    }

    /// <summary>
    /// As <see cref="Rows"/>, over a matrix of <paramref name="rows"/> rows repacked by <see cref="Repack"/>: the same floats, bit for bit.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RepackedRows(GgmlType weightType, ReadOnlySpan<byte> packed, int rows, int cols,
        ReadOnlySpan<byte> activations, int activationStride, int batch, int rowStart, int rowCount, Span<float> y, int yStride)
    {
        ref readonly TypeTraits t = ref Repacker(weightType, rows);
        Check(t.DotType, cols, activations.Length, activationStride, batch, rowCount, y.Length, yStride);
        if (packed.Length < t.RepackedBytes(rows, cols) || rowStart < 0 || rowCount < 0 || rowStart + rowCount > rows)
            throw new ArgumentException($"Rows [{rowStart}, {rowStart + rowCount}) of a {rows} × {cols} repacked matrix in {packed.Length} bytes do not fit.");
        fixed (byte* p = packed)
        fixed (byte* a = activations)
        fixed (float* py = y)
            t.MultiplyRepacked(p, rowStart, rowCount, cols, a, activationStride, batch, py, yStride);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static ref readonly TypeTraits Repacker(GgmlType weightType, int rows)
    {
        ref readonly TypeTraits t = ref MatVec.Multiplier(weightType);
        if (!t.Repacks)
            throw new NotSupportedException($"{GgmlTypes.Name(weightType)} weights have no repacked layout.");
        if (rows % RepackGroupRows != 0)
            throw new ArgumentException($"{rows} rows do not divide into groups of {RepackGroupRows}.", nameof(rows));
        return ref t;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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

using System.Runtime.CompilerServices;

namespace ManagedLM.Kernels.Quants;

/// <summary>
/// A GGUF block type (bit-compatible with ggml's <c>block_*</c> struct): how it dequantizes and how a
/// row of such blocks is dotted with an activation row prepared as <see cref="DotType"/> blocks.
/// Generic code over <c>TBlock : IQuantBlock&lt;TBlock&gt;</c> is specialized by the JIT per type.
/// </summary>
public interface IQuantBlock<TSelf> where TSelf : unmanaged, IQuantBlock<TSelf>
{
    /// <summary>The ggml type id of this block.</summary>
    static abstract GgmlType Type { get; }

    /// <summary>Elements per block.</summary>
    static abstract int BlockSize { get; }

    /// <summary>The activation block type <see cref="Dot"/> consumes (Q8_0, Q8_1 or Q8_K), as in ggml's <c>vec_dot_type</c>.</summary>
    static abstract GgmlType DotType { get; }

    /// <summary>Dequantizes blocks: <paramref name="dst"/>.Length == blocks.Length * BlockSize.</summary>
    static abstract void Dequantize(ReadOnlySpan<TSelf> blocks, Span<float> dst);

    /// <summary>Dot product of a weight row with an activation row of <see cref="DotType"/> blocks (same element count).</summary>
    static abstract float Dot(ReadOnlySpan<TSelf> blocks, ReadOnlySpan<byte> activation);

    /// <summary>
    /// Matrix × matrix over raw rows: y[b·yStride + r] = row r · activation row b for r &lt; rowCount, b &lt; count, with rows
    /// of <paramref name="blocksPerRow"/> blocks <paramref name="rowBytes"/> apart and activation rows (of <see cref="DotType"/>
    /// blocks) <paramref name="activationStride"/> bytes apart; the caller has checked every bound. A type may override it to
    /// unpack each weight block once for all activation rows; every override gives exactly the floats <see cref="Dot"/> gives.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static virtual unsafe void MultiplyRows(byte* rows, long rowBytes, int rowCount, int blocksPerRow,
        byte* activations, int activationStride, int count, float* y, int yStride)
    {
        int activationBytes = checked((int)GgmlTypes.RowBytes(TSelf.DotType, (long)blocksPerRow * TSelf.BlockSize));
        for (int r = 0; r < rowCount; r++)
        {
            var row = new ReadOnlySpan<TSelf>(rows + r * rowBytes, blocksPerRow);
            for (int b = 0; b < count; b++)
                y[b * yStride + r] = TSelf.Dot(row, new ReadOnlySpan<byte>(activations + (nint)b * activationStride, activationBytes));
        }
    }
}

/// <summary>A block type with a reference quantizer that matches ggml's <c>quantize_row_*_ref</c> byte for byte.</summary>
public interface IQuantizableBlock<TSelf> : IQuantBlock<TSelf> where TSelf : unmanaged, IQuantizableBlock<TSelf>
{
    /// <summary>Quantizes <paramref name="src"/> (length blocks.Length * BlockSize) into blocks.</summary>
    static abstract void Quantize(ReadOnlySpan<float> src, Span<TSelf> dst);
}

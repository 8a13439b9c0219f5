using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ManagedLM.Kernels.Quants;

namespace ManagedLM.Kernels;

/// <summary>
/// What the kernels know of one tensor type, in the spirit of ggml's <c>type_traits</c>: block geometry, the activation form
/// its matrix products consume, and direct pointers to its kernels (null where the type has none). One row per type in
/// <see cref="TypeTable"/>, built once from the type's block struct; <see cref="MatVec"/>, <see cref="MatMul"/>,
/// <see cref="Kernels.Dequantize"/>, <see cref="Kernels.Quantize"/> and <see cref="GgmlTypes"/> look the row up and call through it.
/// A new capability (a repacked layout, another ISA's rows) is a pointer here, filled in by the builders below.
/// </summary>
internal readonly unsafe struct TypeTraits
{
    /// <summary>The ggml type id.</summary>
    public GgmlType Type { get; init; }

    /// <summary>Elements per block (1 for plain float and integer types; 0 in the table's gaps, ids that name no type).</summary>
    public int BlockSize { get; init; }

    /// <summary>Bytes per block.</summary>
    public int BlockBytes { get; init; }

    /// <summary>The activation form <see cref="MultiplyRows"/> consumes, as ggml's <c>vec_dot_type</c>.</summary>
    public GgmlType DotType { get; init; }

    /// <summary>src (at least the bytes of dst.Length elements) → dst.Length floats.</summary>
    public delegate*<ReadOnlySpan<byte>, Span<float>, void> Dequantize { get; init; }

    /// <summary>src (whole blocks) → the bytes of src.Length elements at the start of dst, byte for byte as ggml's reference.</summary>
    public delegate*<ReadOnlySpan<float>, Span<byte>, void> Quantize { get; init; }

    /// <summary>
    /// (rows, rowBytes, rowCount, cols, activations, activationStride, count, y, yStride): y[b·yStride + r] = row r ·
    /// activation row b for r &lt; rowCount, b &lt; count; rows of <c>cols</c> elements <c>rowBytes</c> apart, activation rows
    /// of <see cref="DotType"/> <c>activationStride</c> bytes apart; the caller has checked every bound. Count 1 is the
    /// matrix × vector product of a decode step; every count gives each activation row the floats it gets alone.
    /// </summary>
    public delegate*<byte*, long, int, int, byte*, int, int, float*, int, void> MultiplyRows { get; init; }

    /// <summary>
    /// (rows, rowBytes, rowCount, cols, packed): rowCount rows (a multiple of <see cref="SignedBlockGroups.GroupRows"/>) of the
    /// file's layout into <see cref="RepackedBytes"/> bytes of the interleaved layout <see cref="MultiplyRepacked"/> reads;
    /// null for a type without one.
    /// </summary>
    public delegate*<byte*, long, int, int, byte*, void> Repack { get; init; }

    /// <summary>(rowCount, cols): bytes of the repacked form of rowCount rows of cols values.</summary>
    public delegate*<int, int, long> RepackedBytes { get; init; }

    /// <summary>
    /// (packed, rowStart, rowCount, cols, activations, activationStride, count, y, yStride): as <see cref="MultiplyRows"/> over
    /// the rows [rowStart, rowStart + rowCount) of a repacked matrix, with the same floats.
    /// </summary>
    public delegate*<byte*, int, int, int, byte*, int, int, float*, int, void> MultiplyRepacked { get; init; }

    /// <summary>True when this type has a repacked layout.</summary>
    public bool Repacks => Repack != null;

    /// <summary>True for an id that names a type.</summary>
    public bool IsKnown => BlockSize != 0;

    /// <summary>True when weights of this type can be multiplied (<see cref="MultiplyRows"/> is set).</summary>
    public bool Multiplies => MultiplyRows != null;

    /// <summary>A type ManagedLM only knows the geometry of: GGUF files may hold it, no kernel reads it.</summary>
    public static TypeTraits Geometry(GgmlType type, int blockSize, int blockBytes) =>
        new() { Type = type, BlockSize = blockSize, BlockBytes = blockBytes };

    /// <summary>A block type: its geometry and kernels from its block struct.</summary>
    public static TypeTraits Block<T>() where T : unmanaged, IQuantizableBlock<T> => new()
    {
        Type = T.Type, BlockSize = T.BlockSize, BlockBytes = sizeof(T), DotType = T.DotType,
        Dequantize = &DequantizeBlocks<T>, Quantize = &QuantizeBlocks<T>, MultiplyRows = &MultiplyBlockRows<T>,
    };

    /// <summary>A signed 32-value block type with its repacked layout: eight rows' blocks side by side, quants stored as <typeparamref name="TQ"/>.</summary>
    public static TypeTraits Grouped<T, TQ>() where T : unmanaged, IQuantizableBlock<T>, ISignedQuantBlock<T> where TQ : IGroupQuants => Block<T>() with
    {
        Repack = &SignedBlockGroups.Repack<T, TQ>, RepackedBytes = &SignedBlockGroups.PackedBytes<TQ>,
        MultiplyRepacked = &SignedBlockGroups.MultiplyRows<T, TQ>,
    };

    /// <summary>Q4_K with its repacked layout: eight rows' blocks side by side (<see cref="SuperBlockGroups"/>).</summary>
    public static TypeTraits GroupedQ4K => Block<Q4KBlock>() with
    {
        Repack = &SuperBlockGroups.Repack, RepackedBytes = &SuperBlockGroups.PackedBytes, MultiplyRepacked = &SuperBlockGroups.MultiplyRows,
    };

    /// <summary>A 16-bit float type: its activation is rounded to the same format, as ggml does.</summary>
    public static TypeTraits Half<TFormat>(GgmlType type) where TFormat : IHalfFormat => new()
    {
        Type = type, BlockSize = 1, BlockBytes = sizeof(ushort), DotType = type,
        Dequantize = &HalfRows.Dequantize<TFormat>, Quantize = &HalfRows.Quantize<TFormat>, MultiplyRows = &HalfRows.MultiplyRows<TFormat>,
    };

    /// <summary>F32: copied in and out; its activation stays F32.</summary>
    public static TypeTraits F32 => new()
    {
        Type = GgmlType.F32, BlockSize = 1, BlockBytes = sizeof(float), DotType = GgmlType.F32,
        Dequantize = &CopyF32, Quantize = &CopyF32, MultiplyRows = &Dot.MultiplyRows,
    };

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DequantizeBlocks<T>(ReadOnlySpan<byte> src, Span<float> dst) where T : unmanaged, IQuantBlock<T> =>
        T.Dequantize(MemoryMarshal.Cast<byte, T>(src)[..(dst.Length / T.BlockSize)], dst);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void QuantizeBlocks<T>(ReadOnlySpan<float> src, Span<byte> dst) where T : unmanaged, IQuantizableBlock<T> =>
        T.Quantize(src, MemoryMarshal.Cast<byte, T>(dst)[..(src.Length / T.BlockSize)]);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MultiplyBlockRows<T>(byte* rows, long rowBytes, int rowCount, int cols, byte* activations, int activationStride,
        int count, float* y, int yStride) where T : unmanaged, IQuantBlock<T> =>
        T.MultiplyRows(rows, rowBytes, rowCount, cols / T.BlockSize, activations, activationStride, count, y, yStride);

    private static void CopyF32(ReadOnlySpan<byte> src, Span<float> dst) => MemoryMarshal.Cast<byte, float>(src)[..dst.Length].CopyTo(dst);

    private static void CopyF32(ReadOnlySpan<float> src, Span<byte> dst) => MemoryMarshal.AsBytes(src).CopyTo(dst);
}

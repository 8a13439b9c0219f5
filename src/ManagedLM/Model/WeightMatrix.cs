using System.Runtime.CompilerServices;
using ManagedLM.Gguf;
using ManagedLM.Kernels;

namespace ManagedLM.Model;

/// <summary>
/// A read-only weight matrix of <see cref="Rows"/> rows of <see cref="Columns"/> elements stored as
/// <see cref="Type"/> in the memory-mapped model file (GGUF ne = [Columns, Rows]): y = W·x maps
/// Columns inputs to Rows outputs. A matrix may also hold a repacked copy (<see cref="RepackedBytes"/>): its rows'
/// blocks side by side, which the products read instead of the file's layout, with the same floats.
/// </summary>
public sealed unsafe class WeightMatrix
{
    public string Name { get; }
    /// <summary>The GGUF tensor the rows come from (<see cref="Name"/> also gives the row range of a part of one).</summary>
    internal string TensorName { get; init; }
    public GgmlType Type { get; }
    public int Rows { get; }
    public int Columns { get; }
    public long RowBytes { get; }
    internal byte* Data { get; }

    // The repacked copy (in the model's weight arena, cache-line aligned); null when products read the file's layout.
    private readonly byte* _repacked;

    /// <summary>Bytes of the repacked copy of the weights; 0 when the products read the file's layout.</summary>
    public long RepackedBytes { get; }

    /// <summary>Whether the products read a copy of the file's bytes in large pages (see <see cref="ModelOptions.LargePages"/>).</summary>
    public bool InLargePages { get; }

    /// <summary>Whether the file's pages of this matrix were given back after copying or repacking (nothing reads them again); never for a model in memory.</summary>
    internal bool FileBytesReleased { get; }

    // data: the matrix in the file's layout. arena: where copies go; null: the products read data in place.
    // repack: copy the rows into the type's repacked layout where it is faster on this CPU; copy: otherwise copy the
    // file's layout into the arena (large pages). readsRows: rows are looked up one by one (the token embedding), which a
    // repacked matrix still does from data. releaseFileBytes: gives back the pages at data, saying whether it did;
    // called once nothing reads them.
    internal WeightMatrix(string name, GgmlType type, int rows, int columns, byte* data,
        WeightArena? arena = null, bool repack = false, bool copy = false, bool readsRows = false, Func<bool>? releaseFileBytes = null)
    {
        Name = TensorName = name;
        Type = type;
        Rows = rows;
        Columns = columns;
        RowBytes = GgmlTypes.RowBytes(type, columns);
        Data = data;
        if (arena is null)
            return;
        if (repack && MatMul.RepackPays(type) && rows % MatMul.RepackGroupRows == 0
            && MatMul.RepackedBytes(type, rows, columns) is var bytes && bytes <= int.MaxValue)
        {
            _repacked = arena.Allocate(bytes);
            RepackedBytes = bytes;
            Repack();
            if (!readsRows)
                FileBytesReleased = releaseFileBytes?.Invoke() ?? false;
        }
        else if (copy)
        {
            Data = arena.Allocate(RowBytes * rows);
            InLargePages = true;
            CopyRows(data);
            FileBytesReleased = releaseFileBytes?.Invoke() ?? false;
        }
    }

    // Rows per slice of the load-time copies, run on the thread pool.
    private const int SliceRows = 64 * MatMul.RepackGroupRows;
    private int Slices => (Rows + SliceRows - 1) / SliceRows;

    // Slices of whole groups, each a contiguous part of the copy.
    private void Repack() => Parallel.For(0, Slices, slice =>
    {
        int first = slice * SliceRows, count = Math.Min(SliceRows, Rows - first);
        int offset = (int)MatMul.RepackedBytes(Type, first, Columns);
        MatMul.Repack(Type, Data + first * RowBytes, RowBytes, count, Columns, Repacked[offset..]);
    });

    private void CopyRows(byte* source) => Parallel.For(0, Slices, slice =>
    {
        long first = (long)slice * SliceRows * RowBytes, bytes = Math.Min(SliceRows, Rows - slice * SliceRows) * RowBytes;
        Buffer.MemoryCopy(source + first, Data + first, bytes, bytes);
    });

    private Span<byte> Repacked
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        get => new(_repacked, (int)RepackedBytes);
    }

    /// <summary>
    /// The matrix of tensor <paramref name="t"/>; with an <paramref name="arena"/>, repacked or copied there as the
    /// constructor says, and then the file's pages that nothing reads any more are given back (<see cref="GgufFile.ReleasePages"/>).
    /// </summary>
    internal static WeightMatrix FromTensor(GgufFile file, GgufTensorInfo t, int rows, int columns,
        WeightArena? arena = null, bool repack = false, bool copy = false, bool readsRows = false)
    {
        if (t.Shape.Count != 2 || t.Shape[0] != columns || t.Shape[1] != rows)
            throw new GgufFormatException(t.FileOffset, $"tensor \"{t.Name}\": expected shape [{columns}, {rows}], found [{string.Join(", ", t.Shape)}]");
        CheckMultipliable(t);
        return new WeightMatrix(t.Name, t.Type, rows, columns, file.GetTensorPointer(t), arena, repack, copy, readsRows, () => file.ReleasePages(t));
    }

    /// <summary>
    /// Matrices over consecutive row ranges of tensor <paramref name="t"/> (<paramref name="counts"/> rows each, in
    /// order, together all its rows; a 3-D tensor's rows are its ne1·ne2 rows): the parts of a fused projection, or
    /// the experts of an expert tensor. Copied or repacked as <see cref="FromTensor"/> does; the tensor's pages go back
    /// once no part reads them (the last part then says so).
    /// </summary>
    internal static WeightMatrix[] FromTensorRows(GgufFile file, GgufTensorInfo t, int[] counts, int columns,
        WeightArena? arena = null, bool repack = false, bool copy = false)
    {
        long total = counts.Sum(n => (long)n);
        if (t.Shape.Count < 2 || t.Shape[0] != columns || t.Rows != total)
            throw new GgufFormatException(t.FileOffset, $"tensor \"{t.Name}\": expected {columns} columns and {total} rows ({string.Join(" + ", counts)}), found shape [{string.Join(", ", t.Shape)}]");
        CheckMultipliable(t);
        var parts = new WeightMatrix[counts.Length];
        byte* data = file.GetTensorPointer(t);
        long rowBytes = GgmlTypes.RowBytes(t.Type, columns), first = 0;
        // The last part gives the pages back if every part is a copy (its FileBytesReleased then stands for the tensor).
        for (int i = 0, last = counts.Length - 1; i < counts.Length; first += counts[i++])
            parts[i] = new WeightMatrix($"{t.Name}[{first}..{first + counts[i]})", t.Type, counts[i], columns, data + first * rowBytes, arena, repack, copy,
                releaseFileBytes: i < last ? null : () => parts[..last].All(m => m.RepackedBytes > 0 || m.InLargePages) && file.ReleasePages(t)) { TensorName = t.Name };
        return parts;
    }

    private static void CheckMultipliable(GgufTensorInfo t)
    {
        if (!MatVec.Supports(t.Type))
            throw new NotSupportedException($"Tensor \"{t.Name}\" has type {GgmlTypes.Name(t.Type)}, which ManagedLM cannot multiply.");
    }

    /// <summary>The activation form this matrix consumes (see <see cref="MatVec.ActivationType"/>).</summary>
    public GgmlType ActivationType => MatVec.ActivationType(Type);

    /// <summary>y[i] = row (rowStart + i) · x, for x prepared as <see cref="ActivationType"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void MultiplyRows(ReadOnlySpan<byte> activation, int rowStart, Span<float> y)
    {
        if (_repacked == null)
            MatVec.Rows(Type, Data, RowBytes, Columns, activation, rowStart, y);
        else
            MatMul.RepackedRows(Type, Repacked, Rows, Columns, activation, activation.Length, 1, rowStart, y.Length, y, y.Length);
    }

    /// <summary>
    /// y[b·yStride + i] = row (rowStart + i) · activation row b, for b in [0, batch), i in [0, rowCount); activation
    /// rows are prepared as <see cref="ActivationType"/>, <paramref name="activationStride"/> bytes apart.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void MultiplyRows(ReadOnlySpan<byte> activations, int activationStride, int batch, int rowStart, int rowCount, Span<float> y, int yStride)
    {
        if (rowStart < 0 || rowCount < 0 || rowStart + rowCount > Rows)
            throw new ArgumentOutOfRangeException(nameof(rowCount), $"Rows [{rowStart}, {rowStart + rowCount}) are outside [0, {Rows}).");
        if (_repacked == null)
            MatMul.Rows(Type, Data, RowBytes, Columns, activations, activationStride, batch, rowStart, rowCount, y, yStride);
        else
            MatMul.RepackedRows(Type, Repacked, Rows, Columns, activations, activationStride, batch, rowStart, rowCount, y, yStride);
    }

    /// <summary>Dequantizes one row (an embedding lookup).</summary>
    public void DequantizeRow(int row, Span<float> dst)
    {
        if ((uint)row >= (uint)Rows)
            throw new ArgumentOutOfRangeException(nameof(row), row, $"Row must be in [0, {Rows}).");
        Dequantize.Row(Type, new ReadOnlySpan<byte>(Data + row * RowBytes, (int)RowBytes), dst[..Columns]);
    }

    public override string ToString() => $"{Name} {GgmlTypes.Name(Type)} [{Rows} x {Columns}]";
}

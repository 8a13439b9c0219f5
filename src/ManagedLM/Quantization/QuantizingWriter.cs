using System.Diagnostics;
using System.Runtime.InteropServices;
using ManagedLM.Gguf;
using ManagedLM.Kernels;

namespace ManagedLM.Quantization;

/// <summary>What a model conversion wrote.</summary>
/// <param name="Tensors">The tensors as written (name, type, shape, offsets).</param>
/// <param name="Parameters">Elements over all tensors.</param>
/// <param name="FileBytes">Size of the GGUF file.</param>
/// <param name="Elapsed">Wall time of the conversion.</param>
public sealed record ConversionSummary(IReadOnlyList<GgufTensorInfo> Tensors, long Parameters, long FileBytes, TimeSpan Elapsed);

/// <summary>Called before each tensor is written: its index (0-based), the tensor count and the tensor as declared.</summary>
public delegate void TensorProgress(int index, int count, GgufTensorInfo tensor);

/// <summary>Fills <paramref name="rows"/> with the F32 values of consecutive rows starting at row <paramref name="firstRow"/>.</summary>
internal delegate void RowSource(long firstRow, Span<float> rows);

/// <summary>
/// A <see cref="GgufWriter"/> whose tensor data arrives as F32 rows, produced and quantized to each tensor's
/// declared type a chunk of rows at a time (at most <see cref="ChunkElements"/> values), so that no whole
/// tensor sits in memory. The next chunk is produced while the current one is quantized on the other threads.
/// </summary>
internal sealed class QuantizingWriter : IDisposable
{
    /// <summary>F32 values per chunk (16 MiB), or one row when a row is longer.</summary>
    public const int ChunkElements = 1 << 22;

    private readonly GgufWriter _writer;
    private readonly int _threads;
    private readonly TensorProgress? _progress;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private float[] _current = [];
    private float[] _next = [];
    private byte[] _quantized = [];
    private int _index;

    public QuantizingWriter(Stream output, IEnumerable<KeyValuePair<string, GgufValue>> metadata, IReadOnlyList<GgufTensorSpec> tensors,
        int threads, TensorProgress? progress)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        _writer = new GgufWriter(output, metadata, tensors, leaveOpen: true);
        _threads = threads;
        _progress = progress;
    }

    /// <summary>The tensor whose data comes next.</summary>
    public GgufTensorInfo Next => _writer.NextTensor ?? throw new InvalidOperationException("All tensors are written.");

    /// <summary>Writes the next tensor from F32 rows; <paramref name="source"/> is called for consecutive chunks in row order.</summary>
    public void WriteRows(RowSource source)
    {
        var tensor = Announce();
        if (!Quantize.Supports(tensor.Type))
            throw new NotSupportedException($"Tensor \"{tensor.Name}\": writing {GgmlTypes.Name(tensor.Type)} is not supported.");
        long columns = tensor.Columns, rows = tensor.Rows;
        if (columns > int.MaxValue)
            throw new NotSupportedException($"Tensor \"{tensor.Name}\" has rows of {columns} elements; at most {int.MaxValue} are supported.");
        long rowsPerChunk = Math.Max(1, ChunkElements / columns);
        int chunkElements = checked((int)(Math.Min(rowsPerChunk, rows) * columns));
        EnsureCapacity(ref _current, chunkElements);
        EnsureCapacity(ref _next, chunkElements);
        EnsureCapacity(ref _quantized, checked((int)GgmlTypes.RowBytes(tensor.Type, chunkElements)));

        Task? pending = rows > 0 ? Produce(source, 0, Math.Min(rowsPerChunk, rows), columns, _next) : null;
        try
        {
            for (long first = 0; first < rows; first += rowsPerChunk)
            {
                long count = Math.Min(rowsPerChunk, rows - first);
                pending!.GetAwaiter().GetResult();
                (_current, _next) = (_next, _current);
                long after = first + count;
                pending = after < rows ? Produce(source, after, Math.Min(rowsPerChunk, rows - after), columns, _next) : null;
                int bytes = QuantizeRows(tensor.Type, _current.AsSpan(0, (int)(count * columns)), (int)columns);
                _writer.WriteTensorChunk(tensor.Name, _quantized.AsSpan(0, bytes));
            }
        }
        catch when (pending is not null)
        {
            // The source may be a mapped file its owner unmaps once this throws: let the reader finish first.
            ((IAsyncResult)pending).AsyncWaitHandle.WaitOne();
            throw;
        }
    }

    /// <summary>Writes the next tensor's data as it is (already of the declared type), in chunks read from <paramref name="data"/>.</summary>
    public unsafe void WriteRaw(byte* data)
    {
        var tensor = Announce();
        for (long done = 0; done < tensor.ByteSize; done += ChunkElements)
            _writer.WriteTensorChunk(tensor.Name, new ReadOnlySpan<byte>(data + done, (int)Math.Min(ChunkElements, tensor.ByteSize - done)));
    }

    /// <summary>Checks that every tensor was written, flushes, and describes the result.</summary>
    public ConversionSummary Finish()
    {
        _writer.Finish();
        return new ConversionSummary(_writer.Tensors, _writer.Tensors.Sum(t => t.ElementCount), _writer.FileSize, _clock.Elapsed);
    }

    public void Dispose() => _writer.Dispose();

    private GgufTensorInfo Announce()
    {
        var tensor = Next;
        _progress?.Invoke(_index++, _writer.Tensors.Count, tensor);
        return tensor;
    }

    private static Task Produce(RowSource source, long first, long count, long columns, float[] buffer) =>
        Task.Run(() => source(first, buffer.AsSpan(0, (int)(count * columns))));

    // Quantizes whole rows, split into contiguous row ranges across the threads; returns the bytes written to _quantized.
    private int QuantizeRows(GgmlType type, ReadOnlySpan<float> values, int columns)
    {
        int rows = values.Length / columns;
        int rowBytes = (int)GgmlTypes.RowBytes(type, columns);
        if (type == GgmlType.F32)
        {
            MemoryMarshal.AsBytes(values).CopyTo(_quantized);
            return values.Length * sizeof(float);
        }
        int parts = Math.Min(_threads, rows);
        if (parts <= 1)
        {
            Quantize.Row(type, values, _quantized);
            return rows * rowBytes;
        }
        float[] src = _current;
        byte[] dst = _quantized;
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, part =>
        {
            int start = (int)((long)rows * part / parts), end = (int)((long)rows * (part + 1) / parts);
            Quantize.Row(type, src.AsSpan(start * columns, (end - start) * columns), dst.AsSpan(start * rowBytes, (end - start) * rowBytes));
        });
        return rows * rowBytes;
    }

    private static void EnsureCapacity<T>(ref T[] buffer, int length)
    {
        if (buffer.Length < length)
            buffer = new T[length];
    }
}

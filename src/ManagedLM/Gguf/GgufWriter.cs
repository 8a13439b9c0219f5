using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Unicode;
using ManagedLM.Kernels;

namespace ManagedLM.Gguf;

/// <summary>
/// Writes a GGUF v3 file as a stream: the metadata and tensor declarations are given up front (the
/// header is written at once), then each tensor's data in declared order, whole or in chunks, so no
/// model has to sit in memory. Layout as llama.cpp and gguf-py write it: header, key/values, tensor
/// infos, zero padding to <c>general.alignment</c> (default 32), then the tensors in order, each padded
/// to the alignment; offsets are relative to the data section. With no tensors the file ends after the
/// tensor infos, unpadded (as gguf-py writes vocab-only files).
/// </summary>
/// <remarks>Invalid declarations and data of the wrong length or order raise <see cref="ArgumentException"/>
/// before anything wrong reaches the stream. Call <see cref="Finish"/> when all data is written.</remarks>
public sealed unsafe partial class GgufWriter : IDisposable
{
    /// <summary>The format version written.</summary>
    public const uint Version = 3;
    /// <summary>Longest tensor name in UTF-8 bytes: llama.cpp rejects names of GGML_MAX_NAME (64) bytes or more.</summary>
    public const int MaxTensorNameBytes = 63;

    private readonly Stream _output;
    private readonly bool _leaveOpen;
    private readonly GgufTensorInfo[] _tensors;
    private readonly Dictionary<string, int> _indexByName;
    private int _next;            // index of the tensor whose data comes next
    private long _writtenOfNext;  // bytes of that tensor written so far
    private bool _finished;
    private bool _disposed;

    /// <summary>Alignment of the data section and of each tensor.</summary>
    public uint Alignment { get; }
    /// <summary>Byte offset of the data section in the file.</summary>
    public long DataOffset { get; }
    /// <summary>Size the finished file will have.</summary>
    public long FileSize { get; }
    /// <summary>The declared tensors with the offsets they are written at.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors => _tensors;
    /// <summary>The tensor whose data is expected next; null when all data is written.</summary>
    public GgufTensorInfo? NextTensor => _next < _tensors.Length ? _tensors[_next] : null;

    /// <summary>Validates the declarations and writes the header, metadata and tensor infos to <paramref name="output"/>.</summary>
    /// <param name="output">A writable stream positioned where the file starts (it need not be seekable).</param>
    /// <param name="metadata">Key/value pairs in the order to write them; <c>general.alignment</c>, if present, must be a uint32 power of two.</param>
    /// <param name="tensors">The tensors, in the order their data will be written.</param>
    /// <param name="leaveOpen">Leave <paramref name="output"/> open on <see cref="Dispose"/>.</param>
    /// <exception cref="ArgumentException">An empty or duplicate key or tensor name, a string that is not valid
    /// UTF-16, a null array element, arrays nested deeper than <see cref="GgufFile.MaxArrayNesting"/>, a bad alignment,
    /// a tensor name over <see cref="MaxTensorNameBytes"/> bytes, more than 4 or negative dimensions, an unknown type,
    /// a row that is not whole blocks, or a size that overflows.</exception>
    public GgufWriter(Stream output, IEnumerable<KeyValuePair<string, GgufValue>> metadata, IEnumerable<GgufTensorSpec> tensors, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(metadata);
        ArgumentNullException.ThrowIfNull(tensors);
        if (!output.CanWrite)
            throw new ArgumentException("The output stream is not writable.", nameof(output));
        var pairs = metadata.ToList();
        var specs = tensors.ToList();

        var header = new ArrayBufferWriter<byte>(4096);
        U32(header, GgufFile.Magic);
        U32(header, Version);
        U64(header, (ulong)specs.Count);
        U64(header, (ulong)pairs.Count);

        var keys = new HashSet<string>(StringComparer.Ordinal);
        uint alignment = GgufFile.DefaultAlignment;
        foreach (var (key, value) in pairs)
        {
            if (string.IsNullOrEmpty(key))
                throw new ArgumentException("A metadata key is null or empty.", nameof(metadata));
            if (!keys.Add(key))
                throw new ArgumentException($"Duplicate metadata key \"{key}\".", nameof(metadata));
            if (value is null)
                throw new ArgumentException($"Metadata \"{key}\" has a null value.", nameof(metadata));
            if (key == GgufFile.AlignmentKey)
            {
                if (value.Value is not uint a || !GgufFile.IsValidAlignment(a))
                    throw new ArgumentException($"{GgufFile.AlignmentKey} must be a uint32 power of two; got {value.Type} {value}.", nameof(metadata));
                alignment = a;
            }
            Str(header, key, key, nameof(metadata));
            U32(header, (uint)value.Type);
            WriteValue(header, value.Value, key);
        }
        Alignment = alignment;

        // Offsets depend only on sizes, so the infos are written in one pass.
        var names = new HashSet<string>(StringComparer.Ordinal);
        var planned = new (string Name, long[] Shape, GgmlType Type, long Offset, long Elements, long Bytes)[specs.Count];
        long offset = 0;
        for (int i = 0; i < specs.Count; i++)
        {
            var spec = specs[i] ?? throw new ArgumentException($"Tensor declaration {i} is null.", nameof(tensors));
            string name = spec.Name;
            if (string.IsNullOrEmpty(name))
                throw new ArgumentException($"Tensor declaration {i} has an empty name.", nameof(tensors));
            if (!names.Add(name))
                throw new ArgumentException($"Duplicate tensor name \"{name}\".", nameof(tensors));
            long[] shape = spec.Shape?.ToArray() ?? throw new ArgumentException($"Tensor \"{name}\" has no shape.", nameof(tensors));
            if (shape.Length > GgufFile.MaxDimensions)
                throw new ArgumentException($"Tensor \"{name}\" has {shape.Length} dimensions; at most {GgufFile.MaxDimensions} are allowed.", nameof(tensors));
            if (GgufTensorInfo.ComputeSize(shape, spec.Type, out long elements, out long bytes) is string error)
                throw new ArgumentException($"Tensor \"{name}\": {error}.", nameof(tensors));
            int nameBytes = Str(header, name, $"tensor {i}", nameof(tensors));
            if (nameBytes > MaxTensorNameBytes)
                throw new ArgumentException($"Tensor name \"{name}\" is {nameBytes} UTF-8 bytes; at most {MaxTensorNameBytes} are allowed.", nameof(tensors));
            U32(header, (uint)shape.Length);
            foreach (long ne in shape)
                U64(header, (ulong)ne);
            U32(header, (uint)spec.Type);
            U64(header, (ulong)offset);
            planned[i] = (name, shape, spec.Type, offset, elements, bytes);
            long padded = GgufFile.AlignUp(bytes, alignment);
            if (padded < bytes || offset > long.MaxValue - padded)
                throw new ArgumentException($"The tensors' total size overflows at \"{name}\".", nameof(tensors));
            offset += padded;
        }

        DataOffset = specs.Count > 0 ? GgufFile.AlignUp(header.WrittenCount, alignment) : header.WrittenCount;
        FileSize = DataOffset + offset;
        _tensors = new GgufTensorInfo[planned.Length];
        _indexByName = new Dictionary<string, int>(planned.Length, StringComparer.Ordinal);
        for (int i = 0; i < planned.Length; i++)
        {
            var p = planned[i];
            _tensors[i] = new GgufTensorInfo(p.Name, p.Shape, p.Type, p.Offset, DataOffset + p.Offset, p.Elements, p.Bytes);
            _indexByName[p.Name] = i;
        }

        _output = output;
        _leaveOpen = leaveOpen;
        _output.Write(header.WrittenSpan);
        WriteZeros(DataOffset - header.WrittenCount);
    }

    /// <summary>Creates (or overwrites) the file at <paramref name="path"/> and writes its header.</summary>
    public static GgufWriter Create(string path, IEnumerable<KeyValuePair<string, GgufValue>> metadata, IEnumerable<GgufTensorSpec> tensors)
    {
        ArgumentNullException.ThrowIfNull(path);
        var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        try
        {
            return new GgufWriter(stream, metadata, tensors);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>Writes all of the data of tensor <paramref name="name"/>, which must be the next in declared order.</summary>
    /// <exception cref="ArgumentException">The tensor is not the next one, or <paramref name="data"/> is not exactly its <see cref="GgufTensorInfo.ByteSize"/>.</exception>
    public void WriteTensor(string name, ReadOnlySpan<byte> data)
    {
        var tensor = Expect(name);
        if (_writtenOfNext > 0)
            throw new ArgumentException($"Tensor \"{name}\" is partly written in chunks ({_writtenOfNext} of {tensor.ByteSize} bytes); finish it with {nameof(WriteTensorChunk)}.", nameof(name));
        if (data.Length != tensor.ByteSize)
            throw new ArgumentException($"Tensor \"{name}\" ({GgmlTypes.Name(tensor.Type)} [{string.Join(", ", tensor.Shape)}]) takes {tensor.ByteSize} bytes; got {data.Length}.", nameof(data));
        Append(tensor, data);
    }

    /// <summary>Writes the next part of tensor <paramref name="name"/>'s data; the tensor is complete when its
    /// <see cref="GgufTensorInfo.ByteSize"/> bytes have arrived, and the next tensor's data may follow.</summary>
    /// <exception cref="ArgumentException">The tensor is not the one being written, or <paramref name="chunk"/> runs past its end.</exception>
    public void WriteTensorChunk(string name, ReadOnlySpan<byte> chunk)
    {
        var tensor = Expect(name);
        if (chunk.Length > tensor.ByteSize - _writtenOfNext)
            throw new ArgumentException($"A chunk of {chunk.Length} bytes runs past the end of tensor \"{name}\" ({_writtenOfNext} of {tensor.ByteSize} bytes written).", nameof(chunk));
        Append(tensor, chunk);
    }

    /// <summary>Checks that every declared tensor's data was written and flushes the stream.</summary>
    /// <exception cref="InvalidOperationException">Some tensor data is missing.</exception>
    public void Finish()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        SkipEmptyTensors();
        if (_next < _tensors.Length)
            throw new InvalidOperationException(
                $"{_tensors.Length - _next} declared tensor(s) have no data yet, starting with \"{_tensors[_next].Name}\" ({_writtenOfNext} of {_tensors[_next].ByteSize} bytes written).");
        _output.Flush();
        _finished = true;
    }

    /// <summary>Closes the stream (unless left open). A writer disposed before <see cref="Finish"/> leaves a truncated file, which readers reject.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        if (!_leaveOpen)
            _output.Dispose();
    }

    /// <summary>
    /// Writes a copy of <paramref name="source"/> to <paramref name="output"/>, optionally with other metadata
    /// and a subset of the tensors. A file laid out as llama.cpp and gguf-py lay them out copies byte for byte.
    /// </summary>
    /// <param name="source">The file to copy.</param>
    /// <param name="output">Where to write the copy (left open).</param>
    /// <param name="metadata">The pairs to write instead of the source's (e.g. an edited <see cref="GgufMetadata.ToKeyValueList"/>).</param>
    /// <param name="includeTensor">Which tensors to keep; all when null.</param>
    public static void Copy(GgufFile source, Stream output,
        IEnumerable<KeyValuePair<string, GgufValue>>? metadata = null, Func<GgufTensorInfo, bool>? includeTensor = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        var tensors = source.Tensors.Where(t => includeTensor?.Invoke(t) ?? true).ToList();
        using var writer = new GgufWriter(output, metadata ?? source.Metadata.ToKeyValueList(), tensors.Select(GgufTensorSpec.From), leaveOpen: true);
        foreach (var t in tensors)
            writer.CopyTensor(source, t);
        writer.Finish();
    }

    // Writes the tensor's data from the source file, 16 MiB at a time.
    private void CopyTensor(GgufFile source, GgufTensorInfo t)
    {
        const int chunkBytes = 1 << 24;
        byte* p = source.GetTensorPointer(t);
        for (long done = 0; done < t.ByteSize; done += chunkBytes)
            WriteTensorChunk(t.Name, new ReadOnlySpan<byte>(p + done, (int)Math.Min(chunkBytes, t.ByteSize - done)));
    }

    /// <summary>A whole GGUF file in memory: for small files such as test fixtures.</summary>
    public static byte[] ToBytes(IEnumerable<KeyValuePair<string, GgufValue>> metadata, IEnumerable<(GgufTensorSpec Tensor, byte[] Data)> tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var list = tensors.ToList();
        using var stream = new MemoryStream();
        using (var writer = new GgufWriter(stream, metadata, list.Select(t => t.Tensor), leaveOpen: true))
        {
            foreach (var (tensor, data) in list)
                writer.WriteTensor(tensor.Name, data ?? throw new ArgumentException($"Tensor \"{tensor.Name}\" has null data.", nameof(tensors)));
            writer.Finish();
        }
        return stream.ToArray();
    }

    private GgufTensorInfo Expect(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_finished)
            throw new InvalidOperationException("The writer is finished.");
        if (_next < _tensors.Length && _tensors[_next].Name == name)
            return _tensors[_next];
        SkipEmptyTensors();
        if (_next < _tensors.Length && _tensors[_next].Name == name)
            return _tensors[_next];
        if (!_indexByName.TryGetValue(name, out int index))
            throw new ArgumentException($"No tensor named \"{name}\" was declared.", nameof(name));
        if (index < _next)
            throw new ArgumentException($"The data of tensor \"{name}\" is already written.", nameof(name));
        throw new ArgumentException(
            $"Tensor \"{name}\" is out of order: the data of \"{_tensors[_next].Name}\" (declared #{_next}) comes first.", nameof(name));
    }

    private void Append(GgufTensorInfo tensor, ReadOnlySpan<byte> data)
    {
        _output.Write(data);
        _writtenOfNext += data.Length;
        if (_writtenOfNext < tensor.ByteSize)
            return;
        WriteZeros(GgufFile.AlignUp(tensor.ByteSize, Alignment) - tensor.ByteSize);
        _next++;
        _writtenOfNext = 0;
    }

    // Zero-byte tensors need no data: writing them is optional.
    private void SkipEmptyTensors()
    {
        while (_next < _tensors.Length && _writtenOfNext == 0 && _tensors[_next].ByteSize == 0)
            _next++;
    }

    private void WriteZeros(long count)
    {
        Span<byte> zeros = stackalloc byte[256];
        zeros.Clear();
        for (; count > 0; count -= zeros.Length)
            _output.Write(zeros[..(int)Math.Min(count, zeros.Length)]);
    }

    private static void WriteValue(ArrayBufferWriter<byte> b, object value, string key)
    {
        switch (value)
        {
            case byte v: b.Write([v]); break;
            case sbyte v: b.Write([(byte)v]); break;
            case ushort v: BinaryPrimitives.WriteUInt16LittleEndian(b.GetSpan(2), v); b.Advance(2); break;
            case short v: BinaryPrimitives.WriteInt16LittleEndian(b.GetSpan(2), v); b.Advance(2); break;
            case uint v: U32(b, v); break;
            case int v: U32(b, (uint)v); break;
            case float v: U32(b, BitConverter.SingleToUInt32Bits(v)); break;
            case bool v: b.Write([v ? (byte)1 : (byte)0]); break;
            case string v: Str(b, v, key, "metadata"); break;
            case ulong v: U64(b, v); break;
            case long v: U64(b, (ulong)v); break;
            case double v: U64(b, BitConverter.DoubleToUInt64Bits(v)); break;
            case GgufArray v: WriteArray(b, v, 1, key); break;
            default: throw new ArgumentException($"Metadata \"{key}\" holds a {value.GetType().Name}, which GGUF cannot store.", "metadata");
        }
    }

    // Element layout as the reader's: fixed-size elements back to back (little-endian host), strings
    // length-prefixed, bools as 0/1 bytes, and an array of arrays as untagged (element type, length, items).
    private static void WriteArray(ArrayBufferWriter<byte> b, GgufArray array, int depth, string key)
    {
        if (depth > GgufFile.MaxArrayNesting)
            throw new ArgumentException($"Metadata \"{key}\" nests arrays deeper than {GgufFile.MaxArrayNesting} levels.", "metadata");
        U32(b, (uint)array.ElementType);
        U64(b, (ulong)array.Count);
        switch (array.Items)
        {
            case byte[] v: b.Write(v); break;
            case sbyte[] v: b.Write(MemoryMarshal.AsBytes(v.AsSpan())); break;
            case ushort[] v: b.Write(MemoryMarshal.AsBytes(v.AsSpan())); break;
            case short[] v: b.Write(MemoryMarshal.AsBytes(v.AsSpan())); break;
            case uint[] v: b.Write(MemoryMarshal.AsBytes(v.AsSpan())); break;
            case int[] v: b.Write(MemoryMarshal.AsBytes(v.AsSpan())); break;
            case float[] v: b.Write(MemoryMarshal.AsBytes(v.AsSpan())); break;
            case ulong[] v: b.Write(MemoryMarshal.AsBytes(v.AsSpan())); break;
            case long[] v: b.Write(MemoryMarshal.AsBytes(v.AsSpan())); break;
            case double[] v: b.Write(MemoryMarshal.AsBytes(v.AsSpan())); break;
            case bool[] v:
                foreach (bool x in v)
                    b.Write([x ? (byte)1 : (byte)0]);
                break;
            case string[] v:
                for (int i = 0; i < v.Length; i++)
                    Str(b, v[i] ?? throw new ArgumentException($"Metadata \"{key}\": string element {i} is null.", "metadata"), key, "metadata");
                break;
            case GgufArray[] v:
                for (int i = 0; i < v.Length; i++)
                    WriteArray(b, v[i] ?? throw new ArgumentException($"Metadata \"{key}\": array element {i} is null.", "metadata"), depth + 1, key);
                break;
            default:
                throw new ArgumentException($"Metadata \"{key}\" holds a {array.Items.GetType().Name}, which GGUF cannot store.", "metadata");
        }
    }

    private static void U32(ArrayBufferWriter<byte> b, uint v)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(b.GetSpan(4), v);
        b.Advance(4);
    }

    private static void U64(ArrayBufferWriter<byte> b, ulong v)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(b.GetSpan(8), v);
        b.Advance(8);
    }

    // Length-prefixed UTF-8; returns the byte length. A lone surrogate cannot be encoded and is rejected.
    private static int Str(ArrayBufferWriter<byte> b, string s, string owner, string paramName)
    {
        int n = Encoding.UTF8.GetByteCount(s); // a lone surrogate counts as U+FFFD here and fails below
        var span = b.GetSpan(8 + n);
        if (Utf8.FromUtf16(s, span[8..], out _, out _, replaceInvalidSequences: false) != OperationStatus.Done)
            throw new ArgumentException($"{owner}: a string is not valid UTF-16 (lone surrogate) and has no UTF-8 form.", paramName);
        BinaryPrimitives.WriteUInt64LittleEndian(span, (ulong)n);
        b.Advance(8 + n);
        return n;
    }
}

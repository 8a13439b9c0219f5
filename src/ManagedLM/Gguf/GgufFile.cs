using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Unicode;
using ManagedLM.Kernels;

namespace ManagedLM.Gguf;

/// <summary>
/// A parsed GGUF v2/v3 file: metadata, tensor infos, and the tensor data, memory-mapped (never copied).
/// Every offset, count and length is checked against the file: a malformed file raises
/// <see cref="GgufFormatException"/> and nothing else. Immutable after opening; tensor spans and
/// pointers stay valid until <see cref="Dispose"/>. One object may also stand for all the files of a
/// split model (<see cref="OpenModel"/>): then each tensor's data is in the file its <see cref="GgufTensorInfo.Split"/> names.
/// </summary>
public sealed unsafe partial class GgufFile : IDisposable
{
    /// <summary>"GGUF" read as a little-endian uint32.</summary>
    public const uint Magic = 0x46554747;
    /// <summary>Alignment of the data section and of each tensor when <c>general.alignment</c> is absent.</summary>
    public const uint DefaultAlignment = 32;
    /// <summary>Most dimensions a tensor may have (GGML_MAX_DIMS).</summary>
    public const int MaxDimensions = 4;
    /// <summary>Deepest nesting of metadata arrays accepted (an array of arrays is depth 2).</summary>
    public const int MaxArrayNesting = 8;
    /// <summary>The metadata key holding the alignment (a uint32 power of two).</summary>
    public const string AlignmentKey = "general.alignment";

    private readonly MappedMemory[] _memories; // one per file: a split model's in split order
    private readonly Dictionary<string, GgufTensorInfo> _tensorsByName;

    /// <summary>Format version: 2 or 3 (they differ only in byte order support, which this reader leaves out).</summary>
    public uint Version { get; }
    /// <summary>Length of the file (or of the parsed memory) in bytes; of all its files together for a split model.</summary>
    public long FileSize { get; }
    /// <summary>Alignment of the data section and of every tensor's offset (of the first file of a split model).</summary>
    public uint Alignment { get; }
    /// <summary>Byte offset of the data section (tensor offsets are relative to it); of the first file of a split model.</summary>
    public long DataOffset { get; }
    /// <summary>The key/value pairs in file order (of the first file of a split model, which holds the model's).</summary>
    public GgufMetadata Metadata { get; }
    /// <summary>The tensor infos in file order (a split model's in split order).</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }
    /// <summary>Byte offset where the tensor infos start (the end of the metadata).</summary>
    internal long TensorInfosOffset { get; }
    /// <summary>Byte offset just past the last tensor info.</summary>
    internal long TensorInfosEnd { get; }
    /// <summary>The file's path (the first file's of a split model), or null when parsed from memory.</summary>
    public string? Path { get; }

    private GgufFile(MappedMemory memory, string? path)
    {
        _memories = [memory];
        FileSize = memory.Length;
        Path = path;
        SplitPaths = Array.AsReadOnly(path is null ? Array.Empty<string>() : [path]);
        try
        {
            var r = new Cursor(memory.Pointer, memory.Length);
            uint magic = r.U32("magic \"GGUF\"");
            if (magic != Magic)
                throw new GgufFormatException(0, $"expected magic \"GGUF\" (0x{Magic:X8}), found 0x{magic:X8}");
            Version = r.U32("version");
            if (Version is not (2 or 3))
                throw new GgufFormatException(4, Version is 0x02000000 or 0x03000000
                    ? $"expected version 2 or 3, found {Version} (a big-endian GGUF file, which is not supported)"
                    : $"expected version 2 or 3, found {Version}");
            ulong rawTensorCount = r.U64("tensor count");
            long kvCount = r.Count("metadata key/value count", 13);

            Metadata = ReadMetadata(ref r, kvCount);
            Alignment = ReadAlignment(Metadata);

            // Bounded once the metadata is read, so that a truncated file is reported where it ends.
            TensorInfosOffset = r.Position;
            long tensorCount = r.CheckCount(rawTensorCount, 8, "tensor count", 24);
            var infos = new List<(string Name, long[] Shape, GgmlType Type, long Offset, long At)>((int)Math.Min(tensorCount, 4096));
            var names = new HashSet<string>(StringComparer.Ordinal);
            for (long i = 0; i < tensorCount; i++)
            {
                long at = r.Position;
                string name = r.Str("tensor name", strict: true);
                if (!names.Add(name))
                    throw new GgufFormatException(at, $"duplicate tensor name \"{name}\"");
                long dimsAt = r.Position;
                uint nDims = r.U32("tensor dimension count");
                if (nDims > MaxDimensions)
                    throw new GgufFormatException(dimsAt, $"tensor \"{name}\": expected at most {MaxDimensions} dimensions, found {nDims}");
                var shape = new long[nDims];
                for (int d = 0; d < nDims; d++)
                {
                    long dimAt = r.Position;
                    ulong ne = r.U64("tensor dimension");
                    if (ne > long.MaxValue)
                        throw new GgufFormatException(dimAt, $"tensor \"{name}\": dimension {d} is {ne}, larger than 2^63-1");
                    shape[d] = (long)ne;
                }
                long typeAt = r.Position;
                uint typeId = r.U32("tensor type");
                if (!GgmlTypes.IsKnown(typeId))
                    throw new GgufFormatException(typeAt, $"tensor \"{name}\": unknown tensor type id {typeId}");
                long offAt = r.Position;
                ulong offset = r.U64("tensor data offset");
                if (offset > long.MaxValue)
                    throw new GgufFormatException(offAt, $"tensor \"{name}\": data offset {offset} is out of range");
                infos.Add((name, shape, (GgmlType)typeId, (long)offset, at));
            }

            TensorInfosEnd = r.Position;
            long dataOffset = AlignUp(r.Position, Alignment);
            DataOffset = dataOffset;
            if (infos.Count > 0 && dataOffset > memory.Length)
                throw new GgufFormatException(memory.Length, $"expected the data section at byte {dataOffset} (after padding to {Alignment}), but the file ends at byte {memory.Length}");
            Tensors = Array.AsReadOnly(BuildTensors(infos, dataOffset, memory.Length, Alignment));
            _tensorsByName = Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        }
        catch
        {
            memory.Dispose();
            throw;
        }
    }

    /// <summary>Opens and memory-maps a GGUF file.</summary>
    /// <exception cref="GgufFormatException">The file is not a valid GGUF v2/v3 file.</exception>
    public static GgufFile Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return new GgufFile(MappedMemory.Map(path), path);
    }

    /// <summary>Opens a GGUF file: a <c>.gguf</c> is memory-mapped, a gzip'd <c>.gz</c> is unpacked into memory.</summary>
    /// <exception cref="GgufFormatException">The (unpacked) file is not a valid GGUF v2/v3 file.</exception>
    /// <exception cref="InvalidDataException">A <c>.gz</c> file is not valid gzip.</exception>
    public static GgufFile OpenOrUnzip(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase))
            return Open(path);
        using var gz = new System.IO.Compression.GZipStream(File.OpenRead(path), System.IO.Compression.CompressionMode.Decompress);
        using var bytes = new MemoryStream();
        gz.CopyTo(bytes);
        return Parse(bytes.GetBuffer().AsMemory(0, (int)bytes.Length));
    }

    /// <summary>Parses GGUF bytes held in memory (pinned, not copied, for the lifetime of the returned object).</summary>
    /// <exception cref="GgufFormatException">The bytes are not a valid GGUF v2/v3 file.</exception>
    public static GgufFile Parse(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        return Parse(bytes.AsMemory());
    }

    /// <summary>Parses GGUF bytes held in memory (pinned, not copied, for the lifetime of the returned object).</summary>
    /// <exception cref="GgufFormatException">The bytes are not a valid GGUF v2/v3 file.</exception>
    public static GgufFile Parse(ReadOnlyMemory<byte> bytes) => new(MappedMemory.Pin(bytes), null);

    /// <summary>The tensor named <paramref name="name"/>, or null.</summary>
    public GgufTensorInfo? FindTensor(string name) => _tensorsByName.GetValueOrDefault(name);

    /// <summary>The tensor named <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">No tensor has that name.</exception>
    public GgufTensorInfo GetTensor(string name) =>
        _tensorsByName.TryGetValue(name, out var t) ? t
        : throw new KeyNotFoundException($"The model file has no tensor named \"{name}\".");

    /// <summary>Pointer to a tensor's first byte; valid until this file is disposed.</summary>
    /// <exception cref="ArgumentException">The tensor info is not one of this file's.</exception>
    public byte* GetTensorPointer(GgufTensorInfo tensor) => MemoryOf(tensor).Pointer + tensor.FileOffset;

    // The mapped file holding the tensor's data, once the tensor is known to be one of this file's.
    private MappedMemory MemoryOf(GgufTensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (!_tensorsByName.TryGetValue(tensor.Name, out var own) || !ReferenceEquals(own, tensor))
            throw new ArgumentException($"Tensor \"{tensor.Name}\" does not belong to this file.", nameof(tensor));
        var memory = _memories[tensor.Split];
        ObjectDisposedException.ThrowIf(memory.IsDisposed, this);
        return memory;
    }

    /// <summary>A tensor's bytes (tensors of 2 GiB or more: use <see cref="GetTensorPointer"/>).</summary>
    public ReadOnlySpan<byte> GetTensorData(GgufTensorInfo tensor)
    {
        if (tensor.ByteSize > int.MaxValue)
            throw new InvalidOperationException($"Tensor \"{tensor.Name}\" is {tensor.ByteSize} bytes, too large for a span; use GetTensorPointer.");
        return new ReadOnlySpan<byte>(GetTensorPointer(tensor), (int)tensor.ByteSize);
    }

    /// <summary>The whole file's bytes (files of 2 GiB or more are not representable as a span); the first file's of a split model.</summary>
    internal ReadOnlySpan<byte> GetFileBytes(long offset, int length)
    {
        var memory = _memories[0];
        ObjectDisposedException.ThrowIf(memory.IsDisposed, this);
        if (offset < 0 || length < 0 || offset + length > memory.Length)
            throw new ArgumentOutOfRangeException(nameof(offset));
        return new ReadOnlySpan<byte>(memory.Pointer + offset, length);
    }

    /// <summary>
    /// Gives back the resident pages wholly inside <paramref name="tensor"/>'s bytes, for a tensor that is no longer read
    /// (a repacked copy replaced it): the mapping stays valid, and a later read faults them in from the file again. Does
    /// nothing for bytes parsed from memory (they are the only copy) or where the OS offers no such hint.
    /// </summary>
    /// <returns>False for bytes parsed from memory.</returns>
    internal bool ReleasePages(GgufTensorInfo tensor) => MemoryOf(tensor).ReleasePages(tensor.FileOffset, tensor.ByteSize);

    /// <summary>Whether the bytes are a mapping of a file (whose pages the OS can drop and read again), not bytes parsed from memory.</summary>
    internal bool IsFileMapping => Array.TrueForAll(_memories, m => m.IsFileMapping);

    /// <summary>Unmaps (or unpins) the bytes (of every file of a split model); tensor spans and pointers become invalid.</summary>
    public void Dispose()
    {
        foreach (var memory in _memories)
            memory.Dispose();
    }

    internal static long AlignUp(long value, long alignment) => (value + alignment - 1) / alignment * alignment;

    internal static bool IsValidAlignment(uint a) => a != 0 && (a & (a - 1)) == 0;

    private static GgufMetadata ReadMetadata(ref Cursor r, long kvCount)
    {
        var entries = new List<GgufMetadataEntry>((int)Math.Min(kvCount, 4096));
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (long i = 0; i < kvCount; i++)
        {
            long at = r.Position;
            string key = r.Str("metadata key", strict: true);
            if (!seen.Add(key))
                throw new GgufFormatException(at, $"duplicate metadata key \"{key}\"");
            long valueAt = r.Position;
            var type = ReadValueType(ref r, "metadata value type");
            object value = ReadValue(ref r, type, 0);
            entries.Add(new GgufMetadataEntry(key, new GgufValue(type, value), valueAt));
        }
        return new GgufMetadata(entries, r.Position);
    }

    private static GgufValueType ReadValueType(ref Cursor r, string what)
    {
        long at = r.Position;
        uint t = r.U32(what);
        if (t > (uint)GgufValueType.Float64)
            throw new GgufFormatException(at, $"expected {what} 0..12, found {t}");
        return (GgufValueType)t;
    }

    private static object ReadValue(ref Cursor r, GgufValueType type, int depth) => type switch
    {
        GgufValueType.UInt8 => r.U8("uint8 value"),
        GgufValueType.Int8 => (sbyte)r.U8("int8 value"),
        GgufValueType.UInt16 => r.U16("uint16 value"),
        GgufValueType.Int16 => (short)r.U16("int16 value"),
        GgufValueType.UInt32 => r.U32("uint32 value"),
        GgufValueType.Int32 => (int)r.U32("int32 value"),
        GgufValueType.Float32 => BitConverter.UInt32BitsToSingle(r.U32("float32 value")),
        GgufValueType.Bool => r.Bool(),
        GgufValueType.String => r.Str("string value", strict: false),
        GgufValueType.Array => ReadArray(ref r, depth + 1),
        GgufValueType.UInt64 => r.U64("uint64 value"),
        GgufValueType.Int64 => (long)r.U64("int64 value"),
        GgufValueType.Float64 => BitConverter.UInt64BitsToDouble(r.U64("float64 value")),
        _ => throw new GgufFormatException(r.Position, $"unknown value type {(uint)type}"),
    };

    private static GgufArray ReadArray(ref Cursor r, int depth)
    {
        long at = r.Position;
        if (depth > MaxArrayNesting)
            throw new GgufFormatException(at, $"arrays nested deeper than {MaxArrayNesting} levels");
        var elementType = ReadValueType(ref r, "array element type");
        int count = (int)r.Count("array length", MinEncodedSize(elementType), int.MaxValue / MinEncodedSize(elementType));
        switch (elementType)
        {
            case GgufValueType.UInt8: return GgufArray.Wrap(elementType, r.Bytes(count, "uint8 array").ToArray());
            case GgufValueType.Int8: return GgufArray.Wrap(elementType, MemoryMarshal.Cast<byte, sbyte>(r.Bytes(count, "int8 array")).ToArray());
            case GgufValueType.UInt16: return GgufArray.Wrap(elementType, MemoryMarshal.Cast<byte, ushort>(r.Bytes(count * 2, "uint16 array")).ToArray());
            case GgufValueType.Int16: return GgufArray.Wrap(elementType, MemoryMarshal.Cast<byte, short>(r.Bytes(count * 2, "int16 array")).ToArray());
            case GgufValueType.UInt32: return GgufArray.Wrap(elementType, MemoryMarshal.Cast<byte, uint>(r.Bytes(count * 4, "uint32 array")).ToArray());
            case GgufValueType.Int32: return GgufArray.Wrap(elementType, MemoryMarshal.Cast<byte, int>(r.Bytes(count * 4, "int32 array")).ToArray());
            case GgufValueType.Float32: return GgufArray.Wrap(elementType, MemoryMarshal.Cast<byte, float>(r.Bytes(count * 4, "float32 array")).ToArray());
            case GgufValueType.UInt64: return GgufArray.Wrap(elementType, MemoryMarshal.Cast<byte, ulong>(r.Bytes(count * 8, "uint64 array")).ToArray());
            case GgufValueType.Int64: return GgufArray.Wrap(elementType, MemoryMarshal.Cast<byte, long>(r.Bytes(count * 8, "int64 array")).ToArray());
            case GgufValueType.Float64: return GgufArray.Wrap(elementType, MemoryMarshal.Cast<byte, double>(r.Bytes(count * 8, "float64 array")).ToArray());
            case GgufValueType.Bool:
            {
                var items = new bool[count];
                for (int i = 0; i < count; i++) items[i] = r.Bool();
                return GgufArray.Wrap(elementType, items);
            }
            case GgufValueType.String:
            {
                var items = new string[count];
                for (int i = 0; i < count; i++) items[i] = r.Str("string array element", strict: false);
                return GgufArray.Wrap(elementType, items);
            }
            default:
            {
                // Each element of an array of arrays is itself (element type, length, items), untagged.
                var items = new GgufArray[count];
                for (int i = 0; i < count; i++)
                    items[i] = ReadArray(ref r, depth + 1);
                return GgufArray.Wrap(elementType, items);
            }
        }
    }

    // Smallest number of bytes one element can take: bounds array lengths by what the file can hold.
    private static int MinEncodedSize(GgufValueType t) => t switch
    {
        GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
        GgufValueType.UInt16 or GgufValueType.Int16 => 2,
        GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
        GgufValueType.String or GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 => 8,
        _ => 12, // nested array: type + length
    };

    private static uint ReadAlignment(GgufMetadata metadata)
    {
        var entry = metadata.FindEntry(AlignmentKey);
        if (entry is null)
            return DefaultAlignment;
        if (entry.Value.Value is not uint a)
            throw new GgufFormatException(entry.Offset, $"expected {AlignmentKey} to be a uint32, found {entry.Value.Type}");
        if (!IsValidAlignment(a))
            throw new GgufFormatException(entry.Offset, $"expected {AlignmentKey} to be a power of two, found {a}");
        return a;
    }

    private static GgufTensorInfo[] BuildTensors(
        List<(string Name, long[] Shape, GgmlType Type, long Offset, long At)> infos,
        long dataOffset, long fileSize, uint alignment)
    {
        var tensors = new GgufTensorInfo[infos.Count];
        for (int i = 0; i < infos.Count; i++)
        {
            var (name, shape, type, offset, at) = infos[i];
            if (GgufTensorInfo.ComputeSize(shape, type, out long elements, out long bytes) is string error)
                throw new GgufFormatException(at, $"tensor \"{name}\": {error}");
            if (offset % alignment != 0)
                throw new GgufFormatException(at, $"tensor \"{name}\": data offset {offset} is not a multiple of the alignment {alignment}");
            if (offset > fileSize - dataOffset || bytes > fileSize - dataOffset - offset)
                throw new GgufFormatException(at, $"tensor \"{name}\": data [{offset}, {offset}+{bytes}) lies outside the data section of {Math.Max(0, fileSize - dataOffset)} bytes (file truncated?)");
            tensors[i] = new GgufTensorInfo(name, shape, type, offset, dataOffset + offset, elements, bytes, split: 0, infoOffset: at);
        }

        var byOffset = tensors.Where(t => t.ByteSize > 0).OrderBy(t => t.Offset).ToArray();
        for (int i = 1; i < byOffset.Length; i++)
        {
            var prev = byOffset[i - 1];
            if (byOffset[i].Offset < prev.Offset + prev.ByteSize)
                throw new GgufFormatException(byOffset[i].FileOffset, $"tensor \"{byOffset[i].Name}\" overlaps tensor \"{prev.Name}\"");
        }
        return tensors;
    }

    /// <summary>Bounds-checked little-endian reader over the mapped bytes.</summary>
    private ref struct Cursor
    {
        private readonly byte* _base;
        private readonly long _length;
        public long Position;

        public Cursor(byte* basePtr, long length)
        {
            _base = basePtr;
            _length = length;
            Position = 0;
        }

        private byte* Take(long n, string what)
        {
            if (n < 0 || n > _length - Position)
                throw new GgufFormatException(Position, $"expected {what} ({n} bytes), but the file ends at byte {_length}");
            byte* p = _base + Position;
            Position += n;
            return p;
        }

        public byte U8(string what) => *Take(1, what);
        public ushort U16(string what) => System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(new ReadOnlySpan<byte>(Take(2, what), 2));
        public uint U32(string what) => System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(new ReadOnlySpan<byte>(Take(4, what), 4));
        public ulong U64(string what) => System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(Take(8, what), 8));

        public bool Bool()
        {
            long at = Position;
            byte b = U8("bool value");
            if (b > 1)
                throw new GgufFormatException(at, $"expected a bool (0 or 1), found {b}");
            return b == 1;
        }

        public ReadOnlySpan<byte> Bytes(int n, string what) => new(Take(n, what), n);

        /// <summary>A count of items each taking at least <paramref name="minItemBytes"/>: bounded by the bytes left.</summary>
        public long Count(string what, int minItemBytes, long max = long.MaxValue)
        {
            long at = Position;
            return CheckCount(U64(what), at, what, minItemBytes, max);
        }

        /// <summary>Checks a count read at <paramref name="at"/> against the bytes left from the current position.</summary>
        public long CheckCount(ulong n, long at, string what, int minItemBytes, long max = long.MaxValue)
        {
            ulong fits = (ulong)((_length - Position) / minItemBytes);
            if (n > fits || n > (ulong)max)
                throw new GgufFormatException(at, $"{what} {n} is larger than the rest of the file can hold (at most {Math.Min(fits, (ulong)max)}): a corrupt count or a truncated file");
            return (long)n;
        }

        public string Str(string what, bool strict)
        {
            long at = Position;
            if (_length - Position < 8) // checked here so that the message is built only on failure
                throw new GgufFormatException(at, $"expected {what} length (8 bytes), but the file ends at byte {_length}");
            ulong len = U64(what);
            if (len > (ulong)(_length - Position) || len > int.MaxValue)
                throw new GgufFormatException(at, $"{what} length {len} runs past the end of the file ({_length - Position} bytes left)");
            var bytes = new ReadOnlySpan<byte>(Take((long)len, what), (int)len);
            if (strict && !Utf8.IsValid(bytes))
                throw new GgufFormatException(at + 8, $"{what} is not valid UTF-8");
            return Encoding.UTF8.GetString(bytes);
        }
    }

    /// <summary>The file's bytes: a read-only memory map, or a pinned array.</summary>
    private sealed class MappedMemory : IDisposable
    {
        private readonly MemoryMappedFile? _file;
        private readonly MemoryMappedViewAccessor? _view;
        private readonly System.Buffers.MemoryHandle _pin;
        [ThreadSafeInstance("the one change after load: set once by Dispose with Interlocked.Exchange, read with Volatile.Read")]
        private int _disposed;

        private MappedMemory(byte* pointer, long length, MemoryMappedFile? file, MemoryMappedViewAccessor? view, System.Buffers.MemoryHandle pin)
        {
            Pointer = pointer;
            Length = length;
            _file = file;
            _view = view;
            _pin = pin;
        }

        public byte* Pointer { get; }
        public long Length { get; }
        public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

        public bool IsFileMapping => _view is not null;

        public static MappedMemory Map(string path)
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            long length = fs.Length;
            if (length == 0)
                return new MappedMemory(null, 0, null, null, default); // the cursor reports the truncation
            MemoryMappedFile? file = null;
            MemoryMappedViewAccessor? view = null;
            bool acquired = false;
            try
            {
                file = MemoryMappedFile.CreateFromFile(fs, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
                view = file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
                byte* p = null;
                view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
                acquired = true;
                return new MappedMemory(p + view.PointerOffset, length, file, view, default);
            }
            catch
            {
                if (acquired)
                    view!.SafeMemoryMappedViewHandle.ReleasePointer();
                view?.Dispose();
                file?.Dispose();
                throw;
            }
        }

        public static MappedMemory Pin(ReadOnlyMemory<byte> bytes)
        {
            var pin = bytes.Pin();
            return new MappedMemory((byte*)pin.Pointer, bytes.Length, null, null, pin);
        }

        // Only a file's mapping: its pages are backed by the file; a pinned buffer's would be zeroed.
        public bool ReleasePages(long offset, long length)
        {
            if (_view is null)
                return false;
            if (offset < 0 || length <= 0 || offset > Length - length)
                return true;
            long page = Environment.SystemPageSize;
            nint start = (nint)Pointer + (nint)offset, end = start + (nint)length;
            nint first = (start + (nint)page - 1) & ~((nint)page - 1), last = end & ~((nint)page - 1);
            if (last > first)
                MemoryPages.Release(first, last - first);
            return true;
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0)
                return;
            if (_view is not null)
            {
                _view.SafeMemoryMappedViewHandle.ReleasePointer();
                _view.Dispose();
            }
            _file?.Dispose();
            _pin.Dispose(); // on a copy of the readonly handle: that frees the pin, and _disposed keeps this to once
        }
    }
}

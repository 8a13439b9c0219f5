using System.Buffers.Binary;
using System.Text;
using ManagedLM.Gguf;

namespace ManagedLM.Fuzz;

/// <summary>What an encoded field of a GGUF file holds: the mutators pick fields by meaning.</summary>
internal enum FieldKind
{
    Magic, Version, TensorCount, KvCount,
    KeyLength, ValueType, Scalar, StringLength, ArrayElementType, ArrayCount,
    TensorNameLength, TensorDimCount, TensorDim, TensorType, TensorOffset,
}

/// <summary>One encoded field: where it lies in the serialized bytes and how long it is.</summary>
internal readonly record struct Field(FieldKind Kind, int Offset, int Size);

/// <summary>One metadata pair: its key and its value encoded exactly as in the file (type id, then the value).</summary>
internal sealed record RawEntry(byte[] Key, byte[] TypedValue)
{
    public string KeyText => Encoding.UTF8.GetString(Key);
    public GgufValueType Type => (GgufValueType)BinaryPrimitives.ReadUInt32LittleEndian(TypedValue);
}

/// <summary>One tensor info, every field free to hold any value.</summary>
internal sealed record RawTensor(byte[] Name, ulong[] Dims, uint Type, ulong Offset)
{
    public string NameText => Encoding.UTF8.GetString(Name);
}

/// <summary>
/// A GGUF file taken apart into header, metadata pairs, tensor infos and the data section, so that a mutator can edit
/// it by meaning (duplicate a key, set a value of any type, move a tensor) and write it back; serializing records where
/// every field lands, for byte-level mutators. The data section keeps its bytes: tensor offsets stay relative to it.
/// </summary>
internal sealed class GgufImage
{
    public uint Magic = GgufFile.Magic;
    public uint Version = 3;
    public ulong? TensorCountOverride, KvCountOverride;
    public List<RawEntry> Entries = [];
    public List<RawTensor> Tensors = [];
    public byte[] Data = [];

    /// <summary>Takes apart a valid file (a seed): GgufFile checks it, then a plain walk records each field's bytes.</summary>
    public static GgufImage Parse(byte[] bytes)
    {
        using var file = GgufFile.Parse(bytes);
        var image = new GgufImage { Version = file.Version };
        int p = 24;
        for (int i = 0; i < file.Metadata.Count; i++)
        {
            int keyLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(p));
            byte[] key = bytes.AsSpan(p + 8, keyLength).ToArray();
            p += 8 + keyLength;
            int start = p;
            p += 4;
            SkipValue(bytes, ref p, (GgufValueType)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(start)));
            image.Entries.Add(new RawEntry(key, bytes.AsSpan(start, p - start).ToArray()));
        }
        foreach (var t in file.Tensors)
            image.Tensors.Add(new RawTensor(Encoding.UTF8.GetBytes(t.Name), t.Shape.Select(d => (ulong)d).ToArray(), (uint)t.Type, (ulong)t.Offset));
        image.Data = bytes.AsSpan((int)file.DataOffset).ToArray();
        return image;
    }

    private static void SkipValue(byte[] b, ref int p, GgufValueType type)
    {
        switch (type)
        {
            case GgufValueType.String:
                p += 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(p));
                break;
            case GgufValueType.Array:
                var element = (GgufValueType)BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(p));
                long count = (long)BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(p + 4));
                p += 12;
                for (long i = 0; i < count; i++)
                    SkipValue(b, ref p, element);
                break;
            default:
                p += ScalarSize(type);
                break;
        }
    }

    public static int ScalarSize(GgufValueType type) => type switch
    {
        GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
        GgufValueType.UInt16 or GgufValueType.Int16 => 2,
        GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
        _ => 8,
    };

    public GgufImage Clone() => new()
    {
        Magic = Magic, Version = Version, TensorCountOverride = TensorCountOverride, KvCountOverride = KvCountOverride,
        Entries = [.. Entries], Tensors = [.. Tensors], Data = Data,
    };

    public int IndexOf(string key) => Entries.FindIndex(e => e.KeyText == key);

    public RawEntry? Find(string key) => IndexOf(key) is int i and >= 0 ? Entries[i] : null;

    /// <summary>Sets (or appends) <paramref name="key"/> to an already encoded typed value.</summary>
    public void Set(string key, byte[] typedValue)
    {
        var entry = new RawEntry(Encoding.UTF8.GetBytes(key), typedValue);
        int i = IndexOf(key);
        if (i >= 0)
            Entries[i] = entry;
        else
            Entries.Add(entry);
    }

    public void Set(string key, GgufValue value) => Set(key, Encode(value));

    /// <summary>The architecture the file names (general.architecture), or "llama".</summary>
    public string Architecture => Find("general.architecture") is { Type: GgufValueType.String } e ? DecodeString(e.TypedValue) : "llama";

    public static string DecodeString(byte[] typedValue) => Encoding.UTF8.GetString(typedValue.AsSpan(12));

    /// <summary>Alignment from general.alignment when it is a uint32 power of two, else 32 (what the parser will use).</summary>
    public uint Alignment
    {
        get
        {
            if (Find(GgufFile.AlignmentKey) is { Type: GgufValueType.UInt32 } e)
            {
                uint a = BinaryPrimitives.ReadUInt32LittleEndian(e.TypedValue.AsSpan(4));
                if (a != 0 && (a & (a - 1)) == 0)
                    return a;
            }
            return GgufFile.DefaultAlignment;
        }
    }

    /// <summary>The file's bytes; <paramref name="fields"/> gets every header, metadata and tensor-info field.</summary>
    public byte[] Serialize(List<Field>? fields = null)
    {
        var w = new Writer(fields);
        w.U32(Magic, FieldKind.Magic);
        w.U32(Version, FieldKind.Version);
        w.U64(TensorCountOverride ?? (ulong)Tensors.Count, FieldKind.TensorCount);
        w.U64(KvCountOverride ?? (ulong)Entries.Count, FieldKind.KvCount);
        foreach (var e in Entries)
        {
            w.U64((ulong)e.Key.Length, FieldKind.KeyLength);
            w.Raw(e.Key);
            int at = w.Length;
            w.Raw(e.TypedValue);
            if (fields is not null)
                MapValue(e.TypedValue, at, fields);
        }
        foreach (var t in Tensors)
        {
            w.U64((ulong)t.Name.Length, FieldKind.TensorNameLength);
            w.Raw(t.Name);
            w.U32((uint)t.Dims.Length, FieldKind.TensorDimCount);
            foreach (ulong d in t.Dims)
                w.U64(d, FieldKind.TensorDim);
            w.U32(t.Type, FieldKind.TensorType);
            w.U64(t.Offset, FieldKind.TensorOffset);
        }
        // A huge declared alignment (2^31 is a power of two) is not padded to: the data then starts before the reader expects it.
        uint alignment = Alignment;
        while (alignment <= 1 << 16 && w.Length % alignment != 0)
            w.Raw([0]);
        w.Raw(Data);
        return w.ToArray();
    }

    // Records the fields of an encoded value (type id at `at`); stops quietly at anything it cannot follow.
    private static void MapValue(byte[] v, int at, List<Field> fields)
    {
        if (v.Length < 4)
            return;
        fields.Add(new Field(FieldKind.ValueType, at, 4));
        int p = 4;
        MapPayload(v, ref p, (GgufValueType)BinaryPrimitives.ReadUInt32LittleEndian(v), at, fields, 0);
    }

    private static bool MapPayload(byte[] v, ref int p, GgufValueType type, int at, List<Field> fields, int depth)
    {
        switch (type)
        {
            case GgufValueType.String:
                if (v.Length - p < 8)
                    return false;
                ulong length = BinaryPrimitives.ReadUInt64LittleEndian(v.AsSpan(p));
                fields.Add(new Field(FieldKind.StringLength, at + p, 8));
                if (length > (ulong)(v.Length - p - 8))
                    return false;
                p += 8 + (int)length;
                return true;
            case GgufValueType.Array:
                if (v.Length - p < 12 || depth > 2)
                    return false;
                var element = (GgufValueType)BinaryPrimitives.ReadUInt32LittleEndian(v.AsSpan(p));
                ulong count = BinaryPrimitives.ReadUInt64LittleEndian(v.AsSpan(p + 4));
                fields.Add(new Field(FieldKind.ArrayElementType, at + p, 4));
                fields.Add(new Field(FieldKind.ArrayCount, at + p + 4, 8));
                p += 12;
                if (element is not (GgufValueType.String or GgufValueType.Array))
                {
                    p += (int)Math.Min(count * (ulong)ScalarSize(element), (ulong)(v.Length - p));
                    return true;
                }
                for (ulong i = 0; i < count && i < 64; i++) // the first strings of a long array are enough to pick from
                {
                    if (!MapPayload(v, ref p, element, at, fields, depth + 1))
                        return false;
                }
                return true;
            case > GgufValueType.Float64:
                return false;
            default:
                fields.Add(new Field(FieldKind.Scalar, at + p, ScalarSize(type)));
                p += ScalarSize(type);
                return true;
        }
    }

    /// <summary>A value encoded as in a file: its type id, then the value.</summary>
    public static byte[] Encode(GgufValue value)
    {
        var w = new Writer(null);
        w.U32((uint)value.Type, FieldKind.ValueType);
        EncodePayload(w, value.Type, value.Value);
        return w.ToArray();
    }

    private static void EncodePayload(Writer w, GgufValueType type, object value)
    {
        switch (value)
        {
            case string s:
                var utf8 = Encoding.UTF8.GetBytes(s);
                w.U64((ulong)utf8.Length, FieldKind.StringLength);
                w.Raw(utf8);
                break;
            case GgufArray a:
                w.U32((uint)a.ElementType, FieldKind.ArrayElementType);
                w.U64((ulong)a.Count, FieldKind.ArrayCount);
                foreach (object item in Items(a))
                    EncodePayload(w, a.ElementType, item);
                break;
            default:
                Span<byte> b = stackalloc byte[8];
                int n = ScalarSize(type);
                ulong bits = value switch
                {
                    byte v => v, sbyte v => (byte)v, ushort v => v, short v => (ushort)v,
                    uint v => v, int v => (uint)v, ulong v => v, long v => (ulong)v,
                    float v => BitConverter.SingleToUInt32Bits(v), double v => BitConverter.DoubleToUInt64Bits(v),
                    bool v => v ? 1UL : 0UL,
                    _ => throw new ArgumentException($"Cannot encode a {value.GetType().Name}."),
                };
                BinaryPrimitives.WriteUInt64LittleEndian(b, bits);
                w.Raw(b[..n]);
                break;
        }
    }

    private static IEnumerable<object> Items(GgufArray a) => a.ElementType switch
    {
        GgufValueType.UInt8 => a.AsSpan<byte>().ToArray().Cast<object>(),
        GgufValueType.Int8 => a.AsSpan<sbyte>().ToArray().Cast<object>(),
        GgufValueType.UInt16 => a.AsSpan<ushort>().ToArray().Cast<object>(),
        GgufValueType.Int16 => a.AsSpan<short>().ToArray().Cast<object>(),
        GgufValueType.UInt32 => a.AsSpan<uint>().ToArray().Cast<object>(),
        GgufValueType.Int32 => a.AsSpan<int>().ToArray().Cast<object>(),
        GgufValueType.Float32 => a.AsSpan<float>().ToArray().Cast<object>(),
        GgufValueType.Bool => a.AsSpan<bool>().ToArray().Cast<object>(),
        GgufValueType.String => a.AsSpan<string>().ToArray(),
        GgufValueType.Array => a.AsSpan<GgufArray>().ToArray(),
        GgufValueType.UInt64 => a.AsSpan<ulong>().ToArray().Cast<object>(),
        GgufValueType.Int64 => a.AsSpan<long>().ToArray().Cast<object>(),
        _ => a.AsSpan<double>().ToArray().Cast<object>(),
    };

    private sealed class Writer(List<Field>? fields)
    {
        private readonly MemoryStream _bytes = new();

        public int Length => (int)_bytes.Length;

        public void Raw(ReadOnlySpan<byte> bytes) => _bytes.Write(bytes);

        public void U32(uint v, FieldKind kind)
        {
            fields?.Add(new Field(kind, Length, 4));
            Span<byte> b = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(b, v);
            Raw(b);
        }

        public void U64(ulong v, FieldKind kind)
        {
            fields?.Add(new Field(kind, Length, 8));
            Span<byte> b = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(b, v);
            Raw(b);
        }

        public byte[] ToArray() => _bytes.ToArray();
    }
}

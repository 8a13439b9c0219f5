using System.Buffers.Binary;
using System.Text;
using ManagedLM.Gguf;
using ManagedLM.Kernels;

namespace ManagedLM.Tests.Gguf;

/// <summary>Writes GGUF bytes field by field with no validation, to build malformed files.</summary>
internal sealed class RawGguf
{
    private readonly List<byte> _bytes = [];

    public long Position => _bytes.Count;

    public RawGguf U8(byte v)
    {
        _bytes.Add(v);
        return this;
    }

    public RawGguf U32(uint v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        _bytes.AddRange(b);
        return this;
    }

    public RawGguf U64(ulong v)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, v);
        _bytes.AddRange(b);
        return this;
    }

    public RawGguf Bytes(params byte[] bytes)
    {
        _bytes.AddRange(bytes);
        return this;
    }

    /// <summary>A length-prefixed string.</summary>
    public RawGguf Str(string s) => Str(Encoding.UTF8.GetBytes(s));

    public RawGguf Str(byte[] utf8) => U64((ulong)utf8.Length).Bytes(utf8);

    /// <summary>Magic, version, tensor count, key/value count.</summary>
    public RawGguf Header(ulong tensors, ulong kvs, uint version = 3) => U32(GgufFile.Magic).U32(version).U64(tensors).U64(kvs);

    /// <summary>A key and its value type; the value follows.</summary>
    public RawGguf Key(string key, GgufValueType type) => Str(key).U32((uint)type);

    /// <summary>An array header: element type and length; the items follow.</summary>
    public RawGguf ArrayOf(GgufValueType elementType, ulong count) => U32((uint)elementType).U64(count);

    public RawGguf TensorInfo(string name, GgmlType type, ulong offset, params ulong[] dims)
    {
        Str(name).U32((uint)dims.Length);
        foreach (ulong d in dims)
            U64(d);
        return U32((uint)type).U64(offset);
    }

    public RawGguf PadTo(int alignment)
    {
        while (_bytes.Count % alignment != 0)
            _bytes.Add(0);
        return this;
    }

    public RawGguf Zeros(int count)
    {
        _bytes.AddRange(new byte[count]);
        return this;
    }

    public byte[] ToArray() => [.. _bytes];
}

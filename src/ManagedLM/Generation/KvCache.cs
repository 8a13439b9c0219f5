using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ManagedLM.Kernels;

namespace ManagedLM.Generation;

/// <summary>How a <see cref="KvCache"/> stores keys and values.</summary>
public enum KvCacheType
{
    /// <summary>Half precision (llama.cpp's default): half the memory, logits as llama.cpp computes them.</summary>
    F16,
    /// <summary>Single precision.</summary>
    F32,
}

/// <summary>
/// One sequence's attention cache: for every layer, the key and value rows of every position so far.
/// Grows by doubling up to <see cref="MaxLength"/>, so a short request on a long-context model does not
/// pay for the whole context up front. Owned by one generator; not thread-safe.
/// </summary>
public sealed class KvCache
{
    // Per layer: [capacity × RowLength], as float (F32) or F16 bits (F16); the other pair is null.
    private readonly float[][]? _keys32, _values32;
    private readonly ushort[][]? _keys16, _values16;

    public KvCacheType Type { get; }
    public int LayerCount { get; }
    /// <summary>Values per cached row (n_kv_head · head_dim).</summary>
    public int RowLength { get; }
    /// <summary>Most positions this cache can hold (the generator's context length).</summary>
    public int MaxLength { get; }
    /// <summary>Positions currently allocated.</summary>
    public int Capacity { get; private set; }

    public KvCache(KvCacheType type, int layerCount, int rowLength, int maxLength, int initialCapacity = 256)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(layerCount);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rowLength);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxLength);
        Type = type;
        LayerCount = layerCount;
        RowLength = rowLength;
        MaxLength = maxLength;
        Capacity = Math.Clamp(initialCapacity, 1, maxLength);
        if (type == KvCacheType.F32)
        {
            _keys32 = Allocate<float>(layerCount, Capacity * rowLength);
            _values32 = Allocate<float>(layerCount, Capacity * rowLength);
        }
        else
        {
            _keys16 = Allocate<ushort>(layerCount, Capacity * rowLength);
            _values16 = Allocate<ushort>(layerCount, Capacity * rowLength);
        }
    }

    /// <summary>Bytes held by the cache arrays.</summary>
    public long AllocatedBytes => 2L * LayerCount * Capacity * RowLength * (Type == KvCacheType.F32 ? 4 : 2);

    /// <summary>Makes room for <paramref name="length"/> positions (growing by doubling), keeping what is cached.</summary>
    public void EnsureCapacity(int length)
    {
        if (length <= Capacity)
            return;
        if (length > MaxLength)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"The context holds at most {MaxLength} positions.");
        int capacity = (int)Math.Min(MaxLength, Math.Max(length, 2L * Capacity));
        for (int l = 0; l < LayerCount; l++)
        {
            if (Type == KvCacheType.F32)
            {
                Array.Resize(ref _keys32![l], capacity * RowLength);
                Array.Resize(ref _values32![l], capacity * RowLength);
            }
            else
            {
                Array.Resize(ref _keys16![l], capacity * RowLength);
                Array.Resize(ref _values16![l], capacity * RowLength);
            }
        }
        Capacity = capacity;
    }

    /// <summary>Stores the key and value rows of <paramref name="position"/> in <paramref name="layer"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Write(int layer, int position, ReadOnlySpan<float> key, ReadOnlySpan<float> value)
    {
        if (key.Length != RowLength || value.Length != RowLength)
            throw new ArgumentException($"Cache rows hold {RowLength} values.");
        if ((uint)position >= (uint)Capacity)
            throw new ArgumentOutOfRangeException(nameof(position), position, $"Position must be below the capacity {Capacity}.");
        int at = position * RowLength;
        if (Type == KvCacheType.F32)
        {
            key.CopyTo(_keys32![layer].AsSpan(at, RowLength));
            value.CopyTo(_values32![layer].AsSpan(at, RowLength));
        }
        else
        {
            Float16.FromSingle(key, _keys16![layer].AsSpan(at, RowLength));
            Float16.FromSingle(value, _values16![layer].AsSpan(at, RowLength));
        }
    }

    /// <summary>
    /// Attention of one query head <paramref name="qh"/> ([headDim]) over positions [0, length) of
    /// <paramref name="layer"/>, reading KV head <paramref name="kvHead"/>, into <paramref name="output"/> ([headDim]).
    /// scores: at least length; scratch: at least 2·headDim.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal void AttendHead(int layer, int length, ReadOnlySpan<float> qh, int kvHead, float scale,
        Span<float> scores, Span<float> scratch, Span<float> output)
    {
        int n = length * RowLength, offset = kvHead * qh.Length;
        if (Type == KvCacheType.F32)
            Attention.DecodeHead(qh, _keys32![layer].AsSpan(0, n), _values32![layer].AsSpan(0, n), length, RowLength, offset, scale, scores, output);
        else
            Attention.DecodeHead(qh, _keys16![layer].AsSpan(0, n), _values16![layer].AsSpan(0, n), length, RowLength, offset, scale, scores, scratch, output);
    }

    /// <summary>Copies positions [0, length) of every layer into <paramref name="destination"/> (same geometry, any type).</summary>
    public void CopyTo(KvCache destination, int length)
    {
        if (destination.LayerCount != LayerCount || destination.RowLength != RowLength)
            throw new ArgumentException("The caches have different geometry.", nameof(destination));
        if ((uint)length > (uint)Capacity)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"Only {Capacity} positions are allocated.");
        destination.EnsureCapacity(length);
        var row = new float[RowLength];
        var row2 = new float[RowLength];
        for (int l = 0; l < LayerCount; l++)
        {
            if (Type == destination.Type)
            {
                int n = length * RowLength;
                if (Type == KvCacheType.F32)
                {
                    _keys32![l].AsSpan(0, n).CopyTo(destination._keys32![l]);
                    _values32![l].AsSpan(0, n).CopyTo(destination._values32![l]);
                }
                else
                {
                    _keys16![l].AsSpan(0, n).CopyTo(destination._keys16![l]);
                    _values16![l].AsSpan(0, n).CopyTo(destination._values16![l]);
                }
                continue;
            }
            for (int p = 0; p < length; p++)
            {
                ReadRow(l, p, row, row2);
                destination.Write(l, p, row, row2);
            }
        }
    }

    /// <summary>Reads the key and value rows of <paramref name="position"/> as F32.</summary>
    public void ReadRow(int layer, int position, Span<float> key, Span<float> value)
    {
        int at = position * RowLength;
        if (Type == KvCacheType.F32)
        {
            _keys32![layer].AsSpan(at, RowLength).CopyTo(key);
            _values32![layer].AsSpan(at, RowLength).CopyTo(value);
        }
        else
        {
            Float16.ToSingle(_keys16![layer].AsSpan(at, RowLength), key);
            Float16.ToSingle(_values16![layer].AsSpan(at, RowLength), value);
        }
    }

    /// <summary>The stored bytes of positions [0, length) of a layer's keys or values (to save or restore state).</summary>
    internal Span<byte> RawRows(int layer, bool values, int length)
    {
        int n = length * RowLength;
        return Type == KvCacheType.F32
            ? MemoryMarshal.AsBytes((values ? _values32! : _keys32!)[layer].AsSpan(0, n))
            : MemoryMarshal.AsBytes((values ? _values16! : _keys16!)[layer].AsSpan(0, n));
    }

    /// <summary>Bytes one stored value takes.</summary>
    internal int ValueBytes => Type == KvCacheType.F32 ? 4 : 2;

    private static T[][] Allocate<T>(int layers, int length)
    {
        var a = new T[layers][];
        for (int i = 0; i < layers; i++)
            a[i] = new T[length];
        return a;
    }
}

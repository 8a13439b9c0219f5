using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ManagedLM.Kernels;

namespace ManagedLM.Inference;

/// <summary>How a <see cref="KvCache"/> stores keys and values.</summary>
public enum KvCacheType
{
    /// <summary>Half precision (llama.cpp's default): half the memory, logits as llama.cpp computes them.</summary>
    F16,
    /// <summary>Single precision.</summary>
    F32,
    /// <summary>
    /// ggml Q8_0 blocks (32 values and an F16 scale: 8.5 bits a value, 34/64 of F16) from ggml's reference quantizer, as
    /// llama.cpp's <c>-ctk q8_0 -ctv q8_0</c>. Needs n_kv_head · head_dim to be a multiple of 32.
    /// </summary>
    Q8_0,
    /// <summary>ggml Q4_0 blocks (4.5 bits a value, 18/64 of F16), as llama.cpp's <c>-ctk q4_0 -ctv q4_0</c>; the logits drift more.</summary>
    Q4_0,
}

/// <summary>
/// One sequence's attention cache: for every layer, the key and value rows of every position so far, in the
/// <see cref="KvBlockLayout"/> attention reads (blocks of 16 positions). Grows by doubling up to
/// <see cref="MaxLength"/>, so a short request on a long-context model does not pay for the whole context up
/// front. Owned by one generator; not thread-safe. A Q8_0 or Q4_0 cache lays its blocks out as <see cref="KvQuantLayout"/>
/// and attends through <see cref="AttentionQuantized"/>.
/// </summary>
public sealed class KvCache
{
    // Per layer: Layout.Elements(Capacity) values, as float (F32) or F16 bits (F16); the other pairs are null.
    private readonly float[][]? _keys32, _values32;
    private readonly ushort[][]? _keys16, _values16;
    private readonly byte[][]? _keysQ, _valuesQ; // Q8_0, Q4_0: _quant.Bytes(Capacity) bytes per layer
    private readonly KvQuantLayout _quant;
    private readonly ushort[] _row16; // [RowLength]: a row rounded to F16 on its way in or out

    public KvCacheType Type { get; }
    public int LayerCount { get; }
    /// <summary>Values per cached row (n_kv_head · head_dim).</summary>
    public int RowLength => Layout.RowLength;
    /// <summary>Where each position's key and value rows lie in a layer's arrays.</summary>
    public KvBlockLayout Layout { get; }
    /// <summary>Most positions this cache can hold (the generator's context length).</summary>
    public int MaxLength { get; }
    /// <summary>Positions currently allocated.</summary>
    public int Capacity { get; private set; }

    public KvCache(KvCacheType type, int layerCount, KvBlockLayout layout, int maxLength, int initialCapacity = 256)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(layerCount);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(layout.KvHeads);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(layout.HeadDim);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxLength);
        CheckType(type, layout.KvHeads, layout.HeadDim, nameof(type));
        Type = type;
        LayerCount = layerCount;
        Layout = layout;
        MaxLength = maxLength;
        Capacity = Math.Clamp(initialCapacity, 1, maxLength);
        _row16 = new ushort[layout.RowLength];
        long elements = layout.Elements(Capacity);
        if (type is KvCacheType.Q8_0 or KvCacheType.Q4_0)
        {
            _quant = new KvQuantLayout(layout, type == KvCacheType.Q8_0 ? GgmlType.Q8_0 : GgmlType.Q4_0);
            _keysQ = Allocate<byte>(layerCount, _quant.Bytes(Capacity));
            _valuesQ = Allocate<byte>(layerCount, _quant.Bytes(Capacity));
        }
        else if (type == KvCacheType.F32)
        {
            _keys32 = Allocate<float>(layerCount, elements);
            _values32 = Allocate<float>(layerCount, elements);
        }
        else
        {
            _keys16 = Allocate<ushort>(layerCount, elements);
            _values16 = Allocate<ushort>(layerCount, elements);
        }
    }

    /// <summary>Throws <see cref="ArgumentException"/> unless a cache of <paramref name="type"/> can hold rows of <paramref name="kvHeads"/> · <paramref name="headDim"/> values.</summary>
    internal static void CheckType(KvCacheType type, int kvHeads, int headDim, string paramName)
    {
        if (type is not (KvCacheType.F16 or KvCacheType.F32 or KvCacheType.Q8_0 or KvCacheType.Q4_0))
            throw new ArgumentOutOfRangeException(paramName, type, "Unknown KV cache type.");
        if (type is KvCacheType.Q8_0 or KvCacheType.Q4_0 && kvHeads * headDim % KvQuantLayout.QuantBlock != 0)
            throw new ArgumentException(
                $"A {type} KV cache quantizes each key and value row in blocks of {KvQuantLayout.QuantBlock} values, and this model's rows "
                + $"(n_kv_head · head_dim = {kvHeads} · {headDim}) are not a multiple of {KvQuantLayout.QuantBlock}: use F16 or F32.", paramName);
    }

    /// <summary>Whether keys and values are stored as Q8_0 or Q4_0 blocks.</summary>
    public bool IsQuantized => _keysQ is not null;

    /// <summary>Bytes held by the cache arrays.</summary>
    public long AllocatedBytes => 2L * LayerCount * (IsQuantized ? _quant.Bytes(Capacity) : Layout.Elements(Capacity) * ValueBytes);

    /// <summary>Makes room for <paramref name="length"/> positions (growing by doubling), keeping what is cached.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void EnsureCapacity(int length)
    {
        if (length <= Capacity)
            return;
        if (length > MaxLength)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"The context holds at most {MaxLength} positions.");
        int capacity = (int)Math.Min(MaxLength, Math.Max(length, 2L * Capacity));
        int elements = checked((int)Layout.Elements(capacity));
        for (int l = 0; l < LayerCount; l++)
        {
            // Blocks are position-major: the cached positions stay where they are.
            if (IsQuantized)
            {
                int bytes = checked((int)_quant.Bytes(capacity));
                Array.Resize(ref _keysQ![l], bytes);
                Array.Resize(ref _valuesQ![l], bytes);
            }
            else if (Type == KvCacheType.F32)
            {
                Array.Resize(ref _keys32![l], elements);
                Array.Resize(ref _values32![l], elements);
            }
            else
            {
                Array.Resize(ref _keys16![l], elements);
                Array.Resize(ref _values16![l], elements);
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
        if (IsQuantized)
        {
            _quant.WriteKey(position, key, _keysQ![layer]);
            _quant.WriteValue(position, value, _valuesQ![layer]);
        }
        else if (Type == KvCacheType.F32)
        {
            Layout.WriteKey(position, key, _keys32![layer].AsSpan());
            Layout.WriteValue(position, value, _values32![layer].AsSpan());
        }
        else
        {
            Float16.FromSingle(key, _row16);
            Layout.WriteKey<ushort>(position, _row16, _keys16![layer]);
            Float16.FromSingle(value, _row16);
            Layout.WriteValue<ushort>(position, _row16, _values16![layer]);
        }
    }

    /// <summary>
    /// Attention of <paramref name="rows"/> consecutive positions' <paramref name="heads"/> query heads that read KV head
    /// <paramref name="kvHead"/> (row j: queries[j·rowStride ..], [heads × headDim]) over positions [0, length + j) of
    /// <paramref name="layer"/>, into output at the same offsets. scratch: at least <see cref="Attention.ScratchLength(int, int, int, int)"/>
    /// and <see cref="DequantizeScratchLength"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal void Attend(int layer, int length, int rows, int rowStride, ReadOnlySpan<float> queries, int heads, int kvHead, float scale,
        Span<float> scratch, Span<float> output, ScoreShape shape = default)
    {
        if (IsQuantized)
            AttentionQuantized.Attend(queries, rows, rowStride, heads, _keysQ![layer], _valuesQ![layer], _quant, kvHead, length, scale, scratch, output, shape);
        else if (Type == KvCacheType.F32)
            Attention.Attend(queries, rows, rowStride, heads, _keys32![layer], _values32![layer], Layout, kvHead, length, scale, scratch, output, shape);
        else
            Attention.Attend(queries, rows, rowStride, heads, _keys16![layer], _values16![layer], Layout, kvHead, length, scale, scratch, output, shape);
    }

    /// <summary>Floats of scratch <see cref="Attend"/> needs beyond <see cref="Attention.ScratchLength(int, int, int, int)"/>: a quantized cache's F32 tile.</summary>
    internal int DequantizeScratchLength => IsQuantized ? AttentionQuantized.ChunkLength(Layout.HeadDim) : 0;

    /// <summary>Whether the rows of a prompt chunk attend over a KV head widened to F32 once (<see cref="Widen"/>): F16 and quantized caches.</summary>
    internal bool Widens => Type != KvCacheType.F32;

    /// <summary>
    /// Widens blocks [<paramref name="fromBlock"/>, <paramref name="toBlock"/>) of KV head <paramref name="kvHead"/> in
    /// <paramref name="layer"/> of an F16 or quantized cache to F32 (<see cref="Attention.Widen"/>,
    /// <see cref="AttentionQuantized.Widen"/>), for <see cref="AttendWidened"/>.
    /// </summary>
    internal void Widen(int layer, int kvHead, int fromBlock, int toBlock, Span<float> keys, Span<float> values)
    {
        if (IsQuantized)
            AttentionQuantized.Widen(_keysQ![layer], _valuesQ![layer], _quant, kvHead, fromBlock, toBlock, keys, values);
        else
            Attention.Widen(_keys16![layer], _values16![layer], Layout, kvHead, fromBlock, toBlock, keys, values);
    }

    /// <summary>
    /// <see cref="Attend"/> over one KV head that <see cref="Widen"/> widened into keys and values: an F16 cache's rounding
    /// (<see cref="Attention.AttendWidened"/>), or none for a quantized cache (the F32 kernel, as <see cref="AttentionQuantized"/>).
    /// </summary>
    internal void AttendWidened(ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int length, int rows, int rowStride,
        ReadOnlySpan<float> queries, int heads, float scale, Span<float> scratch, Span<float> output, ScoreShape shape = default)
    {
        var wide = new KvBlockLayout(1, Layout.HeadDim);
        if (IsQuantized)
            Attention.Attend(queries, rows, rowStride, heads, keys, values, wide, 0, length, scale, scratch, output, shape);
        else
            Attention.AttendWidened(queries, rows, rowStride, heads, keys, values, wide, 0, length, scale, scratch, output, shape);
    }

    /// <summary>Copies positions [0, length) of every layer into <paramref name="destination"/> (same geometry, any type).</summary>
    public void CopyTo(KvCache destination, int length)
    {
        if (destination.LayerCount != LayerCount || destination.Layout != Layout)
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
                int n = (int)Layout.Elements(length);
                if (IsQuantized)
                {
                    int bytes = (int)_quant.Bytes(length);
                    _keysQ![l].AsSpan(0, bytes).CopyTo(destination._keysQ![l]);
                    _valuesQ![l].AsSpan(0, bytes).CopyTo(destination._valuesQ![l]);
                }
                else if (Type == KvCacheType.F32)
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

    /// <summary>Reads the key and value rows of <paramref name="position"/> as F32 (a quantized cache's dequantized as ggml does).</summary>
    public void ReadRow(int layer, int position, Span<float> key, Span<float> value)
    {
        if (IsQuantized)
        {
            _quant.ReadKey(position, _keysQ![layer], key);
            _quant.ReadValue(position, _valuesQ![layer], value);
        }
        else if (Type == KvCacheType.F32)
        {
            Layout.ReadKey<float>(position, _keys32![layer], key);
            Layout.ReadValue<float>(position, _values32![layer], value);
        }
        else
        {
            Layout.ReadKey<ushort>(position, _keys16![layer], _row16);
            Float16.ToSingle(_row16, key);
            Layout.ReadValue<ushort>(position, _values16![layer], _row16);
            Float16.ToSingle(_row16, value);
        }
    }

    /// <summary>
    /// The stored bytes of positions [0, length) of a layer's keys or values, one row after another (<see cref="RowBytes"/>
    /// per position: F32 or F16 values, or a quantized row's ggml blocks), into <paramref name="destination"/>: the saved-state form.
    /// </summary>
    internal void ReadRows(int layer, bool values, int length, Span<byte> destination)
    {
        if (IsQuantized)
        {
            var cache = (values ? _valuesQ! : _keysQ!)[layer];
            for (int p = 0; p < length; p++)
            {
                var row = destination.Slice(p * RowBytes, RowBytes);
                if (values)
                    _quant.ReadValueBlocks(p, cache, row);
                else
                    _quant.ReadKeyBlocks(p, cache, row);
            }
        }
        else if (Type == KvCacheType.F32)
            ReadRows((values ? _values32! : _keys32!)[layer], values, length, MemoryMarshal.Cast<byte, float>(destination));
        else
            ReadRows((values ? _values16! : _keys16!)[layer], values, length, MemoryMarshal.Cast<byte, ushort>(destination));
    }

    /// <summary>Stores positions [0, length) of a layer's keys or values from the form <see cref="ReadRows(int, bool, int, Span{byte})"/> writes.</summary>
    internal void WriteRows(int layer, bool values, int length, ReadOnlySpan<byte> source)
    {
        EnsureCapacity(length);
        if (IsQuantized)
        {
            var cache = (values ? _valuesQ! : _keysQ!)[layer];
            for (int p = 0; p < length; p++)
            {
                var row = source.Slice(p * RowBytes, RowBytes);
                if (values)
                    _quant.WriteValueBlocks(p, row, cache);
                else
                    _quant.WriteKeyBlocks(p, row, cache);
            }
        }
        else if (Type == KvCacheType.F32)
            WriteRows(MemoryMarshal.Cast<byte, float>(source), values, length, (values ? _values32! : _keys32!)[layer]);
        else
            WriteRows(MemoryMarshal.Cast<byte, ushort>(source), values, length, (values ? _values16! : _keys16!)[layer]);
    }

    private void ReadRows<T>(ReadOnlySpan<T> cache, bool values, int length, Span<T> rows)
    {
        for (int p = 0; p < length; p++)
        {
            var row = rows.Slice(p * RowLength, RowLength);
            if (values)
                Layout.ReadValue(p, cache, row);
            else
                Layout.ReadKey(p, cache, row);
        }
    }

    private void WriteRows<T>(ReadOnlySpan<T> rows, bool values, int length, Span<T> cache)
    {
        for (int p = 0; p < length; p++)
        {
            var row = rows.Slice(p * RowLength, RowLength);
            if (values)
                Layout.WriteValue(p, row, cache);
            else
                Layout.WriteKey(p, row, cache);
        }
    }

    /// <summary>Bytes one stored value takes (F32, F16).</summary>
    private int ValueBytes => Type == KvCacheType.F32 ? 4 : 2;

    /// <summary>Bytes of one position's key (or value) row in the saved-state form.</summary>
    internal int RowBytes => (int)RowBytesOf(Type, RowLength);

    /// <summary>Bytes of a row of <paramref name="rowLength"/> values of <paramref name="type"/> in the saved-state form (ggml blocks for Q8_0, Q4_0).</summary>
    internal static long RowBytesOf(KvCacheType type, int rowLength) => type switch
    {
        KvCacheType.F32 => 4L * rowLength,
        KvCacheType.F16 => 2L * rowLength,
        KvCacheType.Q8_0 => rowLength / KvQuantLayout.QuantBlock * 34L,
        _ => rowLength / KvQuantLayout.QuantBlock * 18L,
    };

    private static T[][] Allocate<T>(int layers, long length)
    {
        var a = new T[layers][];
        for (int i = 0; i < layers; i++)
            a[i] = new T[checked((int)length)];
        return a;
    }
}

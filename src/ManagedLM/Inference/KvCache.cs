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
/// A sliding-window layer (<c>windows</c>) keeps only what its window can still see: positions
/// [<see cref="HeldFrom"/>, …) in slots from 0, whole blocks of older ones dropped when it runs out of room, so a Gemma-style
/// model's local layers take a window's memory, not a context's. Slots keep their position modulo 16 and the window masks
/// what is older, so a row's attention is the same bits however much the layer has dropped.
/// </summary>
public sealed class KvCache
{
    // Per layer: Layout.Elements(Capacity) values, as float (F32) or F16 bits (F16); the other pairs are null.
    private readonly float[][]? _keys32, _values32;
    private readonly ushort[][]? _keys16, _values16;
    private readonly byte[][]? _keysQ, _valuesQ; // Q8_0, Q4_0: _quant.Bytes(Capacity) bytes per layer
    private readonly KvQuantLayout _quant;
    private readonly ushort[] _row16; // [RowLength]: a row rounded to F16 on its way in or out
    private readonly int[] _windows;   // per layer: positions a query sees, 0 for all
    private readonly int[] _base;      // per layer: the position in slot 0 (a multiple of 16; 0 for full layers)
    private readonly int[] _slots;     // per layer: positions allocated (Capacity for full layers)

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

    /// <param name="type">How keys and values are stored.</param>
    /// <param name="layerCount">Layers of the model.</param>
    /// <param name="layout">Where each position's rows lie.</param>
    /// <param name="maxLength">Most positions (the context length).</param>
    /// <param name="initialCapacity">Positions allocated at first (the cache grows by doubling).</param>
    /// <param name="windows">Per layer, the sliding window of a layer that has one (0: it sees every position); empty: none.</param>
    public KvCache(KvCacheType type, int layerCount, KvBlockLayout layout, int maxLength, int initialCapacity = 256, ReadOnlySpan<int> windows = default)
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
        if (!windows.IsEmpty && windows.Length != layerCount)
            throw new ArgumentException($"Expected a window for each of the {layerCount} layers.", nameof(windows));
        _windows = windows.IsEmpty ? new int[layerCount] : windows.ToArray();
        for (int l = 0; l < layerCount; l++)
        {
            if (_windows[l] >= maxLength)
                _windows[l] = 0; // a window as long as the context drops nothing: the layer keeps everything
        }
        _base = new int[layerCount];
        _slots = new int[layerCount];
        for (int l = 0; l < layerCount; l++)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(_windows[l], nameof(windows));
            _slots[l] = Windowed(l) ? Math.Min(Capacity, RoundUp(_windows[l] + Slack(l))) : Capacity;
        }
        if (type is KvCacheType.Q8_0 or KvCacheType.Q4_0)
        {
            _quant = new KvQuantLayout(layout, type == KvCacheType.Q8_0 ? GgmlType.Q8_0 : GgmlType.Q4_0);
            _keysQ = Allocate<byte>(l => _quant.Bytes(_slots[l]));
            _valuesQ = Allocate<byte>(l => _quant.Bytes(_slots[l]));
        }
        else if (type == KvCacheType.F32)
        {
            _keys32 = Allocate<float>(l => layout.Elements(_slots[l]));
            _values32 = Allocate<float>(l => layout.Elements(_slots[l]));
        }
        else
        {
            _keys16 = Allocate<ushort>(l => layout.Elements(_slots[l]));
            _values16 = Allocate<ushort>(l => layout.Elements(_slots[l]));
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
    public long AllocatedBytes
    {
        get
        {
            long bytes = 0;
            for (int l = 0; l < LayerCount; l++)
                bytes += 2 * (IsQuantized ? _quant.Bytes(_slots[l]) : Layout.Elements(_slots[l]) * ValueBytes);
            return bytes;
        }
    }

    /// <summary>Makes room for <paramref name="length"/> positions (growing by doubling), keeping what is cached.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void EnsureCapacity(int length)
    {
        if (length <= Capacity)
            return;
        if (length > MaxLength)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"The context holds at most {MaxLength} positions.");
        int capacity = (int)Math.Min(MaxLength, Math.Max(length, 2L * Capacity));
        for (int l = 0; l < LayerCount; l++)
        {
            if (!Windowed(l))
                Resize(l, capacity); // blocks are position-major: the cached positions stay where they are
        }
        Capacity = capacity;
    }

    // Sliding layers: the first position held, how far the window of a query at `position` reaches back, the room a
    // layer keeps beyond its window before it drops blocks (an eighth of the window, at least a block).
    private bool Windowed(int layer) => _windows[layer] > 0;
    private int Slack(int layer) => Math.Max(KvBlockLayout.BlockLength, _windows[layer] / 8);
    private static int RoundUp(int n) => (n + KvBlockLayout.BlockLength - 1) / KvBlockLayout.BlockLength * KvBlockLayout.BlockLength;

    /// <summary>The first position layer <paramref name="layer"/> still holds (0 but for a sliding layer that dropped some).</summary>
    public int HeldFrom(int layer) => _base[layer];

    /// <summary>Positions of [0, <paramref name="length"/>) that <paramref name="layer"/> holds: the length its attention runs over.</summary>
    internal int Held(int layer, int length) => length - _base[layer];

    /// <summary>Whether a token at position <paramref name="length"/> finds every position its windows see (after a trim, the sliding layers may have dropped them).</summary>
    public bool Holds(int length)
    {
        for (int l = 0; l < LayerCount; l++)
        {
            if (length > 0 && _base[l] > Math.Max(0, length - _windows[l] + 1))
                return false;
        }
        return true;
    }

    /// <summary>
    /// Makes positions [<paramref name="first"/>, <paramref name="last"/>] of a sequence's next pass storable: a sliding
    /// layer out of room drops the whole blocks before the window of <paramref name="first"/>, and grows if a prompt chunk
    /// needs more; a pass from position 0 starts the layer over. Full layers are sized by <see cref="EnsureCapacity"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal void Admit(int first, int last)
    {
        for (int l = 0; l < LayerCount; l++)
        {
            if (!Windowed(l))
                continue;
            if (first == 0)
                _base[l] = 0;
            int need = Math.Max(0, first - _windows[l] + 1);
            if (need < _base[l])
                throw new InvalidOperationException($"Layer {l} no longer holds position {need} (it keeps positions from {_base[l]}): trim through the generator, which evaluates the kept tokens again.");
            if (last + 1 - _base[l] <= _slots[l])
                continue;
            int from = need / KvBlockLayout.BlockLength * KvBlockLayout.BlockLength;
            if (from > _base[l])
            {
                Move(l, (from - _base[l]) / KvBlockLayout.BlockLength, 0, KvBlockLayout.Blocks(first - from));
                _base[l] = from;
            }
            int needed = last + 1 - _base[l];
            if (needed > _slots[l])
                Resize(l, Math.Max(RoundUp(needed), Math.Min(2 * _slots[l], RoundUp(_windows[l] + Slack(l)))));
        }
    }

    /// <summary>
    /// Before a context shift leaves <paramref name="length"/> positions: a sliding layer makes the window of the next
    /// position storable again, moving what it holds up (the shift then writes the moved rows; rows older than that window
    /// are not stored).
    /// </summary>
    internal void PrepareShift(int layer, int length)
    {
        if (!Windowed(layer))
            return;
        int need = Math.Max(0, length - _windows[layer] + 1), from = need / KvBlockLayout.BlockLength * KvBlockLayout.BlockLength;
        if (from >= _base[layer])
            return;
        int up = (_base[layer] - from) / KvBlockLayout.BlockLength, held = _slots[layer] / KvBlockLayout.BlockLength;
        Resize(layer, RoundUp(Math.Max(length - from, _slots[layer] + up * KvBlockLayout.BlockLength)));
        Move(layer, 0, up, held);
        _base[layer] = from;
    }

    // Copies `blocks` blocks of a layer's keys and values from block `from` to block `to` (overlap allowed).
    private void Move(int layer, int from, int to, int blocks)
    {
        long unit = IsQuantized ? _quant.Bytes(KvBlockLayout.BlockLength) : Layout.Elements(KvBlockLayout.BlockLength);
        blocks = (int)Math.Min(blocks, Math.Min(_slots[layer] / KvBlockLayout.BlockLength - from, _slots[layer] / KvBlockLayout.BlockLength - to));
        if (blocks <= 0 || from == to)
            return;
        var (keys, values) = Arrays(layer);
        Array.Copy(keys, from * unit, keys, to * unit, blocks * unit);
        Array.Copy(values, from * unit, values, to * unit, blocks * unit);
    }

    // A layer's key and value arrays, whatever their element type.
    private (Array Keys, Array Values) Arrays(int layer) =>
        IsQuantized ? (_keysQ![layer], _valuesQ![layer]) : Type == KvCacheType.F32 ? (_keys32![layer], _values32![layer]) : (_keys16![layer], _values16![layer]);

    // Grows (or shrinks) a layer's arrays to `slots` positions, keeping what they hold from slot 0.
    private void Resize(int layer, int slots)
    {
        if (IsQuantized)
        {
            int bytes = checked((int)_quant.Bytes(slots));
            Array.Resize(ref _keysQ![layer], bytes);
            Array.Resize(ref _valuesQ![layer], bytes);
        }
        else
        {
            int elements = checked((int)Layout.Elements(slots));
            if (Type == KvCacheType.F32)
            {
                Array.Resize(ref _keys32![layer], elements);
                Array.Resize(ref _values32![layer], elements);
            }
            else
            {
                Array.Resize(ref _keys16![layer], elements);
                Array.Resize(ref _values16![layer], elements);
            }
        }
        _slots[layer] = slots;
    }

    /// <summary>Stores the key and value rows of <paramref name="position"/> in <paramref name="layer"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Write(int layer, int position, ReadOnlySpan<float> key, ReadOnlySpan<float> value)
    {
        if (key.Length != RowLength || value.Length != RowLength)
            throw new ArgumentException($"Cache rows hold {RowLength} values.");
        if ((uint)position >= (uint)Capacity)
            throw new ArgumentOutOfRangeException(nameof(position), position, $"Position must be below the capacity {Capacity}.");
        position -= _base[layer];
        if (position < 0)
            return; // older than what a sliding layer keeps: no query sees it any more
        if (position >= _slots[layer])
            throw new InvalidOperationException($"Layer {layer} has room up to position {_base[layer] + _slots[layer] - 1}: Admit the pass first.");
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
    /// <paramref name="kvHead"/> (row j: queries[j·rowStride ..], [heads × headDim]) over the first length + j held
    /// positions of <paramref name="layer"/> (<see cref="Held"/>), into output at the same offsets. scratch: at least <see cref="Attention.ScratchLength(int, int, int, int)"/>
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

    /// <summary>
    /// Copies positions [0, length) of every layer into <paramref name="destination"/> (same geometry, any type): what a
    /// sliding layer of either cache does not hold reads as zeros, which its window never shows.
    /// </summary>
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
            int to = destination.Windowed(l) ? Math.Max(0, length - destination._windows[l]) / KvBlockLayout.BlockLength * KvBlockLayout.BlockLength : 0;
            destination.Hold(l, to, length);
            int from = Math.Max(_base[l], to); // a multiple of 16: whole blocks
            if (Type == destination.Type)
            {
                long unit = IsQuantized ? _quant.Bytes(KvBlockLayout.BlockLength) : Layout.Elements(KvBlockLayout.BlockLength);
                long skipped = (from - to) / KvBlockLayout.BlockLength * unit, count = KvBlockLayout.Blocks(length - from) * unit;
                var (sourceKeys, sourceValues) = Arrays(l);
                var (targetKeys, targetValues) = destination.Arrays(l);
                foreach (var (source, target) in new[] { (sourceKeys, targetKeys), (sourceValues, targetValues) })
                {
                    Array.Clear(target, 0, (int)skipped);
                    Array.Copy(source, (from - _base[l]) / KvBlockLayout.BlockLength * unit, target, skipped, Math.Max(0, count));
                }
                continue;
            }
            for (int p = to; p < length; p++)
            {
                ReadRow(l, p, row, row2);
                destination.Write(l, p, row, row2);
            }
        }
    }

    // Makes a layer hold positions [from, length): from is its new base (0 for a full layer).
    private void Hold(int layer, int from, int length)
    {
        _base[layer] = Windowed(layer) ? from : 0;
        if (length - _base[layer] > _slots[layer])
            Resize(layer, RoundUp(length - _base[layer]));
    }

    /// <summary>Reads the key and value rows of <paramref name="position"/> as F32 (a quantized cache's dequantized as ggml does).</summary>
    public void ReadRow(int layer, int position, Span<float> key, Span<float> value)
    {
        position -= _base[layer];
        if (position < 0)
        {
            key[..RowLength].Clear(); // dropped by a sliding layer
            value[..RowLength].Clear();
            return;
        }
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
        int from = _base[layer];
        destination[..(from * RowBytes)].Clear(); // dropped by a sliding layer
        if (IsQuantized)
        {
            var cache = (values ? _valuesQ! : _keysQ!)[layer];
            for (int p = from; p < length; p++)
            {
                var row = destination.Slice(p * RowBytes, RowBytes);
                if (values)
                    _quant.ReadValueBlocks(p - from, cache, row);
                else
                    _quant.ReadKeyBlocks(p - from, cache, row);
            }
        }
        else if (Type == KvCacheType.F32)
            ReadRows((values ? _values32! : _keys32!)[layer], values, from, length, MemoryMarshal.Cast<byte, float>(destination));
        else
            ReadRows((values ? _values16! : _keys16!)[layer], values, from, length, MemoryMarshal.Cast<byte, ushort>(destination));
    }

    /// <summary>Stores positions [0, length) of a layer's keys or values from the form <see cref="ReadRows(int, bool, int, Span{byte})"/> writes.</summary>
    internal void WriteRows(int layer, bool values, int length, ReadOnlySpan<byte> source)
    {
        EnsureCapacity(length);
        Hold(layer, Windowed(layer) ? Math.Max(0, length - _windows[layer]) / KvBlockLayout.BlockLength * KvBlockLayout.BlockLength : 0, length);
        int from = _base[layer];
        if (IsQuantized)
        {
            var cache = (values ? _valuesQ! : _keysQ!)[layer];
            for (int p = from; p < length; p++)
            {
                var row = source.Slice(p * RowBytes, RowBytes);
                if (values)
                    _quant.WriteValueBlocks(p - from, row, cache);
                else
                    _quant.WriteKeyBlocks(p - from, row, cache);
            }
        }
        else if (Type == KvCacheType.F32)
            WriteRows(MemoryMarshal.Cast<byte, float>(source), values, from, length, (values ? _values32! : _keys32!)[layer]);
        else
            WriteRows(MemoryMarshal.Cast<byte, ushort>(source), values, from, length, (values ? _values16! : _keys16!)[layer]);
    }

    // Positions [from, length) of the saved form (row p at p · RowLength) from or to slots [0, length − from).
    private void ReadRows<T>(ReadOnlySpan<T> cache, bool values, int from, int length, Span<T> rows)
    {
        for (int p = from; p < length; p++)
        {
            var row = rows.Slice(p * RowLength, RowLength);
            if (values)
                Layout.ReadValue(p - from, cache, row);
            else
                Layout.ReadKey(p - from, cache, row);
        }
    }

    private void WriteRows<T>(ReadOnlySpan<T> rows, bool values, int from, int length, Span<T> cache)
    {
        for (int p = from; p < length; p++)
        {
            var row = rows.Slice(p * RowLength, RowLength);
            if (values)
                Layout.WriteValue(p - from, row, cache);
            else
                Layout.WriteKey(p - from, row, cache);
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

    private T[][] Allocate<T>(Func<int, long> length)
    {
        var a = new T[LayerCount][];
        for (int i = 0; i < a.Length; i++)
            a[i] = new T[checked((int)length(i))];
        return a;
    }
}

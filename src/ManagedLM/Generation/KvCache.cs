namespace ManagedLM.Generation;

/// <summary>
/// One sequence's attention cache: for every layer, the key and value rows of every position so far.
/// Grows by doubling up to <see cref="MaxLength"/>, so a short request on a long-context model does not
/// pay for the whole context up front. Owned by one generator; not thread-safe.
/// </summary>
public sealed class KvCache
{
    private float[][] _keys;   // per layer: [capacity × kvLength]
    private float[][] _values; // per layer: [capacity × kvLength]

    public int LayerCount { get; }
    /// <summary>Floats per cached row (n_kv_head · head_dim).</summary>
    public int RowLength { get; }
    /// <summary>Most positions this cache can hold (the generator's context length).</summary>
    public int MaxLength { get; }
    /// <summary>Positions currently allocated.</summary>
    public int Capacity { get; private set; }

    public KvCache(int layerCount, int rowLength, int maxLength, int initialCapacity = 256)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(layerCount);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rowLength);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxLength);
        LayerCount = layerCount;
        RowLength = rowLength;
        MaxLength = maxLength;
        Capacity = Math.Clamp(initialCapacity, 1, maxLength);
        _keys = Allocate(layerCount, Capacity * rowLength);
        _values = Allocate(layerCount, Capacity * rowLength);
    }

    /// <summary>Bytes held by the cache arrays.</summary>
    public long AllocatedBytes => 2L * LayerCount * Capacity * RowLength * sizeof(float);

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
            Array.Resize(ref _keys[l], capacity * RowLength);
            Array.Resize(ref _values[l], capacity * RowLength);
        }
        Capacity = capacity;
    }

    /// <summary>The key row of <paramref name="position"/> in <paramref name="layer"/> (to write).</summary>
    public Span<float> KeyRow(int layer, int position) => _keys[layer].AsSpan(position * RowLength, RowLength);

    /// <summary>The value row of <paramref name="position"/> in <paramref name="layer"/> (to write).</summary>
    public Span<float> ValueRow(int layer, int position) => _values[layer].AsSpan(position * RowLength, RowLength);

    /// <summary>Key rows of positions [0, length) of <paramref name="layer"/>: [length × RowLength].</summary>
    public ReadOnlySpan<float> Keys(int layer, int length) => _keys[layer].AsSpan(0, length * RowLength);

    /// <summary>Value rows of positions [0, length) of <paramref name="layer"/>: [length × RowLength].</summary>
    public ReadOnlySpan<float> Values(int layer, int length) => _values[layer].AsSpan(0, length * RowLength);

    private static float[][] Allocate(int layers, int length)
    {
        var a = new float[layers][];
        for (int i = 0; i < layers; i++)
            a[i] = new float[length];
        return a;
    }
}

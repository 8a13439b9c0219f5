using System.Runtime.CompilerServices;

namespace ManagedLM.Kernels;

/// <summary>
/// How one sequence's keys and values lie in memory for <see cref="Attention"/>: positions in blocks of
/// <see cref="BlockLength"/>, and in each block, per KV head, the keys transposed ([headDim][16]: a key
/// dimension of 16 positions side by side, so one vector load serves 16 scores) and the values as rows
/// ([16][headDim]). Blocks follow each other, so the first n blocks are a prefix of the array: a cache grows
/// by appending blocks and copies a prefix by copying elements.
/// </summary>
/// <param name="KvHeads">Key/value heads.</param>
/// <param name="HeadDim">Values per head.</param>
public readonly record struct KvBlockLayout(int KvHeads, int HeadDim)
{
    /// <summary>Positions per block.</summary>
    public const int BlockLength = 16;

    /// <summary>Values of one position's key (or value) row: KvHeads · HeadDim.</summary>
    public int RowLength => KvHeads * HeadDim;

    /// <summary>Elements one block holds, of the keys or of the values.</summary>
    public int BlockElements => BlockLength * RowLength;

    /// <summary>Elements the keys (or values) of <paramref name="positions"/> positions take: whole blocks.</summary>
    public long Elements(int positions) => (long)Blocks(positions) * BlockElements;

    /// <summary>Blocks that hold <paramref name="positions"/> positions.</summary>
    public static int Blocks(int positions) => (positions + BlockLength - 1) / BlockLength;

    /// <summary>Where KV head <paramref name="kvHead"/>'s part of block <paramref name="block"/> starts (keys or values).</summary>
    internal int HeadOffset(int block, int kvHead) => block * BlockElements + kvHead * HeadDim * BlockLength;

    /// <summary>Stores the key row of <paramref name="position"/> ([RowLength], heads side by side) into <paramref name="keys"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void WriteKey<T>(int position, ReadOnlySpan<T> key, Span<T> keys)
    {
        CheckRow(key.Length, keys.Length, position);
        int lane = position % BlockLength;
        for (int h = 0; h < KvHeads; h++)
        {
            var dst = keys.Slice(HeadOffset(position / BlockLength, h), HeadDim * BlockLength);
            var src = key.Slice(h * HeadDim, HeadDim);
            for (int d = 0; d < src.Length; d++)
                dst[d * BlockLength + lane] = src[d];
        }
    }

    /// <summary>Reads the key row of <paramref name="position"/> back from <paramref name="keys"/>.</summary>
    public void ReadKey<T>(int position, ReadOnlySpan<T> keys, Span<T> key)
    {
        CheckRow(key.Length, keys.Length, position);
        int lane = position % BlockLength;
        for (int h = 0; h < KvHeads; h++)
        {
            var src = keys.Slice(HeadOffset(position / BlockLength, h), HeadDim * BlockLength);
            var dst = key.Slice(h * HeadDim, HeadDim);
            for (int d = 0; d < dst.Length; d++)
                dst[d] = src[d * BlockLength + lane];
        }
    }

    /// <summary>The value row of KV head <paramref name="kvHead"/> at <paramref name="position"/> ([HeadDim]) in <paramref name="values"/>.</summary>
    public Span<T> ValueRow<T>(Span<T> values, int position, int kvHead) =>
        values.Slice(HeadOffset(position / BlockLength, kvHead) + position % BlockLength * HeadDim, HeadDim);

    /// <summary>Stores the value row of <paramref name="position"/> ([RowLength], heads side by side) into <paramref name="values"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void WriteValue<T>(int position, ReadOnlySpan<T> value, Span<T> values)
    {
        CheckRow(value.Length, values.Length, position);
        for (int h = 0; h < KvHeads; h++)
            value.Slice(h * HeadDim, HeadDim).CopyTo(ValueRow(values, position, h));
    }

    /// <summary>Reads the value row of <paramref name="position"/> back from <paramref name="values"/>.</summary>
    public void ReadValue<T>(int position, ReadOnlySpan<T> values, Span<T> value)
    {
        CheckRow(value.Length, values.Length, position);
        for (int h = 0; h < KvHeads; h++)
            values.Slice(HeadOffset(position / BlockLength, h) + position % BlockLength * HeadDim, HeadDim).CopyTo(value.Slice(h * HeadDim, HeadDim));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void CheckRow(int row, int cache, int position)
    {
        if (row < RowLength || position < 0 || cache < Elements(position + 1))
            throw new ArgumentException($"A row holds {RowLength} values and the cache must hold position {position}.");
    }
}

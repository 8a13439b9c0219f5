using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ManagedLM.Kernels.Quants;

namespace ManagedLM.Kernels;

/// <summary>
/// How one sequence's keys and values lie in memory for <see cref="AttentionQuantized"/> when they are stored as ggml
/// Q8_0 or Q4_0 blocks. Each position's key (and value) row [KvHeads · HeadDim] is quantized in blocks of 32 values as
/// ggml quantizes a row of its KV cache (<c>quantize_row_q8_0_ref</c>, <c>quantize_row_q4_0_ref</c>), so the stored
/// values are llama.cpp's. Positions come in blocks of <see cref="KvBlockLayout.BlockLength"/> as in
/// <see cref="KvBlockLayout"/>, and a block holds, for each group of heads whose values whole quant blocks cover (one
/// head when HeadDim is a multiple of 32, else <see cref="GroupHeads"/>), that group's 16 rows:
/// <list type="bullet">
/// <item>values: each position's ggml blocks in order ([16][GroupBlocks] block_q8_0 or block_q4_0);</item>
/// <item>keys: the same numbers transposed, so that one load widens a key dimension of 16 positions: the F16 scales
/// [GroupBlocks][16], then the quants [GroupBlocks · 32 dimensions][16] (Q8_0: a byte each; Q4_0: 8 bytes per dimension,
/// position i in the low nibble of byte i and position i + 8 in its high nibble).</item>
/// </list>
/// Both take the bytes of the ggml blocks, so the cache is 34/64 (Q8_0) or 18/64 (Q4_0) of an F16 cache.
/// </summary>
public readonly record struct KvQuantLayout
{
    /// <summary>Values per quant block.</summary>
    public const int QuantBlock = 32;

    private const int Lanes = KvBlockLayout.BlockLength;

    /// <param name="heads">Key/value heads and head size.</param>
    /// <param name="type"><see cref="GgmlType.Q8_0"/> or <see cref="GgmlType.Q4_0"/>.</param>
    /// <exception cref="ArgumentException">Another type, or a row (KvHeads · HeadDim) that is not a multiple of 32.</exception>
    public KvQuantLayout(KvBlockLayout heads, GgmlType type)
    {
        if (type is not (GgmlType.Q8_0 or GgmlType.Q4_0))
            throw new ArgumentException($"A quantized KV cache stores Q8_0 or Q4_0 blocks, not {type}.", nameof(type));
        if (heads.KvHeads <= 0 || heads.HeadDim <= 0 || heads.RowLength % QuantBlock != 0)
            throw new ArgumentException(
                $"A {type} KV cache quantizes each key and value row (n_kv_head · head_dim = {heads.KvHeads} · {heads.HeadDim}) in blocks of {QuantBlock} values: the row must be a multiple of {QuantBlock}.",
                nameof(heads));
        Heads = heads;
        Type = type;
        int lcm = heads.HeadDim / Gcd(heads.HeadDim, QuantBlock) * QuantBlock;
        GroupHeads = lcm / heads.HeadDim;
        GroupBlocks = lcm / QuantBlock;
        TypeBytes = type == GgmlType.Q8_0 ? 34 : 18;
        GroupBytes = Lanes * GroupBlocks * TypeBytes;
        BlockBytes = GroupBytes * (heads.KvHeads / GroupHeads);
    }

    /// <summary>Key/value heads and head size.</summary>
    public KvBlockLayout Heads { get; }

    /// <summary>The block type: Q8_0 or Q4_0.</summary>
    public GgmlType Type { get; }

    /// <summary>Heads whose values one run of whole quant blocks covers: lcm(HeadDim, 32) / HeadDim.</summary>
    public int GroupHeads { get; }

    /// <summary>Quant blocks of one position in a group: lcm(HeadDim, 32) / 32.</summary>
    public int GroupBlocks { get; }

    /// <summary>Bytes of one ggml block (34 for Q8_0, 18 for Q4_0).</summary>
    public int TypeBytes { get; }

    /// <summary>Bytes of one group's 16 positions (keys or values).</summary>
    public int GroupBytes { get; }

    /// <summary>Bytes of one block of 16 positions (keys or values).</summary>
    public int BlockBytes { get; }

    /// <summary>Bytes of one position's row as ggml blocks: RowLength / 32 · TypeBytes (the saved-state form).</summary>
    public int RowBytes => Heads.RowLength / QuantBlock * TypeBytes;

    /// <summary>Bytes the keys (or values) of <paramref name="positions"/> positions take: whole blocks.</summary>
    public long Bytes(int positions) => (long)KvBlockLayout.Blocks(positions) * BlockBytes;

    // Where the 16 positions of block `block` of the group holding KV head kvHead start.
    internal int GroupOffset(int block, int kvHead) => block * BlockBytes + kvHead / GroupHeads * GroupBytes;

    // Within a key group: the scales, then the quants.
    internal int KeyQuantsOffset => GroupBlocks * Lanes * sizeof(ushort);

    // Bytes of one key dimension's 16 quants.
    internal int KeyDimensionBytes => Type == GgmlType.Q8_0 ? Lanes : Lanes / 2;

    /// <summary>Quantizes the key row of <paramref name="position"/> ([RowLength], heads side by side) into <paramref name="keys"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void WriteKey(int position, ReadOnlySpan<float> key, Span<byte> keys)
    {
        CheckRow(key.Length, Heads.RowLength, keys.Length, position);
        Span<byte> block = stackalloc byte[34];
        block = block[..TypeBytes];
        for (int i = 0; i < Heads.RowLength / QuantBlock; i++)
        {
            Quantize(key.Slice(i * QuantBlock, QuantBlock), block);
            SetKeyBlock(keys, position, i, block);
        }
    }

    /// <summary>Quantizes the value row of <paramref name="position"/> into <paramref name="values"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void WriteValue(int position, ReadOnlySpan<float> value, Span<byte> values)
    {
        CheckRow(value.Length, Heads.RowLength, values.Length, position);
        for (int i = 0; i < Heads.RowLength / QuantBlock; i++)
            Quantize(value.Slice(i * QuantBlock, QuantBlock), values.Slice(ValueBlockOffset(position, i), TypeBytes));
    }

    /// <summary>The key row of <paramref name="position"/>, dequantized as ggml dequantizes it.</summary>
    public void ReadKey(int position, ReadOnlySpan<byte> keys, Span<float> key)
    {
        CheckRow(key.Length, Heads.RowLength, keys.Length, position);
        Span<byte> block = stackalloc byte[34];
        block = block[..TypeBytes];
        for (int i = 0; i < Heads.RowLength / QuantBlock; i++)
        {
            GetKeyBlock(keys, position, i, block);
            Dequantize(block, key.Slice(i * QuantBlock, QuantBlock));
        }
    }

    /// <summary>The value row of <paramref name="position"/>, dequantized as ggml dequantizes it.</summary>
    public void ReadValue(int position, ReadOnlySpan<byte> values, Span<float> value)
    {
        CheckRow(value.Length, Heads.RowLength, values.Length, position);
        for (int i = 0; i < Heads.RowLength / QuantBlock; i++)
            Dequantize(values.Slice(ValueBlockOffset(position, i), TypeBytes), value.Slice(i * QuantBlock, QuantBlock));
    }

    /// <summary>The key row of <paramref name="position"/> as its ggml blocks ([<see cref="RowBytes"/>]).</summary>
    public void ReadKeyBlocks(int position, ReadOnlySpan<byte> keys, Span<byte> row)
    {
        CheckRow(row.Length, RowBytes, keys.Length, position);
        for (int i = 0; i < Heads.RowLength / QuantBlock; i++)
            GetKeyBlock(keys, position, i, row.Slice(i * TypeBytes, TypeBytes));
    }

    /// <summary>Stores the key row of <paramref name="position"/> from its ggml blocks.</summary>
    public void WriteKeyBlocks(int position, ReadOnlySpan<byte> row, Span<byte> keys)
    {
        CheckRow(row.Length, RowBytes, keys.Length, position);
        for (int i = 0; i < Heads.RowLength / QuantBlock; i++)
            SetKeyBlock(keys, position, i, row.Slice(i * TypeBytes, TypeBytes));
    }

    /// <summary>The value row of <paramref name="position"/> as its ggml blocks.</summary>
    public void ReadValueBlocks(int position, ReadOnlySpan<byte> values, Span<byte> row)
    {
        CheckRow(row.Length, RowBytes, values.Length, position);
        for (int i = 0; i < Heads.RowLength / QuantBlock; i++)
            values.Slice(ValueBlockOffset(position, i), TypeBytes).CopyTo(row.Slice(i * TypeBytes, TypeBytes));
    }

    /// <summary>Stores the value row of <paramref name="position"/> from its ggml blocks.</summary>
    public void WriteValueBlocks(int position, ReadOnlySpan<byte> row, Span<byte> values)
    {
        CheckRow(row.Length, RowBytes, values.Length, position);
        for (int i = 0; i < Heads.RowLength / QuantBlock; i++)
            row.Slice(i * TypeBytes, TypeBytes).CopyTo(values.Slice(ValueBlockOffset(position, i), TypeBytes));
    }

    // Quant block i of a row lies in group i / GroupBlocks, as its block i % GroupBlocks.
    private int ValueBlockOffset(int position, int i) =>
        position / Lanes * BlockBytes + i / GroupBlocks * GroupBytes + (position % Lanes * GroupBlocks + i % GroupBlocks) * TypeBytes;

    // Gathers ggml block i of a position's key row from the transposed scales and quants.
    private void GetKeyBlock(ReadOnlySpan<byte> keys, int position, int i, Span<byte> block)
    {
        int lane = position % Lanes, kb = i % GroupBlocks;
        var group = keys.Slice(position / Lanes * BlockBytes + i / GroupBlocks * GroupBytes, GroupBytes);
        MemoryMarshal.Write(block, MemoryMarshal.Read<ushort>(group[((kb * Lanes + lane) * sizeof(ushort))..]));
        var quants = group[(KeyQuantsOffset + kb * QuantBlock * KeyDimensionBytes)..];
        var qs = block[sizeof(ushort)..];
        if (Type == GgmlType.Q8_0)
        {
            for (int j = 0; j < QuantBlock; j++)
                qs[j] = quants[j * Lanes + lane];
        }
        else
        {
            for (int j = 0; j < QuantBlock / 2; j++)
                qs[j] = (byte)(Nibble(quants, j, lane) | Nibble(quants, j + QuantBlock / 2, lane) << 4);
        }
    }

    // Scatters ggml block i of a position's key row into the transposed scales and quants.
    private void SetKeyBlock(Span<byte> keys, int position, int i, ReadOnlySpan<byte> block)
    {
        int lane = position % Lanes, kb = i % GroupBlocks;
        var group = keys.Slice(position / Lanes * BlockBytes + i / GroupBlocks * GroupBytes, GroupBytes);
        MemoryMarshal.Write(group[((kb * Lanes + lane) * sizeof(ushort))..], MemoryMarshal.Read<ushort>(block));
        var quants = group[(KeyQuantsOffset + kb * QuantBlock * KeyDimensionBytes)..];
        var qs = block[sizeof(ushort)..];
        if (Type == GgmlType.Q8_0)
        {
            for (int j = 0; j < QuantBlock; j++)
                quants[j * Lanes + lane] = qs[j];
        }
        else
        {
            for (int j = 0; j < QuantBlock; j++)
            {
                int q = j < QuantBlock / 2 ? qs[j] & 0x0F : qs[j - QuantBlock / 2] >> 4;
                ref byte at = ref quants[j * (Lanes / 2) + lane % (Lanes / 2)];
                at = lane < Lanes / 2 ? (byte)((at & 0xF0) | q) : (byte)((at & 0x0F) | q << 4);
            }
        }
    }

    // The 4-bit quant of dimension j (of a key block's 32) at lane.
    private static int Nibble(ReadOnlySpan<byte> quants, int j, int lane)
    {
        byte b = quants[j * (Lanes / 2) + lane % (Lanes / 2)];
        return lane < Lanes / 2 ? b & 0x0F : b >> 4;
    }

    private void Quantize(ReadOnlySpan<float> x, Span<byte> block)
    {
        if (Type == GgmlType.Q8_0)
            Q8_0Block.Quantize(x, MemoryMarshal.Cast<byte, Q8_0Block>(block));
        else
            Q4_0Block.Quantize(x, MemoryMarshal.Cast<byte, Q4_0Block>(block));
    }

    private void Dequantize(ReadOnlySpan<byte> block, Span<float> y)
    {
        if (Type == GgmlType.Q8_0)
            Q8_0Block.Dequantize(MemoryMarshal.Cast<byte, Q8_0Block>(block), y);
        else
            Q4_0Block.Dequantize(MemoryMarshal.Cast<byte, Q4_0Block>(block), y);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void CheckRow(int row, int rowLength, int cache, int position)
    {
        if (row < rowLength || position < 0 || cache < Bytes(position + 1))
            throw new ArgumentException($"A row holds {rowLength} values and the cache must hold position {position}.");
    }

    private static int Gcd(int a, int b) => b == 0 ? a : Gcd(b, a % b);
}

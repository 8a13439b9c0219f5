using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedLM.Kernels.Quants;

/// <summary>
/// How the unsigned quants u = q + o of eight weight rows' blocks sit side by side in one block column of a
/// <see cref="SignedBlockGroups"/> matrix: chunk j of the column is one 256-bit vector whose dword lane r holds row r's
/// u[4j..4j+3], the operand VPDPBUSD multiplies with a broadcast dword of the activation.
/// </summary>
internal unsafe interface IGroupQuants
{
    /// <summary>Bytes of one block column's quants (eight rows of 32).</summary>
    static abstract int QuantBytes { get; }

    /// <summary>Writes a column from <paramref name="u"/>: [8 rows × 32] unsigned quants in element order.</summary>
    static abstract void Pack(byte* u, byte* column);

    /// <summary>Row <paramref name="r"/>'s unsigned quant of element <paramref name="e"/> (the reference path).</summary>
    static abstract int Unsigned(byte* column, int r, int e);

    /// <summary>Chunks k and k + 4 (k &lt; 4) of the column; AVX2 only.</summary>
    static abstract void Chunks(byte* column, int k, out Vector256<byte> low, out Vector256<byte> high);
}

/// <summary>
/// Four-bit codes that are the unsigned quants themselves (Q4_0: u = q + 8 &lt; 16), 128 bytes a column: byte 4r + t of
/// vector k holds row r's element 4k + t in its low nibble and element 16 + 4k + t in its high nibble, as the block's own bytes.
/// </summary>
internal readonly unsafe struct CodeNibbles : IGroupQuants
{
    public static int QuantBytes => 128;

    public static void Pack(byte* u, byte* column)
    {
        // Dword k of row r: its elements 4k..4k+3 in the low nibbles, 16+4k..16+4k+3 in the high ones (every u < 16).
        for (int r = 0; r < 8; r++)
            for (int k = 0; k < 4; k++)
                ((uint*)column)[k * 8 + r] = ((uint*)u)[r * 8 + k] | (((uint*)u)[r * 8 + 4 + k] << 4);
    }

    public static int Unsigned(byte* column, int r, int e) => Code(column, r, e);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Chunks(byte* column, int k, out Vector256<byte> low, out Vector256<byte> high)
    {
        Vector256<byte> v = Avx.LoadVector256(column + k * 32), mask = Vector256.Create((byte)0x0F);
        low = v & mask;
        high = Vector256.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & mask;
    }

    internal static int Code(byte* column, int r, int e)
    {
        byte b = column[((e & 15) >> 2) * 32 + r * 4 + (e & 3)];
        return e < 16 ? b & 15 : b >> 4;
    }
}

/// <summary>
/// Four-bit indices into IQ4_NL's levels (u = level + 128), laid out as <see cref="CodeNibbles"/> and looked up with one shuffle.
/// </summary>
internal readonly unsafe struct LevelNibbles : IGroupQuants
{
    public static int QuantBytes => 128;

    public static void Pack(byte* u, byte* column)
    {
        byte* codes = stackalloc byte[8 * 32];
        for (int e = 0; e < 8 * 32; e++)
            codes[e] = (byte)IQ4NLBlock.Values.IndexOf((sbyte)(u[e] - 128));
        CodeNibbles.Pack(codes, column);
    }

    public static int Unsigned(byte* column, int r, int e) => IQ4NLBlock.Values[CodeNibbles.Code(column, r, e)] + 128;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Chunks(byte* column, int k, out Vector256<byte> low, out Vector256<byte> high)
    {
        Vector128<byte> levels = Vector128.Create((byte)1, 24, 45, 63, 79, 93, 106, 118, 129, 141, 153, 166, 181, 197, 217, 241); // Values + 128
        Vector256<byte> table = Vector256.Create(levels, levels);
        CodeNibbles.Chunks(column, k, out Vector256<byte> lowCodes, out Vector256<byte> highCodes);
        low = Avx2.Shuffle(table, lowCodes);
        high = Avx2.Shuffle(table, highCodes);
    }
}

/// <summary>Eight-bit unsigned quants (Q8_0: u = q + 128), 256 bytes a column: byte 4r + t of vector j is row r's u[4j + t].</summary>
internal readonly unsafe struct ByteQuants : IGroupQuants
{
    public static int QuantBytes => 256;

    public static void Pack(byte* u, byte* column)
    {
        for (int r = 0; r < 8; r++)
            for (int j = 0; j < 8; j++)
                ((uint*)column)[j * 8 + r] = ((uint*)u)[r * 8 + j];
    }

    public static int Unsigned(byte* column, int r, int e) => column[(e >> 2) * 32 + r * 4 + (e & 3)];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Chunks(byte* column, int k, out Vector256<byte> low, out Vector256<byte> high)
    {
        low = Avx.LoadVector256(column + k * 32);
        high = Avx.LoadVector256(column + (k + 4) * 32);
    }
}

/// <summary>
/// Five-bit unsigned quants (Q5_0: u = q + 16 &lt; 32), 160 bytes a column: their low four bits as <see cref="CodeNibbles"/>,
/// then per chunk j a dword whose bit 4r + t is the fifth bit of the element that chunk's byte 4r + t holds, so one
/// shuffle spreads it over the chunk's bytes. The same bytes per row as the file's blocks.
/// </summary>
internal readonly unsafe struct FiveBitCodes : IGroupQuants
{
    public static int QuantBytes => 160;

    public static void Pack(byte* u, byte* column)
    {
        byte* low = stackalloc byte[8 * 32];
        for (int e = 0; e < 8 * 32; e++)
            low[e] = (byte)(u[e] & 15);
        CodeNibbles.Pack(low, column);
        uint* bits = (uint*)(column + 128);
        for (int j = 0; j < 8; j++)
        {
            uint word = 0;
            for (int r = 0; r < 8; r++)
                for (int t = 0; t < 4; t++)
                    word |= (uint)(u[r * 32 + Element(j, t)] >> 4) << (4 * r + t);
            bits[j] = word;
        }
    }

    public static int Unsigned(byte* column, int r, int e)
    {
        int j = e < 16 ? e >> 2 : 4 + ((e - 16) >> 2);
        return CodeNibbles.Code(column, r, e) | (int)((((uint*)(column + 128))[j] >> (4 * r + (e & 3))) & 1) << 4;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Chunks(byte* column, int k, out Vector256<byte> low, out Vector256<byte> high)
    {
        CodeNibbles.Chunks(column, k, out low, out high);
        uint* bits = (uint*)(column + 128);
        Vector256<byte> fifth = Vector256.Create((byte)0x10);
        low |= LegacyDot.BitsToBytes(bits[k]) & fifth;
        high |= LegacyDot.BitsToBytes(bits[k + 4]) & fifth;
    }

    // The element of a row that byte 4r + t of chunk j holds: chunks 0-3 the low halves' 4j + t, 4-7 the high halves'.
    private static int Element(int j, int t) => j < 4 ? 4 * j + t : 16 + 4 * (j - 4) + t;
}

using System.Collections.Immutable;
using System.Runtime.InteropServices;

namespace ManagedLM.Tokenization;

/// <summary>
/// GPT-2's byte ↔ unicode map: printable Latin-1 bytes (! .. ~, ¡ .. ¬, ® .. ÿ) stand for themselves,
/// the other 68 bytes map in order to U+0100 and up, so every byte-level token is printable text.
/// </summary>
internal static class ByteLevelEncoding
{
    // A raw array: the BPE encode loop maps every byte through it, and the JIT drops the bounds check
    // for a static readonly array of known length (an ImmutableArray's would stay).
    [ThreadSafeStatic("filled once in the static constructor, never written after")]
    private static readonly char[] ByteToCharTable = BuildByteToChar();
    // Read while loading a vocabulary only.
    private static readonly ImmutableArray<short> CharToByteTable = ImmutableCollectionsMarshal.AsImmutableArray(BuildCharToByte());

    /// <summary>The char that stands for <paramref name="b"/>.</summary>
    public static char ToChar(byte b) => ByteToCharTable[b];

    /// <summary>The byte a char stands for, or -1 when the char is not in the map.</summary>
    public static int ToByte(int c) => (uint)c < (uint)CharToByteTable.Length ? CharToByteTable[c] : -1;

    private static bool IsPrintable(int b) => b is (>= 0x21 and <= 0x7E) or (>= 0xA1 and <= 0xAC) or (>= 0xAE and <= 0xFF);

    private static char[] BuildByteToChar()
    {
        var map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
            map[b] = IsPrintable(b) ? (char)b : (char)next++;
        return map;
    }

    private static short[] BuildCharToByte()
    {
        var byteToChar = BuildByteToChar();
        var map = new short[byteToChar.Max() + 1];
        Array.Fill(map, (short)-1);
        for (int b = 0; b < 256; b++)
            map[byteToChar[b]] = (short)b;
        return map;
    }
}

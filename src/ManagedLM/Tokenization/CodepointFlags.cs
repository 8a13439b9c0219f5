using System.Globalization;

namespace ManagedLM.Tokenization;

/// <summary>
/// Unicode classes of a code point as llama.cpp's unicode tables define them: one general-category
/// group (Cn → undefined, C* → control, L*, M*, N*, P*, S*, Z* → separator) plus the White_Space
/// property. Zero means "no code point" (outside the text being split).
/// </summary>
[Flags]
internal enum CodepointFlags : ushort
{
    None = 0,
    Undefined = 0x0001,
    Number = 0x0002,
    Letter = 0x0004,
    Separator = 0x0008,
    AccentMark = 0x0010,
    Punctuation = 0x0020,
    Symbol = 0x0040,
    Control = 0x0080,
    Categories = 0x00FF,
    Whitespace = 0x0100,
}

internal static class Codepoints
{
    // A raw array: the pre-tokenizer's splitters look up every ASCII code point here.
    [ThreadSafeStatic("filled once in the static constructor, never written after")]
    private static readonly CodepointFlags[] Ascii = BuildAscii();

    /// <summary>Flags of a code point (0..0x10FFFF); out-of-range values are <see cref="CodepointFlags.Undefined"/>.</summary>
    public static CodepointFlags Flags(int cp) => (uint)cp < 128 ? Ascii[cp] : Compute(cp);

    public static bool IsWhitespace(int cp) => (Flags(cp) & CodepointFlags.Whitespace) != 0;

    private static CodepointFlags[] BuildAscii()
    {
        var table = new CodepointFlags[128];
        for (int cp = 0; cp < 128; cp++)
            table[cp] = Compute(cp);
        return table;
    }

    private static CodepointFlags Compute(int cp)
    {
        if ((uint)cp > 0x10FFFF)
            return CodepointFlags.Undefined;
        var flags = Category(CharUnicodeInfo.GetUnicodeCategory(cp));
        if (IsWhiteSpaceProperty(cp))
            flags |= CodepointFlags.Whitespace;
        return flags;
    }

    // The White_Space property of PropList.txt.
    private static bool IsWhiteSpaceProperty(int cp) =>
        cp is (>= 0x09 and <= 0x0D) or 0x20 or 0x85 or 0xA0 or 0x1680 or (>= 0x2000 and <= 0x200A)
            or 0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000;

    private static CodepointFlags Category(UnicodeCategory c) => c switch
    {
        UnicodeCategory.OtherNotAssigned => CodepointFlags.Undefined,
        UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.PrivateUse or UnicodeCategory.Surrogate => CodepointFlags.Control,
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
            or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => CodepointFlags.Letter,
        UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark => CodepointFlags.AccentMark,
        UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => CodepointFlags.Number,
        UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation
            or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation => CodepointFlags.Punctuation,
        UnicodeCategory.MathSymbol or UnicodeCategory.CurrencySymbol or UnicodeCategory.ModifierSymbol
            or UnicodeCategory.OtherSymbol => CodepointFlags.Symbol,
        _ => CodepointFlags.Separator,
    };

    /// <summary>
    /// Decodes a UTF-16 string into code points; unpaired surrogates become U+FFFD, as llama.cpp's
    /// UTF-8 decoder does for invalid input. Returns the count written into <paramref name="dest"/>
    /// (which needs <c>text.Length</c> entries).
    /// </summary>
    public static int Decode(ReadOnlySpan<char> text, Span<int> dest)
    {
        int n = 0;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                dest[n++] = char.ConvertToUtf32(c, text[i + 1]);
                i++;
            }
            else
            {
                dest[n++] = char.IsSurrogate(c) ? 0xFFFD : c;
            }
        }
        return n;
    }

    /// <summary>Writes the UTF-8 bytes of one code point; returns the count (1..4).</summary>
    public static int EncodeUtf8(int cp, Span<byte> dest)
    {
        if (cp < 0x80)
        {
            dest[0] = (byte)cp;
            return 1;
        }
        if (cp < 0x800)
        {
            dest[0] = (byte)(0xC0 | (cp >> 6));
            dest[1] = (byte)(0x80 | (cp & 0x3F));
            return 2;
        }
        if (cp < 0x10000)
        {
            dest[0] = (byte)(0xE0 | (cp >> 12));
            dest[1] = (byte)(0x80 | ((cp >> 6) & 0x3F));
            dest[2] = (byte)(0x80 | (cp & 0x3F));
            return 3;
        }
        dest[0] = (byte)(0xF0 | (cp >> 18));
        dest[1] = (byte)(0x80 | ((cp >> 12) & 0x3F));
        dest[2] = (byte)(0x80 | ((cp >> 6) & 0x3F));
        dest[3] = (byte)(0x80 | (cp & 0x3F));
        return 4;
    }
}

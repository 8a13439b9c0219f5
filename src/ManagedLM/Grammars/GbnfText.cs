using System.Collections.Immutable;
using System.Globalization;
using System.Text;

namespace ManagedLM.Grammars;

/// <summary>Writes GBNF literals and character classes, and the JSON string escapes of characters.</summary>
internal static class GbnfText
{
    /// <summary>A GBNF string literal matching exactly <paramref name="text"/>.</summary>
    public static string Literal(string text)
    {
        var sb = new StringBuilder(text.Length + 2).Append('"');
        foreach (var rune in text.EnumerateRunes())
        {
            int c = rune.Value;
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c < 0x20 || c == 0x7F) sb.Append("\\x").Append(c.ToString("X2", CultureInfo.InvariantCulture));
                    else sb.Append(rune.ToString());
                    break;
            }
        }
        return sb.Append('"').ToString();
    }

    /// <summary>
    /// A GBNF character class matching the code points of <paramref name="ranges"/> (sorted, disjoint, inclusive).
    /// </summary>
    public static string CharClass(IReadOnlyList<(int Lo, int Hi)> ranges)
    {
        var sb = new StringBuilder("[");
        foreach (var (lo, hi) in ranges)
        {
            AppendClassChar(sb, lo);
            if (hi == lo) continue;
            if (hi > lo + 1) sb.Append('-');
            AppendClassChar(sb, hi);
        }
        return sb.Append(']').ToString();
    }

    /// <summary>
    /// A GBNF negated character class: any character but '"', '\\', control characters, DEL and the code points of
    /// <paramref name="excluded"/> — the characters a JSON string may hold unescaped, less those.
    /// </summary>
    public static string RawCharClassExcept(IEnumerable<int> excluded)
    {
        var sb = new StringBuilder("[^\"\\\\\\x00-\\x1F\\x7F");
        foreach (var c in excluded.Order()) AppendClassChar(sb, c);
        return sb.Append(']').ToString();
    }

    static void AppendClassChar(StringBuilder sb, int c)
    {
        if (c < 0x80 && (char.IsAsciiLetterOrDigit((char)c) || " !#$%&'()*+,./:;<=>?@_`{|}~\"".Contains((char)c)))
            sb.Append((char)c);
        else if (c < 0x100) sb.Append("\\x").Append(c.ToString("X2", CultureInfo.InvariantCulture));
        else if (c < 0x10000) sb.Append("\\u").Append(c.ToString("X4", CultureInfo.InvariantCulture));
        else sb.Append("\\U").Append(c.ToString("X8", CultureInfo.InvariantCulture));
    }

    /// <summary>How code point <paramref name="c"/> is written inside a JSON string: itself, or its escape.</summary>
    public static string JsonStringChar(int c) => c switch
    {
        '"' => "\\\"",
        '\\' => "\\\\",
        '\n' => "\\n",
        '\r' => "\\r",
        '\t' => "\\t",
        '\b' => "\\b",
        '\f' => "\\f",
        < 0x20 => "\\u" + c.ToString("x4", CultureInfo.InvariantCulture),
        _ => char.ConvertFromUtf32(c),
    };

    /// <summary>The JSON string literal (quotes included) of <paramref name="value"/>, escaped as <see cref="JsonStringChar"/> does.</summary>
    public static string JsonString(string value)
    {
        var sb = new StringBuilder(value.Length + 2).Append('"');
        foreach (var rune in value.EnumerateRunes()) sb.Append(JsonStringChar(rune.Value));
        return sb.Append('"').ToString();
    }

    const int MaxCodePoint = 0x10FFFF;

    /// <summary>Sorted, merged copy of code point ranges (inclusive).</summary>
    public static List<(int, int)> Normalize(IEnumerable<(int Lo, int Hi)> ranges)
    {
        var result = new List<(int, int)>();
        foreach (var (lo, hi) in ranges.OrderBy(r => r.Lo))
        {
            if (result.Count > 0 && lo <= result[^1].Item2 + 1)
                result[^1] = (result[^1].Item1, Math.Max(result[^1].Item2, hi));
            else result.Add((lo, hi));
        }
        return result;
    }

    /// <summary>The code points up to U+10FFFF not in <paramref name="ranges"/>.</summary>
    public static List<(int, int)> Complement(IEnumerable<(int Lo, int Hi)> ranges)
    {
        var result = new List<(int, int)>();
        int next = 0;
        foreach (var (lo, hi) in Normalize(ranges))
        {
            if (lo > next) result.Add((next, lo - 1));
            next = Math.Max(next, hi + 1);
        }
        if (next <= MaxCodePoint) result.Add((next, MaxCodePoint));
        return result;
    }

    /// <summary>The code points in both sets.</summary>
    public static List<(int, int)> Intersect(IEnumerable<(int Lo, int Hi)> a, IEnumerable<(int Lo, int Hi)> b) =>
        Complement(Complement(a).Concat(Complement(b)));

    /// <summary>
    /// Characters that may appear unescaped in a JSON string as this project writes them: not '"', '\', a control
    /// character, DEL or a surrogate.
    /// </summary>
    public static readonly ImmutableArray<(int, int)> RawJsonStringChars =
        [(0x20, '"' - 1), ('"' + 1, '\\' - 1), ('\\' + 1, 0x7E), (0x80, 0xD7FF), (0xE000, MaxCodePoint)];
}

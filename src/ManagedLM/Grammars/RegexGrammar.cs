using System.Collections.Immutable;
using System.Globalization;
using System.Text;

namespace ManagedLM.Grammars;

/// <summary>
/// Translates the regular subset of a JSON Schema <c>pattern</c> (ECMA-262 syntax) into a GBNF expression over the
/// characters of a JSON string's contents: each matched character appears as itself or, for <c>"</c>, <c>\</c> and
/// control characters, as its JSON escape. Literals, classes, <c>.</c>, <c>\d \w \s</c> and their negations, groups,
/// alternation, <c>* + ? {m} {m,} {m,n}</c> and the anchors <c>^ $</c> at the ends of the pattern are supported;
/// backreferences, lookaround, word boundaries and Unicode properties are errors. A pattern without <c>^</c> or
/// <c>$</c> matches anywhere in the string, as JSON Schema says.
/// </summary>
internal sealed class RegexGrammar
{
    const int MaxCodePoint = 0x10FFFF;
    static readonly ImmutableArray<(int, int)> Digits = [('0', '9')];
    static readonly ImmutableArray<(int, int)> WordChars = [('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')];
    // ECMA-262 WhiteSpace and LineTerminator.
    static readonly ImmutableArray<(int, int)> SpaceChars =
    [
        (0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A), (0x2028, 0x2029),
        (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000), (0xFEFF, 0xFEFF),
    ];
    static readonly ImmutableArray<(int, int)> LineTerminators = [('\n', '\n'), ('\r', '\r'), (0x2028, 0x2029)];

    readonly string _pattern;
    readonly string _path;
    readonly int _maxRepetition;
    int _pos;
    int _depth;

    RegexGrammar(string pattern, string path, int maxRepetition)
    {
        _pattern = pattern;
        _path = path;
        _maxRepetition = maxRepetition;
    }

    /// <summary>
    /// The GBNF expression for string contents matching <paramref name="pattern"/> ("" for the empty string only);
    /// <paramref name="anyCharRule"/> names the rule for one JSON string character, used where the pattern is not anchored.
    /// </summary>
    public static string ToGbnf(string pattern, string path, string anyCharRule, int maxRepetition)
    {
        var parser = new RegexGrammar(pattern, path, maxRepetition);
        var alternatives = new List<string>();
        bool hasEmpty = false;
        while (true)
        {
            bool startAnchored = parser.Eat('^');
            var sequence = parser.ParseSequence(topLevel: true);
            bool endAnchored = parser.Eat('$');
            var parts = new List<string>();
            if (!startAnchored) parts.Add(anyCharRule + "*");
            if (sequence.Length > 0) parts.Add(sequence);
            if (!endAnchored) parts.Add(anyCharRule + "*");
            AddAlternative(alternatives, ref hasEmpty, string.Join(" ", parts));
            if (parser.AtEnd) break;
            if (!parser.Eat('|')) throw parser.Error($"unexpected '{parser.Peek}'");
        }
        return alternatives.Count == 1 && !hasEmpty ? alternatives[0] : Choice(alternatives, hasEmpty);
    }

    static void AddAlternative(List<string> alternatives, ref bool hasEmpty, string sequence)
    {
        if (sequence.Length == 0) hasEmpty = true;
        else if (!alternatives.Contains(sequence)) alternatives.Add(sequence);
    }

    /// <summary>The alternatives as one group; an empty alternative makes it optional ("" when that is all there is).</summary>
    static string Choice(List<string> alternatives, bool hasEmpty)
    {
        if (alternatives.Count == 0) return "";
        var choice = "(" + string.Join(" | ", alternatives) + ")";
        return hasEmpty ? choice + "?" : choice;
    }

    bool AtEnd => _pos >= _pattern.Length;
    char Peek => _pattern[_pos];

    bool Eat(char c)
    {
        if (AtEnd || _pattern[_pos] != c) return false;
        _pos++;
        return true;
    }

    JsonSchemaException Error(string message) =>
        new(_path, $"pattern \"{_pattern}\" at offset {_pos}: {message}");

    /// <summary>Alternatives up to ')' or the end; an empty alternative makes the whole group optional.</summary>
    string ParseAlternation()
    {
        var alternatives = new List<string>();
        bool hasEmpty = false;
        do AddAlternative(alternatives, ref hasEmpty, ParseSequence(topLevel: false));
        while (Eat('|'));
        return Choice(alternatives, hasEmpty);
    }

    string ParseSequence(bool topLevel)
    {
        var items = new List<string>();
        var literal = new StringBuilder();
        void FlushLiteral()
        {
            if (literal.Length == 0) return;
            items.Add(GbnfText.Literal(literal.ToString()));
            literal.Clear();
        }
        while (!AtEnd && Peek != '|' && Peek != ')')
        {
            if (Peek == '$' && topLevel && (_pos + 1 == _pattern.Length || _pattern[_pos + 1] == '|')) break;
            if (Peek == '^' || Peek == '$') throw Error($"anchor '{Peek}' inside the pattern (only at its start or end)");
            var (atom, atomic, literalChar) = ParseAtom();
            var quantifier = ParseQuantifier();
            if (quantifier is null && literalChar is { } c)
            {
                literal.Append(GbnfText.JsonStringChar(c));
                continue;
            }
            FlushLiteral();
            if (quantifier is null) { if (atom.Length > 0) items.Add(atom); }
            else if (atom.Length > 0) items.Add((atomic ? atom : "(" + atom + ")") + quantifier);
        }
        FlushLiteral();
        return string.Join(" ", items);
    }

    /// <summary>
    /// One atom, whether a quantifier may follow it as it is, and for a plain literal character its code point (so runs
    /// of them merge into one literal).
    /// </summary>
    (string Expression, bool Atomic, int? LiteralChar) ParseAtom()
    {
        char c = Peek;
        switch (c)
        {
            case '(':
                var group = ParseGroup();
                return (group, !group.EndsWith('?'), null);
            case '[':
                _pos++;
                return (CharSet(ParseClass()), true, null);
            case '.':
                _pos++;
                return (CharSet(GbnfText.Complement(LineTerminators)), true, null);
            case '\\':
                _pos++;
                return ParseEscape(inClass: false) switch
                {
                    (int single, null) => (GbnfText.Literal(GbnfText.JsonStringChar(single)), true, single),
                    (_, var set) => (CharSet(set!), true, null),
                };
            case '*' or '+' or '?':
                throw Error($"quantifier '{c}' with nothing to repeat");
            default:
                if (c == '{' && TryReadBraces(out _, out _, consume: false)) throw Error("quantifier '{' with nothing to repeat");
                int codePoint = ReadCodePoint();
                return (GbnfText.Literal(GbnfText.JsonStringChar(codePoint)), true, codePoint);
        }
    }

    string ParseGroup()
    {
        _pos++;
        if (++_depth > 64) throw Error("groups nested deeper than 64");
        if (Eat('?'))
        {
            if (Eat(':')) { }
            else if (!AtEnd && Peek == '<' && _pos + 1 < _pattern.Length && _pattern[_pos + 1] is not '=' and not '!')
            {
                int close = _pattern.IndexOf('>', _pos);
                if (close < 0) throw Error("unterminated group name");
                _pos = close + 1;
            }
            else throw Error("lookaround and other '(?' groups are not regular and are not supported");
        }
        var inner = ParseAlternation();
        if (!Eat(')')) throw Error("missing ')'");
        _depth--;
        return inner;
    }

    string? ParseQuantifier()
    {
        if (AtEnd) return null;
        string? quantifier = null;
        switch (Peek)
        {
            case '*': _pos++; quantifier = "*"; break;
            case '+': _pos++; quantifier = "+"; break;
            case '?': _pos++; quantifier = "?"; break;
            case '{':
                if (!TryReadBraces(out int min, out int? max, consume: true)) return null;
                if (min > _maxRepetition || max > _maxRepetition)
                    throw Error($"repetition count above {_maxRepetition}");
                if (max < min) throw Error("repetition {m,n} with n < m");
                quantifier = max is null ? $"{{{min},}}" : max == min ? $"{{{min}}}" : $"{{{min},{max}}}";
                break;
        }
        if (quantifier is null) return null;
        Eat('?'); // lazy: same language
        if (!AtEnd && Peek is '*' or '+' or '?' || (!AtEnd && Peek == '{' && TryReadBraces(out _, out _, consume: false)))
            throw Error("nested quantifier");
        return quantifier;
    }

    /// <summary>Reads "{m}", "{m,}" or "{m,n}" at the cursor; false (cursor unchanged) when it is a literal brace.</summary>
    bool TryReadBraces(out int min, out int? max, bool consume)
    {
        min = 0;
        max = null;
        int close = _pattern.IndexOf('}', _pos);
        if (close < 0) return false;
        var body = _pattern.AsSpan(_pos + 1, close - _pos - 1);
        int comma = body.IndexOf(',');
        var first = comma < 0 ? body : body[..comma];
        if (!TryCount(first, out min)) return false;
        if (comma < 0) max = min;
        else if (comma < body.Length - 1)
        {
            if (!TryCount(body[(comma + 1)..], out int upper)) return false;
            max = upper;
        }
        if (consume) _pos = close + 1;
        return true;
    }

    static bool TryCount(ReadOnlySpan<char> digits, out int value)
    {
        value = 0;
        if (digits.Length == 0) return false;
        foreach (var d in digits) if (!char.IsAsciiDigit(d)) return false;
        // Counts beyond int saturate; the caller's bound rejects them.
        value = digits.Length > 9 ? int.MaxValue : int.Parse(digits, CultureInfo.InvariantCulture);
        return true;
    }

    /// <summary>After a backslash: a single code point, or a character set for \d \w \s and their negations.</summary>
    (int Single, List<(int, int)>? Set) ParseEscape(bool inClass)
    {
        if (AtEnd) throw Error("pattern ends with '\\'");
        char e = _pattern[_pos++];
        switch (e)
        {
            case 'd': return (0, [.. Digits]);
            case 'D': return (0, GbnfText.Complement(Digits));
            case 'w': return (0, [.. WordChars]);
            case 'W': return (0, GbnfText.Complement(WordChars));
            case 's': return (0, [.. SpaceChars]);
            case 'S': return (0, GbnfText.Complement(SpaceChars));
            case 't': return ('\t', null);
            case 'n': return ('\n', null);
            case 'r': return ('\r', null);
            case 'f': return ('\f', null);
            case 'v': return ('\v', null);
            case '0' when AtEnd || !char.IsAsciiDigit(Peek): return (0, null);
            case 'b' when inClass: return ('\b', null);
            case 'x': return (ReadHex(2), null);
            case 'u':
                if (Eat('{'))
                {
                    int close = _pattern.IndexOf('}', _pos);
                    if (close < 0 || close - _pos is 0 or > 6) throw Error("bad \\u{...} escape");
                    int value = ReadHex(close - _pos);
                    _pos++;
                    if (value > MaxCodePoint) throw Error("\\u{...} beyond U+10FFFF");
                    return (value, null);
                }
                return (ReadHex(4), null);
            case 'b' or 'B': throw Error($"word boundary '\\{e}' is not supported");
            case >= '1' and <= '9': throw Error("backreferences are not regular and are not supported");
            case 'k': throw Error("named backreferences are not regular and are not supported");
            case 'p' or 'P': throw Error($"Unicode property escapes '\\{e}' are not supported");
            case 'c': throw Error("control escapes '\\c' are not supported");
            default:
                if (char.IsAsciiLetterOrDigit(e)) throw Error($"unknown escape '\\{e}'");
                _pos--;
                return (ReadCodePoint(), null);
        }
    }

    int ReadHex(int count)
    {
        if (_pos + count > _pattern.Length) throw Error("truncated hex escape");
        var digits = _pattern.AsSpan(_pos, count);
        if (!int.TryParse(digits, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int value))
            throw Error($"bad hex escape '{digits}'");
        _pos += count;
        return value;
    }

    int ReadCodePoint()
    {
        char c = _pattern[_pos++];
        if (char.IsHighSurrogate(c) && !AtEnd && char.IsLowSurrogate(Peek)) return char.ConvertToUtf32(c, _pattern[_pos++]);
        if (char.IsSurrogate(c)) throw Error("unpaired surrogate");
        return c;
    }

    /// <summary>The set of a bracket class, after its '['.</summary>
    List<(int, int)> ParseClass()
    {
        bool negated = Eat('^');
        var ranges = new List<(int, int)>();
        while (true)
        {
            if (AtEnd) throw Error("missing ']'");
            if (Eat(']')) break; // as in ECMA-262, "[]" matches nothing and "[^]" anything
            var (lo, loSet) = ClassAtom();
            if (loSet is not null) { ranges.AddRange(loSet); continue; }
            if (!AtEnd && Peek == '-' && _pos + 1 < _pattern.Length && _pattern[_pos + 1] != ']')
            {
                _pos++;
                var (hi, hiSet) = ClassAtom();
                if (hiSet is not null) throw Error("a class escape cannot end a range");
                if (hi < lo) throw Error("range out of order in character class");
                ranges.Add((lo, hi));
            }
            else ranges.Add((lo, lo));
        }
        var set = GbnfText.Normalize(ranges);
        return negated ? GbnfText.Complement(set) : set;
    }

    (int Single, List<(int, int)>? Set) ClassAtom()
    {
        if (Eat('\\')) return ParseEscape(inClass: true);
        return (ReadCodePoint(), null);
    }

    /// <summary>
    /// A set of characters as they appear in JSON string contents: printable ones raw (one class), and '"', '\' and the
    /// control characters that have short escapes as those escapes. Other control characters and characters beyond
    /// U+FFFF are left out (never produced).
    /// </summary>
    string CharSet(List<(int, int)> set)
    {
        // Basic-plane characters only: validators that run patterns over UTF-16 code units agree with those that
        // run them over code points on these.
        var raw = GbnfText.Intersect(GbnfText.Intersect(set, GbnfText.RawJsonStringChars), [(0, 0xFFFF)]);
        var alternatives = new List<string>();
        if (raw.Count > 0) alternatives.Add(GbnfText.CharClass(raw));
        foreach (int c in (ReadOnlySpan<int>)['"', '\\', '\b', '\t', '\n', '\f', '\r'])
            if (set.Any(r => r.Item1 <= c && c <= r.Item2)) alternatives.Add(GbnfText.Literal(GbnfText.JsonStringChar(c)));
        if (alternatives.Count == 0) throw Error("character class matches no character");
        return alternatives.Count == 1 ? alternatives[0] : "(" + string.Join(" | ", alternatives) + ")";
    }
}

using System.Globalization;

namespace ManagedLM.Grammars;

/// <summary>
/// Reads GBNF text into rules, lowering groups and repetitions to generated rules as llama.cpp does
/// (<c>x{2,4}</c> is <c>x x r2</c> with <c>r2 ::= x r1 |</c> and <c>r1 ::= x |</c>; <c>x*</c> is <c>r ::= x r |</c>).
/// </summary>
internal sealed class GbnfParser
{
    /// <summary>Deepest nesting of parentheses.</summary>
    internal const int MaxNesting = 64;
    /// <summary>Largest repetition bound.</summary>
    internal const int MaxRepetition = 100_000;
    /// <summary>Most elements (characters, classes, rule references, alternative ends) after lowering.</summary>
    internal const int MaxElements = 1 << 20;

    private readonly string _text;
    private int _pos;
    private readonly Dictionary<string, int> _ruleIds = new(StringComparer.Ordinal);
    private readonly List<string> _names = [];
    private readonly List<List<List<GrammarElement>>?> _rules = [];
    // Where each rule is defined (generated rules: where their group or repetition is), or first referenced while undefined.
    private readonly List<int> _places = [];
    private readonly List<int> _generatedCount = [];
    private readonly List<int[]> _classes = [];
    private int _elementCount;

    public GbnfParser(string text) => _text = text;

    public Grammar Parse(string root)
    {
        if (_text.StartsWith('\uFEFF'))
            _pos = 1;
        SkipSpace(newlineOk: true);
        while (_pos < _text.Length)
            ParseRule();
        for (int r = 0; r < _rules.Count; r++)
        {
            if (_rules[r] is null)
                throw Error($"Undefined rule '{_names[r]}'", _places[r]);
        }
        if (!_ruleIds.TryGetValue(root, out int rootId))
            throw new GrammarException($"The grammar has no rule '{root}' (the root rule).");
        var rules = _rules.Select(r => r!).ToArray();
        int leftRecursive = GrammarChecks.FindLeftRecursion(rules);
        if (leftRecursive >= 0)
        {
            // Generated rules are named written_N...: name the written rule (written names have no '_').
            string written = _names[leftRecursive].Split('_')[0];
            throw Error($"Rule '{written}' is left-recursive: it can reach itself without matching a character", _places[_ruleIds[written]]);
        }
        return new Grammar([.. _names], rules, _classes, rootId);
    }

    private void ParseRule()
    {
        int start = _pos;
        string name = ParseName("a rule name");
        SkipSpace(newlineOk: false);
        if (string.CompareOrdinal(_text, _pos, "::=", 0, 3) != 0)
            throw Error($"Expected '::=' after rule name '{name}', found {Describe(_pos)}", _pos);
        _pos += 3;
        SkipSpace(newlineOk: true);
        int rule = DefineRule(name, start);
        ParseAlternates(rule, nested: false, depth: 0);
        if (Peek(0) == '\r')
            _pos += Peek(1) == '\n' ? 2 : 1;
        else if (Peek(0) == '\n')
            _pos++;
        else if (_pos < _text.Length)
            throw Error($"Expected the end of the line after rule '{name}', found {Describe(_pos)}", _pos);
        SkipSpace(newlineOk: true);
    }

    private void ParseAlternates(int rule, bool nested, int depth)
    {
        var alternatives = new List<List<GrammarElement>> { ParseSequence(rule, nested, depth) };
        while (Peek(0) == '|')
        {
            _pos++;
            SkipSpace(newlineOk: true);
            alternatives.Add(ParseSequence(rule, nested, depth));
        }
        _rules[rule] = alternatives;
        Count(alternatives.Count);
    }

    private List<GrammarElement> ParseSequence(int rule, bool nested, int depth)
    {
        var sequence = new List<GrammarElement>();
        int lastStart = -1;
        while (_pos < _text.Length)
        {
            char c = _text[_pos];
            int at = _pos;
            if (c == '"')
            {
                lastStart = sequence.Count;
                _pos++;
                while (Peek(0) != '"')
                {
                    if (_pos >= _text.Length)
                        throw Error("Unterminated string literal", at);
                    Add(sequence, new GrammarElement(GrammarElementKind.Char, ParseChar()));
                }
                _pos++;
                if (lastStart == sequence.Count)
                    lastStart = -1;
            }
            else if (c == '[')
            {
                lastStart = sequence.Count;
                Add(sequence, ParseClass());
            }
            else if (IsWordChar(c))
            {
                lastStart = sequence.Count;
                Add(sequence, new GrammarElement(GrammarElementKind.RuleRef, ReferenceRule(ParseName("a rule name"), at)));
            }
            else if (c == '(')
            {
                if (depth + 1 > MaxNesting)
                    throw Error($"Parentheses nest deeper than {MaxNesting}", at);
                _pos++;
                SkipSpace(newlineOk: true);
                int group = GenerateRule(rule, at);
                ParseAlternates(group, nested: true, depth + 1);
                if (Peek(0) != ')')
                    throw Error($"Expected ')' to close the '(' at line {LineOf(at)}, column {ColumnOf(at)}, found {Describe(_pos)}", _pos);
                _pos++;
                lastStart = sequence.Count;
                Add(sequence, new GrammarElement(GrammarElementKind.RuleRef, group));
            }
            else if (c == '.')
            {
                lastStart = sequence.Count;
                _pos++;
                Add(sequence, new GrammarElement(GrammarElementKind.Class, AddClass([0, Grammar.MaxCodePoint])));
            }
            else if (c is '*' or '+' or '?')
            {
                _pos++;
                Repeat(sequence, lastStart, rule, at, c == '+' ? 1 : 0, c == '?' ? 1 : -1);
            }
            else if (c == '{')
            {
                _pos++;
                var (min, max) = ParseBounds(at);
                Repeat(sequence, lastStart, rule, at, min, max);
            }
            else if (c == '<' && Peek(1) == '[' || c == '!' && Peek(1) == '<')
            {
                throw Error("Token references (<[id]>, !<[id]>) are not supported: a grammar matches text", at);
            }
            else
            {
                break;
            }
            SkipSpace(nested);
        }
        return sequence;
    }

    private (int Min, int Max) ParseBounds(int at)
    {
        SkipSpace(newlineOk: true);
        int min = ParseInt(at);
        SkipSpace(newlineOk: true);
        int max;
        if (Peek(0) == '}')
        {
            max = min;
        }
        else if (Peek(0) == ',')
        {
            _pos++;
            SkipSpace(newlineOk: true);
            max = IsDigit(Peek(0)) ? ParseInt(at) : -1;
            SkipSpace(newlineOk: true);
            if (Peek(0) != '}')
                throw Error($"Expected '}}' to close the repetition, found {Describe(_pos)}", _pos);
        }
        else
        {
            throw Error($"Expected ',' or '}}' in the repetition, found {Describe(_pos)}", _pos);
        }
        _pos++;
        if (max >= 0 && max < min)
            throw Error($"Bad repetition bounds {{{min},{max}}}: the maximum is below the minimum", at);
        return (min, max);
    }

    private int ParseInt(int at)
    {
        int start = _pos;
        while (IsDigit(Peek(0)))
            _pos++;
        if (_pos == start)
            throw Error($"Expected a number in the repetition, found {Describe(_pos)}", _pos);
        if (_pos - start > 9 || int.Parse(_text.AsSpan(start, _pos - start), CultureInfo.InvariantCulture) > MaxRepetition)
            throw Error($"Repetition bound {_text[start.._pos]} is larger than {MaxRepetition}", at);
        return int.Parse(_text.AsSpan(start, _pos - start), CultureInfo.InvariantCulture);
    }

    /// <summary>Lowers <c>item{min,max}</c> (max -1: unbounded) where item is <paramref name="sequence"/>[lastStart..].</summary>
    private void Repeat(List<GrammarElement> sequence, int lastStart, int rule, int at, int min, int max)
    {
        if (lastStart < 0 || lastStart >= sequence.Count)
            throw Error($"'{_text[at]}' has nothing before it to repeat", at);
        var item = sequence.GetRange(lastStart, sequence.Count - lastStart);
        int optional = max < 0 ? 1 : max - min;
        long added = (long)item.Count * Math.Max(min - 1, 0) + (long)optional * (item.Count + 4);
        if (_elementCount + added > MaxElements)
            throw Error($"The grammar expands to more than {MaxElements} elements (repetitions are copied out)", at);
        if (min == 0)
            sequence.RemoveRange(lastStart, item.Count);
        for (int i = 1; i < min; i++)
            AddRange(sequence, item);
        int previous = -1;
        for (int i = 0; i < optional; i++)
        {
            int id = GenerateRule(rule, at);
            var repeated = new List<GrammarElement>(item);
            if (max < 0)
                repeated.Add(new GrammarElement(GrammarElementKind.RuleRef, id));
            else if (i > 0)
                repeated.Add(new GrammarElement(GrammarElementKind.RuleRef, previous));
            _rules[id] = [repeated, []];
            Count(repeated.Count + 2);
            previous = id;
        }
        if (optional > 0)
            Add(sequence, new GrammarElement(GrammarElementKind.RuleRef, previous));
    }

    private GrammarElement ParseClass()
    {
        int at = _pos;
        _pos++;
        bool negated = Peek(0) == '^';
        if (negated)
            _pos++;
        var ranges = new List<(int Lo, int Hi)>();
        while (Peek(0) != ']')
        {
            if (_pos >= _text.Length)
                throw Error("Unterminated character class", at);
            int rangeAt = _pos;
            int lo = ParseChar(), hi = lo;
            if (Peek(0) == '-' && _pos + 1 < _text.Length && Peek(1) != ']')
            {
                _pos++;
                hi = ParseChar();
                if (hi < lo)
                    throw Error($"Character range {_text[rangeAt.._pos]} is reversed", rangeAt);
            }
            ranges.Add((lo, hi));
        }
        _pos++;
        if (ranges.Count == 0 && !negated)
            throw Error("Empty character class []", at);
        int[] pairs = Normalize(ranges, negated);
        if (pairs.Length == 2 && pairs[0] == pairs[1])
            return new GrammarElement(GrammarElementKind.Char, pairs[0]);
        if (pairs.Length == 0)
            throw Error("Character class matches no character", at);
        return new GrammarElement(GrammarElementKind.Class, AddClass(pairs));
    }

    /// <summary>Sorted, merged (lo, hi) pairs; the complement within [0, U+10FFFF] when <paramref name="negated"/>.</summary>
    private static int[] Normalize(List<(int Lo, int Hi)> ranges, bool negated)
    {
        ranges.Sort();
        var merged = new List<int>();
        foreach (var (lo, hi) in ranges)
        {
            if (merged.Count > 0 && lo <= merged[^1] + 1)
                merged[^1] = Math.Max(merged[^1], hi);
            else
                merged.AddRange([lo, hi]);
        }
        if (!negated)
            return [.. merged];
        var complement = new List<int>();
        int next = 0;
        for (int i = 0; i < merged.Count; i += 2)
        {
            if (merged[i] > next)
                complement.AddRange([next, merged[i] - 1]);
            next = merged[i + 1] + 1;
        }
        if (next <= Grammar.MaxCodePoint)
            complement.AddRange([next, Grammar.MaxCodePoint]);
        return [.. complement];
    }

    private int AddClass(int[] pairs)
    {
        _classes.Add(pairs);
        Count(pairs.Length);
        return _classes.Count - 1;
    }

    /// <summary>One character of a literal or class: an escape or a code point (surrogate pairs joined).</summary>
    private int ParseChar()
    {
        int at = _pos;
        if (_pos >= _text.Length)
            throw Error("Unexpected end of the grammar", _pos);
        char c = _text[_pos];
        if (c != '\\')
        {
            if (char.IsHighSurrogate(c) && _pos + 1 < _text.Length && char.IsLowSurrogate(_text[_pos + 1]))
            {
                _pos += 2;
                return char.ConvertToUtf32(c, _text[_pos - 1]);
            }
            if (char.IsSurrogate(c))
                throw Error("Unpaired surrogate in the grammar text", at);
            _pos++;
            return c;
        }
        if (_pos + 1 >= _text.Length)
            throw Error("Unexpected end of the grammar after '\\'", at);
        char escape = _text[_pos + 1];
        _pos += 2;
        switch (escape)
        {
            case 'n': return '\n';
            case 'r': return '\r';
            case 't': return '\t';
            case '\\': case '"': case '[': case ']': return escape;
            case 'x': return ParseHex(2, at);
            case 'u': return ParseHex(4, at);
            case 'U': return ParseHex(8, at);
            default:
                throw Error($"Unknown escape '\\{escape}'", at);
        }
    }

    private int ParseHex(int digits, int at)
    {
        long value = 0;
        for (int i = 0; i < digits; i++)
        {
            if (!char.IsAsciiHexDigit(Peek(0)))
                throw Error($"Escape '{_text[at.._pos]}' needs {digits} hex digits", at);
            value = value * 16 + int.Parse(_text.AsSpan(_pos, 1), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
            _pos++;
        }
        if (value > Grammar.MaxCodePoint)
            throw Error($"Escape '{_text[at.._pos]}' is beyond U+10FFFF", at);
        if (value is >= 0xD800 and <= 0xDFFF)
            throw Error($"Escape '{_text[at.._pos]}' is a surrogate, not a character", at);
        return (int)value;
    }

    private string ParseName(string what)
    {
        int start = _pos;
        while (_pos < _text.Length && IsWordChar(_text[_pos]))
            _pos++;
        if (_pos == start)
            throw Error($"Expected {what}, found {Describe(_pos)}", _pos);
        return _text[start.._pos];
    }

    private int ReferenceRule(string name, int at)
    {
        if (_ruleIds.TryGetValue(name, out int id))
            return id;
        return NewRule(name, at, defined: false);
    }

    private int DefineRule(string name, int at)
    {
        if (_ruleIds.TryGetValue(name, out int id))
        {
            if (_rules[id] is not null)
                throw Error($"Rule '{name}' is defined twice (first at line {LineOf(_places[id])}, column {ColumnOf(_places[id])})", at);
            _places[id] = at;
            return id;
        }
        return NewRule(name, at, defined: true);
    }

    private int GenerateRule(int parent, int at)
    {
        // The generated name cannot clash with a written one: GBNF names have no '_'.
        _generatedCount[parent]++;
        return NewRule($"{_names[parent]}_{_generatedCount[parent]}", at, defined: true);
    }

    private int NewRule(string name, int at, bool defined)
    {
        int id = _rules.Count;
        _ruleIds[name] = id;
        _names.Add(name);
        _rules.Add(defined ? [] : null);
        _places.Add(at);
        _generatedCount.Add(0);
        Count(1);
        return id;
    }

    private void Add(List<GrammarElement> sequence, GrammarElement element)
    {
        sequence.Add(element);
        Count(1);
    }

    private void AddRange(List<GrammarElement> sequence, List<GrammarElement> elements)
    {
        sequence.AddRange(elements);
        Count(elements.Count);
    }

    private void Count(int elements)
    {
        _elementCount += elements;
        if (_elementCount > MaxElements)
            throw Error($"The grammar expands to more than {MaxElements} elements", Math.Min(_pos, _text.Length));
    }

    private void SkipSpace(bool newlineOk)
    {
        while (_pos < _text.Length)
        {
            char c = _text[_pos];
            if (c is ' ' or '\t' || newlineOk && c is '\r' or '\n')
            {
                _pos++;
            }
            else if (c == '#')
            {
                while (_pos < _text.Length && _text[_pos] is not ('\r' or '\n'))
                    _pos++;
            }
            else
            {
                break;
            }
        }
    }

    private char Peek(int ahead) => _pos + ahead < _text.Length ? _text[_pos + ahead] : '\0';

    private static bool IsWordChar(char c) => c is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9' or '-';

    private static bool IsDigit(char c) => c is >= '0' and <= '9';

    private string Describe(int at) =>
        at >= _text.Length ? "the end of the grammar"
        : _text[at] == '\n' || _text[at] == '\r' ? "the end of the line"
        : $"'{_text[at]}'";

    private int LineOf(int at)
    {
        int line = 1;
        for (int i = 0; i < at && i < _text.Length; i++)
        {
            if (_text[i] == '\n')
                line++;
        }
        return line;
    }

    private int ColumnOf(int at)
    {
        int lineStart = at > 0 ? _text.LastIndexOf('\n', Math.Min(at, _text.Length) - 1) + 1 : 0;
        return at - lineStart + 1;
    }

    private GrammarException Error(string problem, int at) => new(problem, LineOf(at), ColumnOf(at));
}

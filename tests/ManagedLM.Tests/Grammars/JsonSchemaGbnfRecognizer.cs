using System.Globalization;
using System.Text;

namespace ManagedLM.Tests.Grammars;

/// <summary>
/// Test-only GBNF recognizer, independent of the library: parses grammar text into rules and decides membership by
/// computing, for each node and start position, every position where a match can end (memoized per rule and position).
/// Enough for grammars without left recursion, which is all a schema grammar may contain. Also samples random
/// sentences, steering to the shortest derivations once deep so sampling always ends.
/// </summary>
internal sealed class JsonSchemaGbnfRecognizer
{
    abstract record Node;
    sealed record Alternatives(List<Node> Options) : Node;
    sealed record Sequence(List<Node> Items) : Node;
    sealed record Literal(int[] CodePoints) : Node;
    sealed record CharClass(List<(int Lo, int Hi)> Ranges, bool Negated) : Node;
    sealed record AnyChar : Node;
    sealed record RuleRef(string Name) : Node;
    sealed record Repeat(Node Item, int Min, int? Max) : Node;

    readonly Dictionary<string, Node> _rules = new(StringComparer.Ordinal);
    readonly string _text;
    int _pos;

    public JsonSchemaGbnfRecognizer(string grammar)
    {
        _text = grammar;
        SkipSpace(newlines: true);
        while (_pos < _text.Length)
        {
            var name = ReadName();
            SkipSpace(newlines: false);
            Expect("::=");
            if (_rules.ContainsKey(name)) throw new FormatException($"rule '{name}' defined twice");
            _rules[name] = ParseAlternatives(topLevel: true);
            SkipSpace(newlines: true);
        }
        foreach (var rule in _rules.Values) CheckRefs(rule);
        if (!_rules.ContainsKey("root")) throw new FormatException("no root rule");
    }

    public IReadOnlyCollection<string> RuleNames => _rules.Keys;

    // ---- parsing ----

    void SkipSpace(bool newlines)
    {
        while (_pos < _text.Length)
        {
            char c = _text[_pos];
            if (c == '#') { while (_pos < _text.Length && _text[_pos] != '\n') _pos++; }
            else if (c is ' ' or '\t' || (newlines && c is '\n' or '\r')) _pos++;
            else break;
        }
    }

    void Expect(string token)
    {
        if (string.CompareOrdinal(_text, _pos, token, 0, token.Length) != 0) throw new FormatException($"expected '{token}' at {_pos}");
        _pos += token.Length;
    }

    string ReadName()
    {
        int start = _pos;
        while (_pos < _text.Length && (char.IsAsciiLetterOrDigit(_text[_pos]) || _text[_pos] is '-' or '_')) _pos++;
        if (_pos == start) throw new FormatException($"expected a rule name at {_pos}: '{_text[_pos..Math.Min(_text.Length, _pos + 20)]}'");
        return _text[start.._pos];
    }

    bool AtRuleStart()
    {
        int p = _pos;
        while (p < _text.Length && (char.IsAsciiLetterOrDigit(_text[p]) || _text[p] is '-' or '_')) p++;
        if (p == _pos) return false;
        while (p < _text.Length && _text[p] is ' ' or '\t') p++;
        return string.CompareOrdinal(_text, p, "::=", 0, 3) == 0;
    }

    Node ParseAlternatives(bool topLevel)
    {
        var options = new List<Node> { ParseSequence(topLevel) };
        while (_pos < _text.Length && _text[_pos] == '|')
        {
            _pos++;
            options.Add(ParseSequence(topLevel));
        }
        return options.Count == 1 ? options[0] : new Alternatives(options);
    }

    Node ParseSequence(bool topLevel)
    {
        var items = new List<Node>();
        while (true)
        {
            SkipSpace(newlines: !topLevel);
            if (topLevel && _pos < _text.Length && _text[_pos] is '\n' or '\r')
            {
                // A rule continues on the next line unless that line starts a new rule.
                int save = _pos;
                SkipSpace(newlines: true);
                if (_pos >= _text.Length || AtRuleStart()) { _pos = save; break; }
                continue;
            }
            if (_pos >= _text.Length || _text[_pos] is '|' or ')') break;
            var atom = ParseAtom();
            items.Add(ParseQuantifiers(atom));
        }
        return items.Count == 1 ? items[0] : new Sequence(items);
    }

    Node ParseQuantifiers(Node atom)
    {
        while (_pos < _text.Length)
        {
            char c = _text[_pos];
            if (c == '*') { _pos++; atom = new Repeat(atom, 0, null); }
            else if (c == '+') { _pos++; atom = new Repeat(atom, 1, null); }
            else if (c == '?') { _pos++; atom = new Repeat(atom, 0, 1); }
            else if (c == '{')
            {
                int close = _text.IndexOf('}', _pos);
                var body = _text[(_pos + 1)..close];
                _pos = close + 1;
                int comma = body.IndexOf(',');
                int min = int.Parse(comma < 0 ? body : body[..comma], CultureInfo.InvariantCulture);
                int? max = comma < 0 ? min : comma == body.Length - 1 ? null : int.Parse(body[(comma + 1)..], CultureInfo.InvariantCulture);
                atom = new Repeat(atom, min, max);
            }
            else break;
        }
        return atom;
    }

    Node ParseAtom()
    {
        char c = _text[_pos];
        if (c == '"')
        {
            _pos++;
            var codePoints = new List<int>();
            while (_text[_pos] != '"') codePoints.Add(ReadChar());
            _pos++;
            return new Literal([.. codePoints]);
        }
        if (c == '[')
        {
            _pos++;
            bool negated = _pos < _text.Length && _text[_pos] == '^';
            if (negated) _pos++;
            var ranges = new List<(int, int)>();
            while (_text[_pos] != ']')
            {
                int lo = ReadChar();
                int hi = lo;
                if (_text[_pos] == '-' && _text[_pos + 1] != ']')
                {
                    _pos++;
                    hi = ReadChar();
                }
                ranges.Add((lo, hi));
            }
            _pos++;
            return new CharClass(ranges, negated);
        }
        if (c == '.') { _pos++; return new AnyChar(); }
        if (c == '(')
        {
            _pos++;
            var inner = ParseAlternatives(topLevel: false);
            SkipSpace(newlines: true);
            Expect(")");
            return inner;
        }
        return new RuleRef(ReadName());
    }

    int ReadChar()
    {
        char c = _text[_pos++];
        if (c != '\\')
        {
            if (char.IsHighSurrogate(c)) return char.ConvertToUtf32(c, _text[_pos++]);
            return c;
        }
        char e = _text[_pos++];
        int Hex(int n)
        {
            int v = int.Parse(_text.AsSpan(_pos, n), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
            _pos += n;
            return v;
        }
        return e switch
        {
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'x' => Hex(2),
            'u' => Hex(4),
            'U' => Hex(8),
            _ => e,
        };
    }

    void CheckRefs(Node node)
    {
        switch (node)
        {
            case RuleRef r when !_rules.ContainsKey(r.Name): throw new FormatException($"undefined rule '{r.Name}'");
            case Alternatives a: a.Options.ForEach(CheckRefs); break;
            case Sequence s: s.Items.ForEach(CheckRefs); break;
            case Repeat r: CheckRefs(r.Item); break;
        }
    }

    // ---- recognizing ----

    /// <summary>Whether the whole of <paramref name="input"/> derives from <paramref name="rule"/>.</summary>
    public bool Accepts(string input, string rule = "root")
    {
        var codePoints = input.EnumerateRunes().Select(r => r.Value).ToArray();
        var memo = new Dictionary<(string, int), HashSet<int>>();
        return Ends(new RuleRef(rule), codePoints, 0, memo).Contains(codePoints.Length);
    }

    HashSet<int> Ends(Node node, int[] input, int start, Dictionary<(string, int), HashSet<int>> memo)
    {
        switch (node)
        {
            case Literal literal:
                if (start + literal.CodePoints.Length > input.Length) return [];
                for (int i = 0; i < literal.CodePoints.Length; i++)
                    if (input[start + i] != literal.CodePoints[i]) return [];
                return [start + literal.CodePoints.Length];
            case CharClass cls:
                if (start >= input.Length) return [];
                bool inside = cls.Ranges.Any(r => r.Lo <= input[start] && input[start] <= r.Hi);
                return inside != cls.Negated ? [start + 1] : [];
            case AnyChar:
                return start < input.Length ? [start + 1] : [];
            case RuleRef reference:
                if (memo.TryGetValue((reference.Name, start), out var known)) return known;
                memo[(reference.Name, start)] = []; // left recursion finds nothing
                var result = Ends(_rules[reference.Name], input, start, memo);
                memo[(reference.Name, start)] = result;
                return result;
            case Alternatives alternatives:
                var union = new HashSet<int>();
                foreach (var option in alternatives.Options) union.UnionWith(Ends(option, input, start, memo));
                return union;
            case Sequence sequence:
                var positions = new HashSet<int> { start };
                foreach (var item in sequence.Items)
                {
                    var next = new HashSet<int>();
                    foreach (var p in positions) next.UnionWith(Ends(item, input, p, memo));
                    positions = next;
                    if (positions.Count == 0) break;
                }
                return positions;
            case Repeat repeat:
                var ends = repeat.Min == 0 ? new HashSet<int> { start } : [];
                var current = new HashSet<int> { start };
                var seenAfterMin = new HashSet<int>(ends);
                for (int count = 1; repeat.Max is null || count <= repeat.Max; count++)
                {
                    var next = new HashSet<int>();
                    foreach (var p in current) next.UnionWith(Ends(repeat.Item, input, p, memo));
                    if (count >= repeat.Min)
                    {
                        next.ExceptWith(seenAfterMin);
                        seenAfterMin.UnionWith(next);
                        ends.UnionWith(next);
                    }
                    if (next.Count == 0) break;
                    current = next;
                }
                return ends;
            default:
                throw new InvalidOperationException(node.GetType().Name);
        }
    }

    // ---- sampling ----

    /// <summary>A random sentence of <paramref name="rule"/>; past <paramref name="depth"/> nested rules it takes the shortest way out.</summary>
    public string Sample(Random random, string rule = "root", int depth = 12)
    {
        var shortest = ShortestLengths();
        var sb = new StringBuilder();
        Generate(new RuleRef(rule), random, sb, 0, depth, shortest);
        return sb.ToString();
    }

    Dictionary<string, int>? _shortest;

    Dictionary<string, int> ShortestLengths()
    {
        if (_shortest is not null) return _shortest;
        var lengths = _rules.Keys.ToDictionary(k => k, _ => int.MaxValue / 4);
        for (bool changed = true; changed;)
        {
            changed = false;
            foreach (var (name, body) in _rules)
            {
                int length = Shortest(body, lengths);
                if (length < lengths[name]) { lengths[name] = length; changed = true; }
            }
        }
        return _shortest = lengths;
    }

    static int Shortest(Node node, Dictionary<string, int> rules) => node switch
    {
        Literal l => l.CodePoints.Length,
        CharClass or AnyChar => 1,
        RuleRef r => rules[r.Name],
        Alternatives a => a.Options.Min(o => Shortest(o, rules)),
        Sequence s => (int)Math.Min(int.MaxValue / 4, s.Items.Sum(i => (long)Shortest(i, rules))),
        Repeat r => (int)Math.Min(int.MaxValue / 4, (long)r.Min * Shortest(r.Item, rules)),
        _ => 0,
    };

    void Generate(Node node, Random random, StringBuilder sb, int depth, int maxDepth, Dictionary<string, int> shortest)
    {
        bool deep = depth > maxDepth;
        switch (node)
        {
            case Literal literal:
                foreach (var c in literal.CodePoints) sb.Append(char.ConvertFromUtf32(c));
                break;
            case CharClass cls:
                sb.Append(char.ConvertFromUtf32(PickChar(cls, random)));
                break;
            case AnyChar:
                sb.Append((char)random.Next('a', 'z' + 1));
                break;
            case RuleRef reference:
                Generate(_rules[reference.Name], random, sb, depth + 1, maxDepth, shortest);
                break;
            case Alternatives alternatives:
                var option = deep
                    ? alternatives.Options.MinBy(o => Shortest(o, shortest))!
                    : alternatives.Options[random.Next(alternatives.Options.Count)];
                Generate(option, random, sb, depth, maxDepth, shortest);
                break;
            case Sequence sequence:
                foreach (var item in sequence.Items) Generate(item, random, sb, depth, maxDepth, shortest);
                break;
            case Repeat repeat:
                int extra = deep ? 0 : random.Next(4);
                int count = repeat.Max is { } max ? Math.Min(max, repeat.Min + extra) : repeat.Min + extra;
                if (!deep && repeat.Max is { } m && m <= 16 && random.Next(4) == 0) count = m;
                for (int i = 0; i < count; i++) Generate(repeat.Item, random, sb, depth + 1, maxDepth, shortest);
                break;
        }
    }

    static int PickChar(CharClass cls, Random random)
    {
        if (cls.Negated)
        {
            // A character that is none of the listed ones, mostly from a small printable set, sometimes wider.
            int[] candidates = [.. "azAZ09 -_.:/\"\\{}[]~é€😀".EnumerateRunes().Select(r => r.Value), 0x7F, 0x1F, 0x10FFFF];
            var allowed = candidates.Where(c => !cls.Ranges.Any(r => r.Lo <= c && c <= r.Hi)).ToList();
            return allowed[random.Next(allowed.Count)];
        }
        var (lo, hi) = cls.Ranges[random.Next(cls.Ranges.Count)];
        // Favour the ends of a range, where off-by-one mistakes live.
        return random.Next(3) switch
        {
            0 => lo,
            1 => hi,
            _ => lo + (int)(random.NextInt64((long)hi - lo + 1)),
        } is var c && c is >= 0xD800 and <= 0xDFFF ? 0xE000 : c;
    }
}

using System.Globalization;
using System.Text;

namespace ManagedLM.Grammars;

/// <summary>
/// A context-free grammar over Unicode code points, lowered as llama.cpp lowers GBNF: every group and repetition
/// becomes a rule of its own. Immutable and safe to share between any number of threads and requests; each request
/// follows it with its own <see cref="GrammarMatcher"/> (<see cref="CreateMatcher"/>).
/// </summary>
public sealed class Grammar
{
    /// <summary>The largest code point (U+10FFFF).</summary>
    internal const int MaxCodePoint = 0x10FFFF;

    // Elements of every alternative of every rule, each alternative ended by End.
    internal readonly GrammarElement[] Elements;
    // Rule r's alternatives start at Elements[AlternativeStarts[RuleAlternatives[r]..RuleAlternatives[r + 1]]].
    internal readonly int[] AlternativeStarts;
    internal readonly int[] RuleAlternatives;
    // Class c: inclusive ranges (lo, hi) at ClassRanges[2 * ClassOffsets[c]..2 * ClassOffsets[c + 1]], sorted, disjoint;
    // ClassAscii[2c], ClassAscii[2c + 1]: bitmap of its code points below 128.
    internal readonly int[] ClassRanges;
    internal readonly int[] ClassOffsets;
    internal readonly ulong[] ClassAscii;
    internal readonly int Root;
    private readonly string[] _ruleNames;

    internal Grammar(string[] ruleNames, IReadOnlyList<List<GrammarElement>>[] rules, IReadOnlyList<int[]> classes, int root)
    {
        _ruleNames = ruleNames;
        Root = root;
        var elements = new List<GrammarElement>();
        var starts = new List<int>();
        RuleAlternatives = new int[rules.Length + 1];
        for (int r = 0; r < rules.Length; r++)
        {
            RuleAlternatives[r] = starts.Count;
            foreach (var alternative in rules[r])
            {
                starts.Add(elements.Count);
                elements.AddRange(alternative);
                elements.Add(new GrammarElement(GrammarElementKind.End, 0));
            }
        }
        RuleAlternatives[rules.Length] = starts.Count;
        Elements = [.. elements];
        AlternativeStarts = [.. starts];

        ClassOffsets = new int[classes.Count + 1];
        ClassAscii = new ulong[2 * classes.Count];
        var ranges = new List<int>();
        for (int c = 0; c < classes.Count; c++)
        {
            ClassOffsets[c] = ranges.Count / 2;
            int[] pairs = classes[c];
            ranges.AddRange(pairs);
            for (int i = 0; i < pairs.Length; i += 2)
            {
                for (int cp = pairs[i]; cp <= Math.Min(pairs[i + 1], 127); cp++)
                    ClassAscii[2 * c + (cp >> 6)] |= 1UL << (cp & 63);
            }
        }
        ClassOffsets[classes.Count] = ranges.Count / 2;
        ClassRanges = [.. ranges];
    }

    /// <summary>
    /// Parses a grammar in GBNF, llama.cpp's grammar format: <c>name ::= alternatives</c> rules (names of letters,
    /// digits and '-'), <c>|</c>, <c>( )</c>, <c>? * +</c>, <c>{m}</c>, <c>{m,}</c>, <c>{m,n}</c>, string literals and
    /// character classes (<c>[a-z]</c>, <c>[^...]</c>) with the escapes <c>\n \t \r \\ \" \[ \] \xHH \uHHHH \UHHHHHHHH</c>,
    /// any character <c>.</c> and <c>#</c> comments. Matching is over Unicode code points.
    /// </summary>
    /// <param name="gbnf">The grammar text (untrusted input is fine: nesting and size are bounded).</param>
    /// <param name="root">The rule a whole text must match.</param>
    /// <exception cref="GrammarException">The text is not a valid grammar; the message names the problem, line and column.</exception>
    public static Grammar FromGbnf(string gbnf, string root = "root")
    {
        ArgumentNullException.ThrowIfNull(gbnf);
        ArgumentNullException.ThrowIfNull(root);
        return new GbnfParser(gbnf).Parse(root);
    }

    /// <summary>
    /// The grammar of the JSON documents that validate against the JSON Schema in <paramref name="schemaJson"/>
    /// (see <see cref="JsonSchemaGrammar"/> for what is supported; anything else is an error, never ignored).
    /// </summary>
    /// <exception cref="JsonSchemaException">The text is not JSON, or the schema is invalid or unsupported.</exception>
    public static Grammar FromJsonSchema(string schemaJson) => FromGbnf(JsonSchemaGrammar.ToGbnf(schemaJson));

    /// <summary>The grammar of the JSON documents that validate against <paramref name="schema"/>.</summary>
    /// <exception cref="JsonSchemaException">The schema is invalid or unsupported.</exception>
    public static Grammar FromJsonSchema(System.Text.Json.JsonElement schema) => FromGbnf(JsonSchemaGrammar.ToGbnf(schema));

    /// <summary>
    /// <see cref="FromGbnf"/> for grammars that come again and again (a server's tool and schema grammars): texts up to
    /// 64 KiB are parsed once and kept (at most 256 of them; the cache starts over when it is full).
    /// </summary>
    /// <exception cref="GrammarException">The text is not a valid grammar.</exception>
    public static Grammar FromGbnfCached(string gbnf)
    {
        ArgumentNullException.ThrowIfNull(gbnf);
        if (gbnf.Length > 64 << 10)
            return FromGbnf(gbnf);
        if (s_cache.TryGetValue(gbnf, out var grammar))
            return grammar;
        grammar = FromGbnf(gbnf);
        if (s_cache.Count >= 256)
            s_cache.Clear();
        s_cache.TryAdd(gbnf, grammar);
        return grammar;
    }

    [ThreadSafeStatic("a concurrent dictionary of immutable grammars, bounded in count and text size")]
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Grammar> s_cache = new(StringComparer.Ordinal);

    /// <summary>JSON mode: any JSON object (OpenAI's <c>response_format: {"type": "json_object"}</c>).</summary>
    public static Grammar JsonObject => s_jsonObject.Value;

    [ThreadSafeStatic("a thread-safe Lazy of an immutable grammar")]
    private static readonly Lazy<Grammar> s_jsonObject = new(() => FromGbnf(JsonSchemaGrammar.JsonObjectGbnf));

    /// <summary>The name of the rule a whole text must match.</summary>
    public string RootRule => _ruleNames[Root];

    /// <summary>Rules after lowering (groups and repetitions are rules of their own).</summary>
    public int RuleCount => RuleAlternatives.Length - 1;

    /// <summary>
    /// A new matcher at the start of the grammar; one per request, not thread-safe. <paramref name="vocabulary"/>
    /// (built once per tokenizer) enables the token checks <see cref="GrammarMatcher.Allows"/> and <see cref="GrammarMatcher.Mask"/>.
    /// </summary>
    public GrammarMatcher CreateMatcher(GrammarVocabulary? vocabulary = null) => new(this, vocabulary);

    internal string RuleName(int rule) => _ruleNames[rule];

    /// <summary>Whether the terminal at <paramref name="position"/> matches <paramref name="codePoint"/>.</summary>
    internal bool Matches(int position, int codePoint)
    {
        var e = Elements[position];
        if (e.Kind == GrammarElementKind.Char)
            return e.Value == codePoint;
        if (codePoint < 128)
            return ((ClassAscii[2 * e.Value + (codePoint >> 6)] >> (codePoint & 63)) & 1) != 0;
        for (int i = ClassOffsets[e.Value]; i < ClassOffsets[e.Value + 1]; i++)
        {
            if (codePoint < ClassRanges[2 * i])
                return false;
            if (codePoint <= ClassRanges[2 * i + 1])
                return true;
        }
        return false;
    }

    /// <summary>Whether the terminal at <paramref name="position"/> matches some code point in [lo, hi], surrogates excluded.</summary>
    internal bool MatchesAnyIn(int position, int lo, int hi) =>
        MatchesAnyInRange(position, lo, Math.Min(hi, 0xD7FF)) || MatchesAnyInRange(position, Math.Max(lo, 0xE000), hi);

    private bool MatchesAnyInRange(int position, int lo, int hi)
    {
        if (lo > hi)
            return false;
        var e = Elements[position];
        if (e.Kind == GrammarElementKind.Char)
            return lo <= e.Value && e.Value <= hi;
        for (int i = ClassOffsets[e.Value]; i < ClassOffsets[e.Value + 1]; i++)
        {
            if (ClassRanges[2 * i] <= hi && lo <= ClassRanges[2 * i + 1])
                return true;
        }
        return false;
    }

    /// <summary>The lowered grammar in GBNF, one rule a line (generated rules are named <c>parent_N</c>).</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        for (int r = 0; r < RuleCount; r++)
        {
            sb.Append(_ruleNames[r]).Append(" ::=");
            for (int a = RuleAlternatives[r]; a < RuleAlternatives[r + 1]; a++)
            {
                if (a > RuleAlternatives[r])
                    sb.Append(" |");
                for (int p = AlternativeStarts[a]; Elements[p].Kind != GrammarElementKind.End; p++)
                {
                    sb.Append(' ');
                    AppendElement(sb, Elements[p]);
                }
            }
            sb.Append('\n');
        }
        return sb.ToString();
    }

    private void AppendElement(StringBuilder sb, GrammarElement e)
    {
        switch (e.Kind)
        {
            case GrammarElementKind.RuleRef:
                sb.Append(_ruleNames[e.Value]);
                break;
            case GrammarElementKind.Char:
                sb.Append('[');
                AppendClassChar(sb, e.Value);
                sb.Append(']');
                break;
            default:
                int first = ClassOffsets[e.Value], end = ClassOffsets[e.Value + 1];
                if (end - first == 1 && ClassRanges[2 * first] == 0 && ClassRanges[2 * first + 1] == MaxCodePoint)
                {
                    sb.Append('.');
                    break;
                }
                sb.Append('[');
                for (int i = first; i < end; i++)
                {
                    AppendClassChar(sb, ClassRanges[2 * i]);
                    if (ClassRanges[2 * i + 1] != ClassRanges[2 * i])
                    {
                        sb.Append('-');
                        AppendClassChar(sb, ClassRanges[2 * i + 1]);
                    }
                }
                sb.Append(']');
                break;
        }
    }

    private static void AppendClassChar(StringBuilder sb, int codePoint)
    {
        switch (codePoint)
        {
            case '\n': sb.Append("\\n"); return;
            case '\r': sb.Append("\\r"); return;
            case '\t': sb.Append("\\t"); return;
            case '\\': sb.Append("\\\\"); return;
            case ']': sb.Append("\\]"); return;
            case '[': sb.Append("\\["); return;
            case '-': sb.Append("\\x2D"); return;
            case '^': sb.Append("\\x5E"); return;
        }
        if (codePoint < 0x20 || codePoint == 0x7F)
            sb.Append("\\x").Append(codePoint.ToString("X2", CultureInfo.InvariantCulture));
        else if (!Rune.IsValid(codePoint) || Rune.GetUnicodeCategory(new Rune(codePoint)) is UnicodeCategory.OtherNotAssigned
                     or UnicodeCategory.Format or UnicodeCategory.Control or UnicodeCategory.PrivateUse
                     or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator)
            sb.Append(codePoint > 0xFFFF ? "\\U" + codePoint.ToString("X8", CultureInfo.InvariantCulture) : "\\u" + codePoint.ToString("X4", CultureInfo.InvariantCulture));
        else
            sb.Append(new Rune(codePoint).ToString());
    }
}

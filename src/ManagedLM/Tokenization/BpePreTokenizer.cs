using System.Collections.Immutable;

namespace ManagedLM.Tokenization;

/// <summary>
/// Splits text into words before byte-level BPE, as llama.cpp's unicode_regex_split does for a
/// <c>tokenizer.ggml.pre</c> type: a list of expressions applied in turn, each splitting the pieces
/// the previous one produced into its matches and the gaps between them. The GPT-2 and Llama-3
/// expressions run as hand-written splitters (llama.cpp's custom ones); the others run on
/// <see cref="UnitRegex"/> over code points, or over llama.cpp's "collapsed" text (one byte per code
/// point: ASCII as is, other code points as their category) when they use <c>\p{..}</c> classes.
/// </summary>
internal sealed class BpePreTokenizer
{
    /// <summary>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)</summary>
    internal const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
    /// <summary>The Llama-3 expression with its case-insensitive contractions spelled out.</summary>
    internal const string Llama3Pattern = @"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    internal const string Qwen2Pattern = @"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    private const string StarcoderDigits = @"\p{N}";
    private const string PoroPattern = " ?[^(\\s|.,!?…。，、।۔،)]+";
    private const string Deepseek3Main = "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+";

    private static readonly ImmutableArray<string> CollapsedProperties = [@"\p{N}", @"\p{L}", @"\p{P}", @"\p{M}", @"\p{S}", @"\p{Lu}", @"\p{Ll}", @"\p{Lt}", @"\p{Lm}", @"\p{Lo}"];

    /// <summary>One step: a hand-written splitter, or an expression.</summary>
    private sealed record Step(string Pattern, UnitRegex? Regex, bool Collapsed);

    private readonly Step[] _steps;

    /// <summary>The pre-tokenizer name from the file ("default" when the file has none).</summary>
    public string Name { get; }
    /// <summary>Whole words found in the vocabulary are emitted without merging (Llama-3 style).</summary>
    public bool IgnoreMerges { get; }
    /// <summary>The BOS default before tokenizer.ggml.add_bos_token overrides it.</summary>
    public bool AddBosByDefault { get; }
    /// <summary>Decoding removes spaces before punctuation and contractions (clean_up_tokenization_spaces).</summary>
    public bool CleanSpaces { get; }
    /// <summary>The pre-tokenizer clears the default BOS id (ChatGLM).</summary>
    public bool NoDefaultBos { get; }

    private BpePreTokenizer(string name, string[] patterns, bool cleanSpaces, bool ignoreMerges = false, bool addBos = false, bool noDefaultBos = false)
    {
        Name = name;
        _steps = patterns.Select(MakeStep).ToArray();
        CleanSpaces = cleanSpaces;
        IgnoreMerges = ignoreMerges;
        AddBosByDefault = addBos;
        NoDefaultBos = noDefaultBos;
    }

    /// <summary>The pre-tokenizer llama.cpp uses for <paramref name="pre"/>.</summary>
    /// <exception cref="NotSupportedException">An unknown name.</exception>
    public static BpePreTokenizer ForName(string? pre)
    {
        string name = string.IsNullOrEmpty(pre) ? "default" : pre;
        return name switch
        {
            "default" => new(name, [@"[\p{P}\$\+<=>\^~\|]+", Gpt2Pattern, @"\p{N}+", "[0-9][0-9][0-9]"], cleanSpaces: true),
            "llama3" or "llama-v3" or "llama-bpe" or "falcon3" or "falcon-h1" or "pixtral" or "midm-2.0" or "lfm2" or "jina-v5-nano"
                => new(name, [Llama3Pattern], cleanSpaces: true, ignoreMerges: true, addBos: true),
            "dbrx" or "smaug-bpe" => new(name, [Llama3Pattern], cleanSpaces: true),
            "glm4" or "chatglm-bpe" => new(name, [Llama3Pattern], cleanSpaces: true, noDefaultBos: true),
            "deepseek-llm" => new(name,
            [
                "[\r\n]",
                @"\s?[A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293\u0295-\u02AF\u0370-\u0373\u0376\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C\u038E-\u03A1\u03A3-\u03F5\u03F7-\u0481\u048A-\u052F\u0531-\u0556\u10A0-\u10C5\u13A0-\u13F5\u13F8-\u13FD\u1C90-\u1CBA\u1CBD-\u1CBF\u1D00-\u1D2B\u1D6B-\u1D77\u1D79-\u1D9A\u1E00-\u1F15\u1F18-\u1F1D\u1F20-\u1F45\u1F48-\u1F4D\u1F50-\u1F57\u1F59\u1F5B\u1F5D\u1F5F-\u1F7D\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-\u1FC4\u1FC6-\u1FCC\u1FD0-\u1FD3\u1FD6-\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4\u1FF6-\u1FFC\u2102\u2107\u210A-\u2113\u2115\u2119-\u211D\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139\u213C-\u213F\u2145-\u2149\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4\u2CEB-\u2CEE\u2CF2\u2CF3\uA640-\uA66D\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uAB70-\uABBF\uFB00-\uFB06\uFB13-\uFB17\uFF21-\uFF3A\uFF41-\uFF5A\u{10400}-\u{1044F}\u{104B0}-\u{104D3}\u{104D8}-\u{104FB}\u{10C80}-\u{10CB2}\u{10CC0}-\u{10CF2}\u{118A0}-\u{118DF}\u{1E900}-\u{1E943}]+",

                "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
                "\\s+$",
                "[一-龥ࠀ-一가-퟿]+",
                @"\p{N}+",
            ], cleanSpaces: false),
            "deepseek-coder" => new(name, ["[\r\n]", @"\s?\p{L}+", @"\s?\p{P}+", "[一-龥ࠀ-一가-퟿]+", @"\p{N}"], cleanSpaces: false),
            "deepseek-v3" or "hunyuan-dense" or "joyai-llm" or "hy_v4" => new(name, [@"\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+", Deepseek3Main], cleanSpaces: false),
            "falcon" => new(name, [@"[\p{P}\$\+<=>\^~\|`]+", Gpt2Pattern, "[0-9][0-9][0-9]"], cleanSpaces: true),
            "starcoder" or "refact" or "codeshell" or "exaone" or "minerva-7b" or "mellum2" => new(name, [StarcoderDigits, Gpt2Pattern], cleanSpaces: true),
            "command-r" or "smollm" => new(name, [StarcoderDigits, Gpt2Pattern], cleanSpaces: false),
            "gpt-2" or "phi-2" or "jina-es" or "jina-de" or "gigachat" or "jina-v2-es" or "jina-v2-de" or "a.x-4.0" or "mellum"
                or "modern-bert" or "mpt" or "olmo" or "jais" or "exaone4" => new(name, [Gpt2Pattern], cleanSpaces: true),
            "trillion" or "granite-docling" => new(name, [Gpt2Pattern], cleanSpaces: false),
            "qwen2" or "deepseek-r1-qwen" or "kormo" or "f2llmv2" or "hunyuan" or "solar-open" or "grok-2" => new(name, [Qwen2Pattern], cleanSpaces: false),
            "stablelm2" or "megrez" => new(name, [Qwen2Pattern], cleanSpaces: true),
            "qwen35" => new(name, [@"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"], cleanSpaces: false),
            "seed-coder" => new(name, [@"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+"], cleanSpaces: false),
            "bailingmoe" or "bailingmoe2" or "llada-moe" => new(name, [@"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"], cleanSpaces: false),
            "ufakzeka" => new(name, [@"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"], cleanSpaces: false),
            "poro-chat" => new(name, [PoroPattern], cleanSpaces: false),
            "bloom" or "gpt3-finnish" => new(name, [PoroPattern], cleanSpaces: true),
            "viking" => new(name, [PoroPattern, @"\p{N}"], cleanSpaces: false),
            _ => throw new NotSupportedException($"Unsupported pre-tokenizer tokenizer.ggml.pre = \"{name}\"."),
        };
    }

    private static Step MakeStep(string pattern)
    {
        if (pattern is Gpt2Pattern or Llama3Pattern)
            return new Step(pattern, null, false);
        bool collapsed = CollapsedProperties.Any(pattern.Contains);
        if (collapsed && pattern.Any(c => c >= 128))
            throw new ArgumentException($"A pre-tokenizer expression mixes \\p{{..}} classes with non-ASCII text: {pattern}");
        return new Step(pattern, new UnitRegex(pattern, collapsed ? CollapsedClass : NoProperty), collapsed);
    }

    private static UnitSet NoProperty(string name) =>
        throw new ArgumentException($"\\p{{{name}}} is not a class llama.cpp's pre-tokenizers know.");

    // \p{X} on collapsed text: the category byte plus the ASCII members llama.cpp lists for it.
    internal static UnitSet CollapsedClass(string name) => name switch
    {
        "N" => UnitSet.Of([(0xD1, 0xD1), ('0', '9')]),
        "L" or "Lu" or "Ll" or "Lt" or "Lm" or "Lo" => UnitSet.Of([(0xD2, 0xD2), ('A', 'Z'), ('a', 'z')]),
        "P" => UnitSet.Of([(0xD3, 0xD3), (0x21, 0x23), (0x25, 0x2A), (0x2C, 0x2F), (0x3A, 0x3B), (0x3F, 0x40), (0x5B, 0x5D), (0x5F, 0x5F), (0x7B, 0x7B), (0x7D, 0x7D)]),
        "M" => UnitSet.Single(0xD4),
        "S" => UnitSet.Of([(0xD5, 0xD5), (0x24, 0x24), (0x2B, 0x2B), (0x3C, 0x3E), (0x5E, 0x5E), (0x60, 0x60), (0x7C, 0x7C)]),
        _ => NoProperty(name),
    };

    /// <summary>llama.cpp's collapsed unit of a code point: ASCII as is, whitespace as \v, others as their category byte.</summary>
    internal static int CollapsedUnit(int cp)
    {
        if (cp < 128)
            return cp;
        var flags = Codepoints.Flags(cp);
        if ((flags & CodepointFlags.Whitespace) != 0)
            return 0x0B;
        return (flags & CodepointFlags.Categories) switch
        {
            CodepointFlags.Number => 0xD1,
            CodepointFlags.Letter => 0xD2,
            CodepointFlags.Punctuation => 0xD3,
            CodepointFlags.AccentMark => 0xD4,
            CodepointFlags.Symbol => 0xD5,
            _ => 0xD0,
        };
    }

    /// <summary>The wide-text unit: non-ASCII whitespace as \v (std::wregex's \s knows only ASCII).</summary>
    internal static int WideUnit(int cp) => cp > 0x7F && Codepoints.IsWhitespace(cp) ? 0x0B : cp;

    /// <summary>Splits <c>cps[0..count)</c> into words; returns their lengths in code points, in order.</summary>
    public List<int> Split(int[] cps, int count)
    {
        var pieces = new List<int> { count };
        int[]? collapsed = null, wide = null;
        foreach (var step in _steps)
        {
            var next = new List<int>(pieces.Count * 2 + 8);
            if (step.Regex is null)
            {
                if (step.Pattern == Gpt2Pattern)
                    SplitGpt2(cps, pieces, next);
                else
                    SplitLlama3(cps, pieces, next);
            }
            else
            {
                int[] units = step.Collapsed ? collapsed ??= Map(cps, count, CollapsedUnit) : wide ??= Map(cps, count, WideUnit);
                step.Regex.Split(units, pieces, next);
            }
            pieces = next;
        }
        return pieces;
    }

    private static int[] Map(int[] cps, int count, Func<int, int> unit)
    {
        var units = new int[count];
        for (int i = 0; i < count; i++)
            units[i] = unit(cps[i]);
        return units;
    }

    /// <summary>A piece of text being split: positions outside it read as "no code point".</summary>
    private readonly struct Chunk(int[] cps, int start, int end)
    {
        public const int OutOfRange = -1;
        public int Cpt(int pos) => pos >= start && pos < end ? cps[pos] : OutOfRange;
        public CodepointFlags Flags(int pos) => pos >= start && pos < end ? Codepoints.Flags(cps[pos]) : CodepointFlags.None;
    }

    private const CodepointFlags WordClasses = CodepointFlags.Whitespace | CodepointFlags.Letter | CodepointFlags.Number;

    /// <summary>GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</summary>
    internal static void SplitGpt2(int[] cps, List<int> chunks, List<int> pieces) => SplitByHand(cps, chunks, pieces, llama3: false);

    /// <summary>Llama-3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+</summary>
    internal static void SplitLlama3(int[] cps, List<int> chunks, List<int> pieces) => SplitByHand(cps, chunks, pieces, llama3: true);

    // llama.cpp's unicode_regex_split_custom_gpt2 / _llama3: each step takes the first alternative that matches at pos.
    private static void SplitByHand(int[] cps, List<int> chunks, List<int> pieces, bool llama3)
    {
        int start = 0;
        foreach (int length in chunks)
        {
            int end = start + length;
            var c = new Chunk(cps, start, end);
            for (int pos = start; pos < end;)
            {
                int next = MatchContraction(c, pos, end, ignoreCase: llama3);
                if (next < 0)
                    next = llama3 ? MatchLlama3Word(c, pos) : MatchGpt2Word(c, pos);
                if (next < 0)
                    next = MatchSpaces(c, pos, lineBreaks: llama3);
                pieces.Add(next - pos);
                pos = next;
            }
            start = end;
        }
    }

    // 's|'t|'re|'ve|'m|'ll|'d; the end of the match or -1.
    private static int MatchContraction(Chunk c, int pos, int end, bool ignoreCase)
    {
        if (c.Cpt(pos) != '\'' || pos + 1 >= end)
            return -1;
        int Next(int at) => ignoreCase && c.Cpt(at) is >= 'A' and <= 'Z' ? c.Cpt(at) + 32 : c.Cpt(at);
        int next = Next(pos + 1);
        if (next is 's' or 't' or 'm' or 'd')
            return pos + 2;
        if (pos + 2 < end)
        {
            int next2 = Next(pos + 2);
            if ((next == 'r' && next2 == 'e') || (next == 'v' && next2 == 'e') || (next == 'l' && next2 == 'l'))
                return pos + 3;
        }
        return -1;
    }

    // ' ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+'
    private static int MatchGpt2Word(Chunk c, int pos)
    {
        int cpt = c.Cpt(pos);
        int first = cpt == ' ' ? pos + 1 : pos;
        var kind = c.Flags(first);
        if ((kind & CodepointFlags.Letter) != 0)
            return SkipWhile(c, first, CodepointFlags.Letter);
        if ((kind & CodepointFlags.Number) != 0)
            return SkipWhile(c, first, CodepointFlags.Number);
        if ((kind & WordClasses) == 0 && kind != CodepointFlags.None)
            return SkipOther(c, first);
        return -1;
    }

    // [^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*
    private static int MatchLlama3Word(Chunk c, int pos)
    {
        int cpt = c.Cpt(pos);
        var flags = c.Flags(pos);
        if (!(cpt is '\r' or '\n' || (flags & CodepointFlags.Number) != 0)
            && ((flags & CodepointFlags.Letter) != 0 || (c.Flags(pos + 1) & CodepointFlags.Letter) != 0))
            return SkipWhile(c, pos + 1, CodepointFlags.Letter);
        if ((flags & CodepointFlags.Number) != 0)
        {
            int p = pos + 1;
            while (p - pos < 3 && (c.Flags(p) & CodepointFlags.Number) != 0)
                p++;
            return p;
        }
        int first = cpt == ' ' ? pos + 1 : pos;
        if ((c.Flags(first) & WordClasses) == 0 && flags != CodepointFlags.None)
        {
            int p = SkipOther(c, first);
            while (c.Cpt(p) is '\r' or '\n')
                p++;
            return p;
        }
        return -1;
    }

    // \s*[\r\n]+ (with lineBreaks)|\s+(?!\S)|\s+, else one code point on its own.
    private static int MatchSpaces(Chunk c, int pos, bool lineBreaks)
    {
        int spaces = 0, lastLineEnd = -1;
        while ((c.Flags(pos + spaces) & CodepointFlags.Whitespace) != 0)
        {
            if (lineBreaks && c.Cpt(pos + spaces) is '\r' or '\n')
                lastLineEnd = pos + spaces + 1;
            spaces++;
        }
        if (lastLineEnd > 0)
            return lastLineEnd;
        if (spaces > 1 && c.Cpt(pos + spaces) != Chunk.OutOfRange)
            return pos + spaces - 1;
        return pos + Math.Max(spaces, 1);
    }

    private static int SkipWhile(Chunk c, int pos, CodepointFlags kind)
    {
        while ((c.Flags(pos) & kind) != 0)
            pos++;
        return pos;
    }

    // [^\s\p{L}\p{N}]+: anything but whitespace, letters and numbers, up to the end of the chunk.
    private static int SkipOther(Chunk c, int pos)
    {
        for (var f = c.Flags(pos); (f & WordClasses) == 0 && f != CodepointFlags.None; f = c.Flags(++pos))
        {
        }
        return pos;
    }
}

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

    private static readonly string[] CollapsedProperties = [@"\p{N}", @"\p{L}", @"\p{P}", @"\p{M}", @"\p{S}", @"\p{Lu}", @"\p{Ll}", @"\p{Lt}", @"\p{Lm}", @"\p{Lo}"];

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

    private BpePreTokenizer(string name, string[] patterns, bool cleanSpaces, bool ignoreMerges, bool addBos, bool noDefaultBos)
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
            "default" => new(name, [@"[\p{P}\$\+<=>\^~\|]+", Gpt2Pattern, @"\p{N}+", "[0-9][0-9][0-9]"], true, false, false, false),
            "llama3" or "llama-v3" or "llama-bpe" or "falcon3" or "falcon-h1" or "pixtral" or "midm-2.0" or "lfm2" or "jina-v5-nano"
                => new(name, [Llama3Pattern], true, ignoreMerges: true, addBos: true, false),
            "dbrx" or "smaug-bpe" => new(name, [Llama3Pattern], true, false, false, false),
            "glm4" or "chatglm-bpe" => new(name, [Llama3Pattern], true, false, false, noDefaultBos: true),
            "deepseek-llm" => new(name,
            [
                "[\r\n]",
                "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
                "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
                "\\s+$",
                "[一-龥ࠀ-一가-퟿]+",
                @"\p{N}+",
            ], false, false, false, false),
            "deepseek-coder" => new(name, ["[\r\n]", @"\s?\p{L}+", @"\s?\p{P}+", "[一-龥ࠀ-一가-퟿]+", @"\p{N}"], false, false, false, false),
            "deepseek-v3" or "hunyuan-dense" or "joyai-llm" or "hy_v4" => new(name, [@"\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+", Deepseek3Main], false, false, false, false),
            "falcon" => new(name, [@"[\p{P}\$\+<=>\^~\|`]+", Gpt2Pattern, "[0-9][0-9][0-9]"], true, false, false, false),
            "starcoder" or "refact" or "codeshell" or "exaone" or "minerva-7b" or "mellum2" => new(name, [StarcoderDigits, Gpt2Pattern], true, false, false, false),
            "command-r" or "smollm" => new(name, [StarcoderDigits, Gpt2Pattern], false, false, false, false),
            "gpt-2" or "phi-2" or "jina-es" or "jina-de" or "gigachat" or "jina-v2-es" or "jina-v2-de" or "a.x-4.0" or "mellum"
                or "modern-bert" or "mpt" or "olmo" or "jais" or "exaone4" => new(name, [Gpt2Pattern], true, false, false, false),
            "trillion" or "granite-docling" => new(name, [Gpt2Pattern], false, false, false, false),
            "qwen2" or "deepseek-r1-qwen" or "kormo" or "f2llmv2" or "hunyuan" or "solar-open" or "grok-2" => new(name, [Qwen2Pattern], false, false, false, false),
            "stablelm2" or "megrez" => new(name, [Qwen2Pattern], true, false, false, false),
            "qwen35" => new(name, [@"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"], false, false, false, false),
            "seed-coder" => new(name, [@"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+"], false, false, false, false),
            "bailingmoe" or "bailingmoe2" or "llada-moe" => new(name, [@"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"], false, false, false, false),
            "ufakzeka" => new(name, [@"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"], false, false, false, false),
            "poro-chat" => new(name, [PoroPattern], false, false, false, false),
            "bloom" or "gpt3-finnish" => new(name, [PoroPattern], true, false, false, false),
            "viking" => new(name, [PoroPattern, @"\p{N}"], false, false, false, false),
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
    private readonly ref struct Chunk(int[] cps, int start, int end)
    {
        public const int OutOfRange = -1;
        public int Cpt(int pos) => pos >= start && pos < end ? cps[pos] : OutOfRange;
        public CodepointFlags Flags(int pos) => pos >= start && pos < end ? Codepoints.Flags(cps[pos]) : CodepointFlags.None;
    }

    private const CodepointFlags WordClasses = CodepointFlags.Whitespace | CodepointFlags.Letter | CodepointFlags.Number;

    // GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    internal static void SplitGpt2(int[] cps, List<int> chunks, List<int> pieces)
    {
        int start = 0;
        foreach (int length in chunks)
        {
            int end = start + length;
            var c = new Chunk(cps, start, end);
            int prevEnd = start;
            void Add(int at)
            {
                if (at > prevEnd)
                    pieces.Add(at - prevEnd);
                prevEnd = at;
            }

            for (int pos = start; pos < end;)
            {
                int cpt = c.Cpt(pos);
                var flags = c.Flags(pos);
                if (cpt == '\'' && pos + 1 < end)
                {
                    int next = c.Cpt(pos + 1);
                    if (next is 's' or 't' or 'm' or 'd')
                    {
                        pos += 2;
                        Add(pos);
                        continue;
                    }
                    if (pos + 2 < end)
                    {
                        int next2 = c.Cpt(pos + 2);
                        if ((next == 'r' && next2 == 'e') || (next == 'v' && next2 == 'e') || (next == 'l' && next2 == 'l'))
                        {
                            pos += 3;
                            Add(pos);
                            continue;
                        }
                    }
                }

                var flags2 = cpt == ' ' ? c.Flags(pos + 1) : flags;
                if ((flags2 & CodepointFlags.Letter) != 0)
                {
                    pos += cpt == ' ' ? 1 : 0;
                    while ((flags2 & CodepointFlags.Letter) != 0)
                        flags2 = c.Flags(++pos);
                    Add(pos);
                    continue;
                }
                if ((flags2 & CodepointFlags.Number) != 0)
                {
                    pos += cpt == ' ' ? 1 : 0;
                    while ((flags2 & CodepointFlags.Number) != 0)
                        flags2 = c.Flags(++pos);
                    Add(pos);
                    continue;
                }
                if ((flags2 & WordClasses) == 0 && flags2 != CodepointFlags.None)
                {
                    pos += cpt == ' ' ? 1 : 0;
                    while ((flags2 & WordClasses) == 0 && flags2 != CodepointFlags.None)
                        flags2 = c.Flags(++pos);
                    Add(pos);
                    continue;
                }

                int spaces = 0;
                while ((c.Flags(pos + spaces) & CodepointFlags.Whitespace) != 0)
                    spaces++;
                if (spaces > 1 && c.Cpt(pos + spaces) != Chunk.OutOfRange)
                {
                    pos += spaces - 1;
                    Add(pos);
                    continue;
                }
                if (spaces > 0)
                {
                    pos += spaces;
                    Add(pos);
                    continue;
                }
                Add(++pos);
            }
            start = end;
        }
    }

    // Llama-3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
    internal static void SplitLlama3(int[] cps, List<int> chunks, List<int> pieces)
    {
        static int Lower(int cp) => cp is >= 'A' and <= 'Z' ? cp + 32 : cp;
        int start = 0;
        foreach (int length in chunks)
        {
            int end = start + length;
            var c = new Chunk(cps, start, end);
            int prevEnd = start;
            void Add(int at)
            {
                if (at > prevEnd)
                    pieces.Add(at - prevEnd);
                prevEnd = at;
            }

            for (int pos = start; pos < end;)
            {
                int cpt = c.Cpt(pos);
                var flags = c.Flags(pos);
                if (cpt == '\'' && pos + 1 < end)
                {
                    int next = Lower(c.Cpt(pos + 1));
                    if (next is 's' or 't' or 'm' or 'd')
                    {
                        pos += 2;
                        Add(pos);
                        continue;
                    }
                    if (pos + 2 < end)
                    {
                        int next2 = Lower(c.Cpt(pos + 2));
                        if ((next == 'r' && next2 == 'e') || (next == 'v' && next2 == 'e') || (next == 'l' && next2 == 'l'))
                        {
                            pos += 3;
                            Add(pos);
                            continue;
                        }
                    }
                }

                // [^\r\n\p{L}\p{N}]?\p{L}+
                if (!(cpt == '\r' || cpt == '\n' || (flags & CodepointFlags.Number) != 0)
                    && ((flags & CodepointFlags.Letter) != 0 || (c.Flags(pos + 1) & CodepointFlags.Letter) != 0))
                {
                    pos++;
                    while ((c.Flags(pos) & CodepointFlags.Letter) != 0)
                        pos++;
                    Add(pos);
                    continue;
                }

                // \p{N}{1,3}
                if ((flags & CodepointFlags.Number) != 0)
                {
                    int ini = pos;
                    while ((c.Flags(pos) & CodepointFlags.Number) != 0)
                    {
                        if (++pos - ini >= 3)
                        {
                            Add(pos);
                            ini = pos;
                        }
                    }
                    Add(pos);
                    continue;
                }

                // <space>?[^\s\p{L}\p{N}]+[\r\n]*
                var flags2 = cpt == ' ' ? c.Flags(pos + 1) : flags;
                if ((flags2 & WordClasses) == 0 && flags != CodepointFlags.None)
                {
                    pos += cpt == ' ' ? 1 : 0;
                    while ((flags2 & WordClasses) == 0 && flags2 != CodepointFlags.None)
                        flags2 = c.Flags(++pos);
                    int cpt2 = c.Cpt(pos);
                    while (cpt2 is '\r' or '\n')
                        cpt2 = c.Cpt(++pos);
                    Add(pos);
                    continue;
                }

                int spaces = 0, lastLineEnd = 0;
                while ((c.Flags(pos + spaces) & CodepointFlags.Whitespace) != 0)
                {
                    int cpt2 = c.Cpt(pos + spaces);
                    if (cpt2 is '\r' or '\n')
                        lastLineEnd = pos + spaces + 1;
                    spaces++;
                }
                // \s*[\r\n]+
                if (lastLineEnd > 0)
                {
                    pos = lastLineEnd;
                    Add(pos);
                    continue;
                }
                // \s+(?!\S)
                if (spaces > 1 && c.Cpt(pos + spaces) != Chunk.OutOfRange)
                {
                    pos += spaces - 1;
                    Add(pos);
                    continue;
                }
                if (spaces > 0)
                {
                    pos += spaces;
                    Add(pos);
                    continue;
                }
                Add(++pos);
            }
            start = end;
        }
    }
}

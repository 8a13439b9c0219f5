using System.Collections.Immutable;
using System.Text;
using ManagedLM.Gguf;

namespace ManagedLM.Tokenization;

/// <summary>How token texts turn into bytes.</summary>
internal enum PieceEncoding
{
    /// <summary>SentencePiece: ▁ stands for a space, byte tokens are <c>&lt;0xXX&gt;</c>.</summary>
    SentencePiece,
    /// <summary>GPT-2 byte level: every char stands for one byte.</summary>
    ByteLevel,
}

/// <summary>Defaults that depend on the tokenizer model and pre-tokenizer, before the metadata overrides them.</summary>
internal readonly record struct VocabularyDefaults(
    PieceEncoding Encoding, int Bos, int Eos, int Unk, bool AddBos, bool AddSpacePrefix, bool CleanSpaces, int Sep = -1, bool AddSep = false);

/// <summary>
/// The vocabulary part of a GGUF tokenizer, loaded as llama.cpp's llama_vocab::load does: token texts,
/// scores and attributes, special token ids (metadata, then llama.cpp's defaults and name heuristics),
/// the end-of-generation set, special tokens by length for text partitioning, and each token's bytes.
/// Immutable after construction.
/// </summary>
internal sealed class TokenizerVocabulary
{
    private const string Prefix = "tokenizer.ggml.";

    private readonly Dictionary<string, int> _ids;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly bool[] _endOfGeneration;
    // Bytes of every token rendered with special tokens shown: token i is _pieceData[_pieceStart[i].._pieceStart[i+1]].
    private readonly byte[] _pieceData;
    private readonly int[] _pieceStart;

    public string[] Texts { get; }
    public float[] Scores { get; }
    public TokenAttributes[] Attributes { get; }
    public int Count => Texts.Length;
    /// <summary>Length in chars of the longest token text (no longer span can be a token).</summary>
    public int MaxTokenLength { get; }

    public int Bos { get; } = -1;
    public int Eos { get; } = -1;
    public int Eot { get; } = -1;
    public int Unk { get; } = -1;
    public int Pad { get; } = -1;
    public int Sep { get; } = -1;
    public bool AddBos { get; }
    public bool AddEos { get; }
    public bool AddSep { get; }
    public bool AddSpacePrefix { get; }
    public bool CleanSpaces { get; }
    /// <summary>tokenizer.chat_template.rerank: a reranker's prompt with {query} and {document} in it, or null.</summary>
    public string? RerankTemplate { get; }

    /// <summary>Control, user-defined and unknown tokens, longest text (in UTF-8 bytes) first.</summary>
    public int[] SpecialTokensByLength { get; }

    /// <summary>Whether a special token swallows the whitespace beside it (lstrip/rstrip), so whitespace may cost no token.</summary>
    public bool SwallowsWhitespace { get; }

    /// <summary>The most bytes of input text one token can stand for (<see cref="CountInputBytes"/>: whitespace aside when <see cref="SwallowsWhitespace"/>).</summary>
    public int MaxInputBytesPerToken { get; }

    public TokenizerVocabulary(GgufMetadata metadata, VocabularyDefaults defaults)
    {
        string[] tokens = metadata.GetArray<string>(Prefix + "tokens");
        int n = tokens.Length;
        Scores = ReadScores(metadata, n);
        int[]? types = metadata.GetInt32ArrayOrNull(Prefix + "token_type");
        if (types is not null && types.Length < n)
            throw new GgufFormatException(metadata.FindEntry(Prefix + "token_type")!.Offset,
                $"{Prefix}token_type has {types.Length} entries for {n} tokens");

        Texts = new string[n];
        Attributes = new TokenAttributes[n];
        _ids = new Dictionary<string, int>(n, StringComparer.Ordinal);
        for (int i = 0; i < n; i++)
        {
            string text = tokens[i].Length == 0 ? $"[EMPTY_{i}]" : tokens[i];
            if (!_ids.TryAdd(text, i))
                throw new GgufFormatException(metadata.FindEntry(Prefix + "tokens")!.Offset,
                    $"duplicate token in vocabulary: \"{text}\" has ids {_ids[text]} and {i}");
            Texts[i] = text;
            MaxTokenLength = Math.Max(MaxTokenLength, text.Length);
            Attributes[i] = types is null ? TokenAttributes.Normal : FromType(types[i]);
        }
        _lookup = _ids.GetAlternateLookup<ReadOnlySpan<char>>();

        int InRange(int id) => id >= 0 && id < n ? id : -1;
        int bos = InRange(defaults.Bos), eos = InRange(defaults.Eos), unk = InRange(defaults.Unk), sep = InRange(defaults.Sep);
        int eot = -1, eom = -1, pad = -1, fimPre = -1, fimSuf = -1, fimMid = -1, fimPad = -1, fimRep = -1, fimSep = -1;
        ReadId(metadata, "bos_token_id", n, ref bos);
        ReadId(metadata, "eos_token_id", n, ref eos);
        ReadId(metadata, "eot_token_id", n, ref eot);
        ReadId(metadata, "eom_token_id", n, ref eom);
        ReadId(metadata, "unknown_token_id", n, ref unk);
        ReadId(metadata, "padding_token_id", n, ref pad);
        ReadId(metadata, "seperator_token_id", n, ref sep);
        ReadId(metadata, "fim_pre_token_id", n, ref fimPre);
        ReadId(metadata, "fim_suf_token_id", n, ref fimSuf);
        ReadId(metadata, "fim_mid_token_id", n, ref fimMid);
        ReadId(metadata, "fim_pad_token_id", n, ref fimPad);
        ReadId(metadata, "fim_rep_token_id", n, ref fimRep);
        ReadId(metadata, "fim_sep_token_id", n, ref fimSep);
        ReadId(metadata, "prefix_token_id", n, ref fimPre);
        ReadId(metadata, "suffix_token_id", n, ref fimSuf);
        ReadId(metadata, "middle_token_id", n, ref fimMid);

        AddBos = metadata.GetBoolean(Prefix + "add_bos_token", defaults.AddBos);
        AddEos = metadata.GetBoolean(Prefix + "add_eos_token", false);
        AddSep = metadata.GetBoolean(Prefix + "add_sep_token", defaults.AddSep);
        AddSpacePrefix = metadata.GetBoolean(Prefix + "add_space_prefix", defaults.AddSpacePrefix);
        CleanSpaces = defaults.CleanSpaces;
        RerankTemplate = metadata.GetStringOrNull("tokenizer.chat_template.rerank");
        if (AddBos && bos < 0)
            throw new GgufFormatException(0, $"{Prefix}add_bos_token is true, but {Prefix}bos_token_id is not set");
        if (AddEos && eos < 0)
            throw new GgufFormatException(0, $"{Prefix}add_eos_token is true, but {Prefix}eos_token_id is not set");
        // The key's spelling is llama.cpp's.
        if (AddSep && sep < 0)
            throw new GgufFormatException(0, $"{Prefix}add_sep_token is true, but {Prefix}seperator_token_id is not set");

        // Special tokens the converter did not mark, found by their text (the first name present wins).
        DetectByText(ref eot, EotNames.AsSpan());
        DetectByText(ref eom, ["<|eom_id|>"]);
        DetectByText(ref fimPre, ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"]);
        DetectByText(ref fimSuf, ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"]);
        DetectByText(ref fimMid, ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"]);
        DetectByText(ref fimPad, ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"]);
        DetectByText(ref fimRep, ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"]);
        DetectByText(ref fimSep, ["<|file_sep|>"]);

        _endOfGeneration = BuildEndOfGeneration(eos, eot, eom, fimPad, fimRep, fimSep);
        (Bos, Eos, Eot, Unk, Pad, Sep) = (bos, eos, eot, unk, pad, sep);

        SpecialTokensByLength = Enumerable.Range(0, n)
            .Where(i => (Attributes[i] & (TokenAttributes.Control | TokenAttributes.UserDefined | TokenAttributes.Unknown)) != 0)
            .OrderByDescending(i => Encoding.UTF8.GetByteCount(Texts[i]))
            .ThenBy(i => i)
            .ToArray();

        (_pieceData, _pieceStart) = BuildPieces(defaults.Encoding);
        ApplyStripHeuristics(metadata);
        SwallowsWhitespace = SpecialTokensByLength.Any(i => (Attributes[i] & (TokenAttributes.LStrip | TokenAttributes.RStrip)) != 0);
        MaxInputBytesPerToken = MaxInputBytes(defaults.Encoding);
    }

    /// <summary>
    /// The UTF-8 bytes of <paramref name="text"/>, ASCII whitespace not counted when <paramref name="skipWhitespace"/>; a lone
    /// surrogate (encoded as U+FFFD, 3 bytes) counts 2, so the count never exceeds what the text encodes to.
    /// </summary>
    public static long CountInputBytes(ReadOnlySpan<char> text, bool skipWhitespace)
    {
        long bytes = 0;
        foreach (char c in text)
            bytes += c < 0x80 ? (skipWhitespace && c is ' ' or '\t' or '\n' or '\v' or '\f' or '\r' ? 0 : 1) : c < 0x800 || char.IsSurrogate(c) ? 2 : 3;
        return bytes;
    }

    // A token matched by its text (special tokens parsed from the input; every SentencePiece token, since the input may
    // hold ▁ itself, 3 bytes) covers at most its text's bytes; a byte-level token covers one byte per char.
    private int MaxInputBytes(PieceEncoding encoding)
    {
        long max = 1;
        for (int i = 0; i < Count; i++)
        {
            bool literal = encoding == PieceEncoding.SentencePiece
                || (Attributes[i] & (TokenAttributes.Control | TokenAttributes.UserDefined | TokenAttributes.Unknown)) != 0;
            max = Math.Max(max, literal ? CountInputBytes(Texts[i], SwallowsWhitespace) : Texts[i].Length);
        }
        return (int)Math.Min(max, int.MaxValue);
    }

    /// <summary>The id of the token whose text is exactly <paramref name="text"/>, or -1.</summary>
    public int Find(ReadOnlySpan<char> text) =>
        text.Length <= MaxTokenLength && _lookup.TryGetValue(text, out int id) ? id : -1;

    public bool IsEndOfGeneration(int id) => (uint)id < (uint)_endOfGeneration.Length && _endOfGeneration[id];

    /// <summary>A token's bytes; control and unknown tokens are empty unless <paramref name="special"/>.</summary>
    public ReadOnlySpan<byte> Piece(int id, bool special)
    {
        if (!special && (Attributes[id] & (TokenAttributes.Control | TokenAttributes.Unknown)) != 0)
            return default;
        return _pieceData.AsSpan(_pieceStart[id], _pieceStart[id + 1] - _pieceStart[id]);
    }

    private static readonly ImmutableArray<string> EotNames =
    [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>",
        "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>",
    ];

    private static readonly ImmutableArray<string> EndOfGenerationNames =
    [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
        "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
        "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~[",
    ];

    private void DetectByText(ref int id, ReadOnlySpan<string> names)
    {
        if (id >= 0)
            return;
        foreach (string name in names)
        {
            if (_ids.TryGetValue(name, out int found))
            {
                id = found;
                Attributes[found] |= TokenAttributes.Control;
                return;
            }
        }
    }

    private bool[] BuildEndOfGeneration(int eos, int eot, int eom, int fimPad, int fimRep, int fimSep)
    {
        var eog = new bool[Count];
        foreach (int id in new[] { fimPad, fimRep, fimSep })
        {
            if (id >= 0)
                eog[id] = true;
        }
        foreach (string name in EndOfGenerationNames)
        {
            if (_ids.TryGetValue(name, out int id))
            {
                eog[id] = true;
                Attributes[id] |= TokenAttributes.Control;
            }
        }
        // gpt-oss: always rendered.
        foreach (string name in new[] { "<|channel|>", "<|message|>", "<|start|>", "<|constrain|>" })
        {
            if (_ids.TryGetValue(name, out int id))
                Attributes[id] = TokenAttributes.UserDefined;
        }
        foreach (int id in new[] { eos, eot, eom })
        {
            if (id >= 0)
                eog[id] = true;
        }

        bool IsEog(string name, out int id) => _ids.TryGetValue(name, out id) && eog[id];
        // o200k_harmony and solar-open: "<|end|>" ends a message, not the generation.
        bool hasCall = IsEog("<|call|>", out _) || IsEog("<|calls|>", out _);
        bool hasReturnOrFlush = IsEog("<|return|>", out _) || IsEog("<|flush|>", out _);
        if (IsEog("<|end|>", out int end) && hasCall && hasReturnOrFlush)
        {
            eog[end] = false;
            Attributes[end] = TokenAttributes.UserDefined;
        }
        // gemma4 and paddleocr: "</s>" is not an end-of-generation token when "<|tool_response>" is.
        if (IsEog("<|tool_response>", out _) && IsEog("</s>", out int s))
        {
            eog[s] = false;
            Attributes[s] = TokenAttributes.Normal;
        }
        return eog;
    }

    // Whitespace stripping around special tokens, by model name as llama.cpp sets it.
    private void ApplyStripHeuristics(GgufMetadata metadata)
    {
        string name = (metadata.GetStringOrNull("general.name") ?? "").ToLowerInvariant();
        string pre = metadata.GetStringOrNull(Prefix + "pre") ?? "";
        string arch = metadata.GetStringOrNull("general.architecture") ?? "";
        void Set(string text, TokenAttributes flag, bool on)
        {
            if (_ids.TryGetValue(text, out int id))
                Attributes[id] = on ? Attributes[id] | flag : Attributes[id] & ~flag;
        }

        if (new[] { "jina-v2-de", "jina-v2-es", "jina-v2-code" }.Any(pre.Contains) || new[] { "nomic-bert-moe", "jina-bert-v3" }.Any(arch.Contains))
        {
            Set("<mask>", TokenAttributes.LStrip, true);
        }
        else if (name.Contains("phi-3") || name.Contains("phi3"))
        {
            foreach (int id in SpecialTokensByLength)
                Attributes[id] |= TokenAttributes.RStrip;
            Set("</s>", TokenAttributes.RStrip, true);
            foreach (string text in new[] { "<unk>", "<s>", "<|endoftext|>" })
                Set(text, TokenAttributes.RStrip, false);
        }
        else if (name.Contains("modern-bert"))
        {
            Set("[MASK]", TokenAttributes.LStrip, true);
        }
    }

    private (byte[] Data, int[] Start) BuildPieces(PieceEncoding encoding)
    {
        var data = new byte[Count * 8 + 64];
        var start = new int[Count + 1];
        int length = 0;
        for (int id = 0; id < Count; id++)
        {
            start[id] = length;
            string text = Texts[id];
            var attr = Attributes[id];
            // A token's bytes never outnumber 3 per char, except for chars outside the byte map (below).
            if (data.Length - length < text.Length * 3 + 64)
                Array.Resize(ref data, Math.Max(data.Length * 2, length + text.Length * 3 + 64));
            var dest = data.AsSpan(length);
            if ((attr & (TokenAttributes.Unknown | TokenAttributes.Control | TokenAttributes.UserDefined)) != 0)
                length += Encoding.UTF8.GetBytes(text, dest);
            else if ((attr & TokenAttributes.Normal) != 0 && encoding == PieceEncoding.SentencePiece)
                length += SentencePieceBytes(text, dest);
            else if ((attr & TokenAttributes.Normal) != 0)
            {
                byte[] bytes = ByteLevelBytes(text);
                if (data.Length - length < bytes.Length)
                    Array.Resize(ref data, Math.Max(data.Length * 2, length + bytes.Length));
                bytes.CopyTo(data, length);
                length += bytes.Length;
            }
            else if ((attr & TokenAttributes.Byte) != 0)
                data[length++] = ByteOfByteToken(text);
        }
        start[Count] = length;
        Array.Resize(ref data, length);
        return (data, start);
    }

    // ▁ → space.
    private static int SentencePieceBytes(string text, Span<byte> dest)
    {
        int n = Encoding.UTF8.GetBytes(text, dest);
        for (int i = 0; i + 2 < n; i++)
        {
            if (dest[i] == 0xE2 && dest[i + 1] == 0x96 && dest[i + 2] == 0x81)
            {
                dest[i] = (byte)' ';
                dest[(i + 3)..n].CopyTo(dest[(i + 1)..]);
                n -= 2;
            }
        }
        return n;
    }

    // Undoes the GPT-2 byte map; a char outside the map renders as llama.cpp does: [UNK_BYTE_0x<utf8 hex><token>].
    private static byte[] ByteLevelBytes(string text)
    {
        var bytes = new byte[text.Length];
        int n = 0;
        foreach (char c in text)
        {
            int b = ByteLevelEncoding.ToByte(c);
            if (b < 0)
                return ByteLevelBytesSlow(text);
            bytes[n++] = (byte)b;
        }
        return bytes;
    }

    private static byte[] ByteLevelBytesSlow(string text)
    {
        var data = new List<byte>();
        Span<byte> utf8 = stackalloc byte[4];
        foreach (var rune in text.EnumerateRunes())
        {
            int b = ByteLevelEncoding.ToByte(rune.Value);
            if (b >= 0)
            {
                data.Add((byte)b);
                continue;
            }
            int len = rune.EncodeToUtf8(utf8);
            var sb = new StringBuilder("[UNK_BYTE_0x");
            for (int i = 0; i < len; i++)
                sb.Append(utf8[i].ToString("x2"));
            sb.Append(text).Append(']');
            data.AddRange(Encoding.UTF8.GetBytes(sb.ToString()));
        }
        return data.ToArray();
    }

    // "<0xAB>" → 0xAB: the two chars after "<0x", read as hex up to the first non-hex char (strtol).
    private static byte ByteOfByteToken(string text)
    {
        int value = 0;
        for (int i = 3; i < Math.Min(5, text.Length); i++)
        {
            int d = HexValue(text[i]);
            if (d < 0)
                break;
            value = value * 16 + d;
        }
        return (byte)value;
    }

    private static int HexValue(char c) => c switch
    {
        >= '0' and <= '9' => c - '0',
        >= 'a' and <= 'f' => c - 'a' + 10,
        >= 'A' and <= 'F' => c - 'A' + 10,
        _ => -1,
    };

    private static TokenAttributes FromType(int type) => type switch
    {
        (int)TokenType.Normal => TokenAttributes.Normal,
        (int)TokenType.Unknown => TokenAttributes.Unknown,
        (int)TokenType.Control => TokenAttributes.Control,
        (int)TokenType.UserDefined => TokenAttributes.UserDefined,
        (int)TokenType.Unused => TokenAttributes.Unused,
        (int)TokenType.Byte => TokenAttributes.Byte,
        _ => TokenAttributes.Undefined,
    };

    private static float[] ReadScores(GgufMetadata metadata, int n)
    {
        var entry = metadata.FindEntry(Prefix + "scores");
        if (entry is null)
            return new float[n];
        float[] scores = entry.Value.Value switch
        {
            GgufArray { Items: float[] f } => f,
            GgufArray { Items: int[] i } => Array.ConvertAll(i, v => (float)v),
            _ => throw new GgufFormatException(entry.Offset, $"{Prefix}scores should be an array of float32 or int32"),
        };
        if (scores.Length < n)
            throw new GgufFormatException(entry.Offset, $"{Prefix}scores has {scores.Length} entries for {n} tokens");
        return scores;
    }

    // An id from metadata replaces the default only when it names a token (llama.cpp ignores bad ids, e.g. 0xFFFFFFFF).
    private static void ReadId(GgufMetadata metadata, string key, int n, ref int id)
    {
        if (metadata.FindEntry(Prefix + key)?.Value.AsInt64 is long v && v >= 0 && v < n)
            id = (int)v;
    }
}

using System.Buffers;
using System.Text;
using ManagedLM.Gguf;

namespace ManagedLM.Tokenization;

/// <summary>
/// A tokenizer built from GGUF metadata that encodes and decodes exactly as llama.cpp does
/// (llama-vocab.cpp): special tokens split out first, then SentencePiece-style merges
/// (<see cref="SpmTokenizer"/>), byte-level BPE (<see cref="BpeTokenizer"/>) or BERT's WordPiece
/// (<see cref="WordPieceTokenizer"/>) on the text between them.
/// Immutable and safe to use from any number of threads.
/// </summary>
public abstract class Tokenizer
{
    private protected TokenizerVocabulary Vocabulary { get; }

    private protected Tokenizer(TokenizerVocabulary vocabulary, string model)
    {
        Vocabulary = vocabulary;
        Model = model;
        MaxBytesPerToken = vocabulary.MaxInputBytesPerToken;
    }

    /// <summary>Builds the tokenizer that <c>tokenizer.ggml.model</c> names ("llama", "gpt2" or "bert").</summary>
    /// <exception cref="NotSupportedException">An unknown tokenizer.ggml.model or tokenizer.ggml.pre.</exception>
    /// <exception cref="GgufFormatException">Missing or malformed tokenizer metadata.</exception>
    public static Tokenizer FromGguf(GgufMetadata metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        string model = metadata.GetString("tokenizer.ggml.model");
        return model switch
        {
            "llama" => new SpmTokenizer(metadata),
            "gpt2" => new BpeTokenizer(metadata),
            "bert" => new WordPieceTokenizer(metadata),
            _ => throw new NotSupportedException(
                $"Unsupported tokenizer: tokenizer.ggml.model = \"{model}\" (supported: \"llama\" (SentencePiece BPE), \"gpt2\" (byte-level BPE), \"bert\" (WordPiece))."),
        };
    }

    /// <summary>"llama", "gpt2" or "bert", as tokenizer.ggml.model says.</summary>
    public string Model { get; }
    public int VocabSize => Vocabulary.Count;
    /// <summary>Beginning-of-sequence id, or -1.</summary>
    public int BosTokenId => Vocabulary.Bos;
    /// <summary>End-of-sequence id, or -1.</summary>
    public int EosTokenId => Vocabulary.Eos;
    /// <summary>End-of-turn id (metadata, or found by name such as &lt;|eot_id|&gt;, &lt;|im_end|&gt;), or -1.</summary>
    public int EotTokenId => Vocabulary.Eot;
    /// <summary>Unknown-token id, or -1.</summary>
    public int UnknownTokenId => Vocabulary.Unk;
    /// <summary>Padding id, or -1.</summary>
    public int PaddingTokenId => Vocabulary.Pad;
    /// <summary>Separator id (tokenizer.ggml.seperator_token_id; BERT's [SEP], 102 by default for WordPiece), or -1.</summary>
    public int SeparatorTokenId => Vocabulary.Sep;
    /// <summary>The model's add_bos flag: <see cref="Encode"/> with special tokens starts with BOS (WordPiece: always, as llama.cpp).</summary>
    public bool AddBosToken => Vocabulary.AddBos;
    /// <summary>The model's add_eos flag: <see cref="Encode"/> with special tokens ends with EOS (WordPiece: never; it ends with SEP).</summary>
    public bool AddEosToken => Vocabulary.AddEos;
    /// <summary>The model's add_sep flag (tokenizer.ggml.add_sep_token; true by default for WordPiece): <see cref="EncodePair"/> puts SEP between the texts.</summary>
    public bool AddSeparatorToken => Vocabulary.AddSep;

    /// <summary>
    /// Token ids of <paramref name="text"/>. <paramref name="addSpecialTokens"/>: BOS/EOS as the model's
    /// add_bos/add_eos say (WordPiece: [CLS] … [SEP], whatever the flags, as llama.cpp). <paramref name="parseSpecialTokens"/>:
    /// control tokens written in the text (e.g. &lt;|begin_of_text|&gt;) become their ids; user-defined tokens are always recognized.
    /// Unpaired surrogates are encoded as U+FFFD.
    /// </summary>
    public int[] Encode(string text, bool addSpecialTokens = true, bool parseSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        var output = new List<int>(text.Length / 3 + 4);
        if (addSpecialTokens)
            AddLeadingSpecialTokens(output);
        EncodeInto(text, parseSpecialTokens, output);
        if (addSpecialTokens)
            AddTrailingSpecialTokens(output);
        return output.ToArray();
    }

    /// <summary>
    /// Token ids of a pair of texts (a reranker's query and document), laid out as llama.cpp's server lays out a rerank prompt
    /// (format_prompt_rerank). A model with a rerank template (tokenizer.chat_template.rerank) gets that template with
    /// <c>{query}</c> replaced by <paramref name="first"/>, then <c>{document}</c> by <paramref name="second"/>, encoded with
    /// special tokens parsed and none added. Otherwise: BOS (add_bos), <paramref name="first"/>, EOS (add_eos; SEP where the
    /// model has no EOS), SEP (add_sep), <paramref name="second"/>, EOS (add_eos), with special-token text in the texts not parsed.
    /// For BERT that is [CLS] first [SEP] second: llama.cpp puts no [SEP] after the second text (Hugging Face would).
    /// </summary>
    public int[] EncodePair(string first, string second)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        if (Vocabulary.RerankTemplate is { } template)
            return Encode(template.Replace("{query}", first, StringComparison.Ordinal).Replace("{document}", second, StringComparison.Ordinal),
                addSpecialTokens: false, parseSpecialTokens: true);

        int end = EosTokenId >= 0 ? EosTokenId : SeparatorTokenId;
        var output = new List<int>((first.Length + second.Length) / 3 + 8);
        if (AddBosToken)
            output.Add(BosTokenId);
        EncodeInto(first, parseSpecialTokens: false, output);
        if (AddEosToken)
            output.Add(end);
        if (AddSeparatorToken)
            output.Add(SeparatorTokenId);
        EncodeInto(second, parseSpecialTokens: false, output);
        if (AddEosToken)
            output.Add(end);
        return output.ToArray();
    }

    private void EncodeInto(string text, bool parseSpecialTokens, List<int> output)
    {
        text = ReplaceUnpairedSurrogates(text);
        bool afterSpecial = true;
        foreach (var fragment in SpecialTokenPartition.Split(Vocabulary, text, parseSpecialTokens))
        {
            if (fragment.Token >= 0)
            {
                output.Add(fragment.Token);
                afterSpecial = true;
            }
            else
            {
                EncodeText(text.AsSpan(fragment.Start, fragment.Length), afterSpecial, output);
                afterSpecial = false;
            }
        }
    }

    /// <summary>What <see cref="Encode"/> puts before the text when it adds special tokens: BOS where add_bos.</summary>
    private protected virtual void AddLeadingSpecialTokens(List<int> output)
    {
        if (AddBosToken)
            output.Add(BosTokenId);
    }

    /// <summary>What <see cref="Encode"/> puts after the text when it adds special tokens: EOS where add_eos.</summary>
    private protected virtual void AddTrailingSpecialTokens(List<int> output)
    {
        if (AddEosToken)
            output.Add(EosTokenId);
    }

    /// <summary>
    /// The most bytes of UTF-8 text one token stands for: the longest token text in bytes (a SentencePiece ▁ counts 3, since
    /// a text may hold ▁ itself), or one byte per char of a byte-level token; <see cref="int.MaxValue"/> where the vocabulary
    /// gives no bound (a byte-level vocabulary without a token for every byte and every merge drops what it cannot encode;
    /// WordPiece spends no token on whitespace, control characters and accents, and one [UNK] on a word of any length).
    /// </summary>
    public int MaxBytesPerToken { get; private protected init; }

    /// <summary>
    /// The fewest tokens <see cref="Encode"/> can turn <paramref name="text"/> into, found without encoding it: its UTF-8
    /// bytes over <see cref="MaxBytesPerToken"/>, rounded up (BOS/EOS not counted). Where a special token swallows the
    /// whitespace beside it (lstrip/rstrip, e.g. Phi-3's), ASCII whitespace is not counted, on either side. 0 when
    /// <see cref="MaxBytesPerToken"/> gives no bound.
    /// </summary>
    public int MinimumTokenCount(ReadOnlySpan<char> text)
    {
        if (MaxBytesPerToken == int.MaxValue)
            return 0;
        long bytes = TokenizerVocabulary.CountInputBytes(text, Vocabulary.SwallowsWhitespace);
        return (int)Math.Min((bytes + MaxBytesPerToken - 1) / MaxBytesPerToken, int.MaxValue);
    }

    /// <summary>
    /// <see cref="Encode"/> for a prompt that must fit a context of <paramref name="contextLength"/> tokens: a text that
    /// needs more tokens than that whatever it holds (<see cref="MinimumTokenCount"/>) is rejected before it is encoded,
    /// so a huge prompt costs no time or memory in proportion to its length. One that passes may still encode to more
    /// tokens than the context: the caller checks the ids.
    /// </summary>
    /// <exception cref="ArgumentException">The prompt needs more than <paramref name="contextLength"/> tokens.</exception>
    public int[] EncodePrompt(string prompt, int contextLength, bool addSpecialTokens = true, bool parseSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        // UTF-8 holds at most 3 bytes per char: short prompts need no count.
        if ((long)prompt.Length * 3 > (long)contextLength * MaxBytesPerToken && MinimumTokenCount(prompt) is var least && least > contextLength)
        {
            throw new ArgumentException(
                $"The prompt needs at least {least} tokens ({TokenizerVocabulary.CountInputBytes(prompt, Vocabulary.SwallowsWhitespace)} bytes of UTF-8" +
                $"{(Vocabulary.SwallowsWhitespace ? " besides whitespace" : "")}, at most {MaxBytesPerToken} per token); the context length is {contextLength}.",
                nameof(prompt));
        }
        return Encode(prompt, addSpecialTokens, parseSpecialTokens);
    }

    /// <summary>Encodes text that holds no special tokens; <paramref name="afterSpecial"/>: it starts the input or follows a special token.</summary>
    private protected abstract void EncodeText(ReadOnlySpan<char> text, bool afterSpecial, List<int> output);

    /// <summary>Whether generation ends at <paramref name="id"/> (EOS, EOT, EOM and the other tokens llama.cpp's llama_vocab_is_eog lists).</summary>
    public bool IsEndOfGeneration(int id) => Vocabulary.IsEndOfGeneration(id);

    /// <summary>Whether <paramref name="id"/> is a control token (BOS, EOS, chat markers...).</summary>
    public bool IsControl(int id) => (Vocabulary.Attributes[CheckId(id)] & TokenAttributes.Control) != 0;

    /// <summary>The type the file gives the token (control for tokens llama.cpp promotes by name).</summary>
    public TokenType GetTokenType(int id)
    {
        var attr = Vocabulary.Attributes[CheckId(id)];
        if ((attr & TokenAttributes.Control) != 0) return TokenType.Control;
        if ((attr & TokenAttributes.UserDefined) != 0) return TokenType.UserDefined;
        if ((attr & TokenAttributes.Unknown) != 0) return TokenType.Unknown;
        if ((attr & TokenAttributes.Byte) != 0) return TokenType.Byte;
        if ((attr & TokenAttributes.Unused) != 0) return TokenType.Unused;
        if ((attr & TokenAttributes.Normal) != 0) return TokenType.Normal;
        return TokenType.Undefined;
    }

    /// <summary>The vocabulary entry of <paramref name="id"/> as stored in the file (e.g. "▁Hello", "ĠHello", "&lt;0x0A&gt;").</summary>
    public string TokenText(int id) => Vocabulary.Texts[CheckId(id)];

    /// <summary>The id whose vocabulary entry is exactly <paramref name="text"/>, or -1.</summary>
    public int TokenId(string text) => Vocabulary.Find(text);

    /// <summary>
    /// Display text of one token: the bytes it decodes to (special tokens shown as their text) as UTF-8,
    /// with bytes that are not valid UTF-8 on their own shown as &lt;0xXX&gt;.
    /// </summary>
    public string TokenToPiece(int id)
    {
        var bytes = Vocabulary.Piece(CheckId(id), special: true);
        var sb = new StringBuilder(bytes.Length);
        while (!bytes.IsEmpty)
        {
            if (Rune.DecodeFromUtf8(bytes, out var rune, out int consumed) == OperationStatus.Done)
                sb.Append(rune.ToString());
            else
                for (int i = 0; i < consumed; i++)
                    sb.Append("<0x").Append(bytes[i].ToString("X2")).Append('>');
            bytes = bytes[consumed..];
        }
        return sb.ToString();
    }

    /// <summary>The raw bytes <paramref name="id"/> decodes to; control and unknown tokens are empty unless <paramref name="includeSpecial"/>.</summary>
    public ReadOnlySpan<byte> TokenBytes(int id, bool includeSpecial = false) => Vocabulary.Piece(CheckId(id), includeSpecial);

    /// <summary>Copies <see cref="TokenBytes"/> into <paramref name="dest"/>; returns the count.</summary>
    /// <exception cref="ArgumentException"><paramref name="dest"/> is shorter than the token's bytes.</exception>
    public int TokenToBytes(int id, Span<byte> dest, bool includeSpecial = false)
    {
        var bytes = TokenBytes(id, includeSpecial);
        if (!bytes.TryCopyTo(dest))
            throw new ArgumentException($"Token {id} has {bytes.Length} bytes; the destination holds {dest.Length}.", nameof(dest));
        return bytes.Length;
    }

    /// <summary>
    /// Text of <paramref name="ids"/>, as llama.cpp's llama_detokenize: <paramref name="skipSpecialTokens"/> drops
    /// a leading BOS / trailing EOS the model adds and renders control tokens as nothing (otherwise as their text);
    /// SentencePiece models drop the space prefix of the first token (unless a BOS was dropped), WordPiece keeps it
    /// (" hello world"); models with clean_up_tokenization_spaces (WordPiece among them) remove spaces before
    /// punctuation and contractions. Invalid UTF-8 becomes U+FFFD.
    /// </summary>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = true)
    {
        bool removeSpace = Vocabulary.AddSpacePrefix;
        if (skipSpecialTokens && AddBosToken && ids.Length > 0 && ids[0] == BosTokenId)
        {
            removeSpace = false;
            ids = ids[1..];
        }
        if (skipSpecialTokens && AddEosToken && ids.Length > 0 && ids[^1] == EosTokenId)
            ids = ids[..^1];

        var buffer = new ArrayBufferWriter<byte>(ids.Length * 4 + 16);
        foreach (int id in ids)
        {
            var piece = TokenBytes(id, includeSpecial: !skipSpecialTokens);
            if (removeSpace && !piece.IsEmpty && piece[0] == (byte)' ')
                piece = piece[1..];
            removeSpace = false;
            buffer.Write(piece);
        }
        if (!Vocabulary.CleanSpaces)
            return Encoding.UTF8.GetString(buffer.WrittenSpan);
        byte[] text = buffer.WrittenSpan.ToArray();
        int length = CleanSpaces(text);
        return Encoding.UTF8.GetString(text, 0, length);
    }

    /// <summary>The ids <see cref="Encode"/> puts before and after the text when it adds special tokens.</summary>
    internal (int[] Leading, int[] Trailing) SpecialTokensAround()
    {
        var leading = new List<int>(2);
        var trailing = new List<int>(2);
        AddLeadingSpecialTokens(leading);
        AddTrailingSpecialTokens(trailing);
        return (leading.ToArray(), trailing.ToArray());
    }

    /// <summary>
    /// This tokenizer as a <see cref="Microsoft.ML.Tokenizers.Tokenizer"/>, for code written against that abstraction
    /// (chunkers, token budgeting). See <see cref="MLTokenizerAdapter"/>.
    /// </summary>
    /// <param name="addSpecialTokens">Encodings start and end with the special tokens <see cref="Encode"/> adds (BOS/EOS as the model's flags say).</param>
    /// <param name="parseSpecialTokens">Control-token text in the input (e.g. &lt;|im_end|&gt;) becomes its id.</param>
    public MLTokenizerAdapter AsMLTokenizer(bool addSpecialTokens = false, bool parseSpecialTokens = false) =>
        new(this, addSpecialTokens, parseSpecialTokens);

    /// <summary>A decoder for one generation stream: bytes of tokens in, complete characters out.</summary>
    /// <param name="skipSpecialTokens">Control tokens produce no text (otherwise their text).</param>
    public StreamingDecoder CreateStreamingDecoder(bool skipSpecialTokens = true) => new(this, skipSpecialTokens);

    private protected int CheckId(int id) =>
        (uint)id < (uint)VocabSize ? id : throw new ArgumentOutOfRangeException(nameof(id), id, $"Token id must be in [0, {VocabSize}).");

    // llama.cpp's clean_up_tokenization_spaces passes, in place on the UTF-8 bytes; returns the new length.
    private static int CleanSpaces(byte[] text)
    {
        // " ?", " !", " .", " ,"
        int total1 = text.Length;
        int total = total1 > 0 ? 1 : 0;
        for (int i = 1; i < total1; i++)
        {
            byte x = text[i];
            if (text[i - 1] == ' ' && x is (byte)'?' or (byte)'!' or (byte)'.' or (byte)',')
                total--;
            text[total++] = x;
        }

        // " ' " → "'"
        int total2 = total;
        total = total2 > 0 ? 1 : 0;
        for (int i = 1; i < total2; i++)
        {
            byte x = text[i];
            if (x == '\'' && i + 1 < total2 && text[i - 1] == ' ' && text[i + 1] == ' ')
            {
                total--;
                text[++i] = 0;
            }
            text[total++] = x;
        }

        // " 's", " 'm", " 're", " 've" lose the space
        int total3 = total;
        total = total3 > 0 ? 1 : 0;
        for (int i = 1; i < total3; i++)
        {
            byte x = text[i];
            if (text[i - 1] == ' ' && x == '\'' && i + 1 < total3)
            {
                byte x1 = text[i + 1];
                if (x1 is (byte)'s' or (byte)'m')
                    total--;
                else if (x1 is not ((byte)'t' or (byte)'d') && i + 2 < total3)
                {
                    byte x2 = text[i + 2];
                    if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e'))
                        total--;
                }
            }
            text[total++] = x;
        }
        return total;
    }

    private static string ReplaceUnpairedSurrogates(string text)
    {
        int bad = -1;
        for (int i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
                i++;
            else if (char.IsSurrogate(text[i]))
            {
                bad = i;
                break;
            }
        }
        if (bad < 0)
            return text;
        var chars = text.ToCharArray();
        for (int i = bad; i < chars.Length; i++)
        {
            if (char.IsHighSurrogate(chars[i]) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1]))
                i++;
            else if (char.IsSurrogate(chars[i]))
                chars[i] = '\uFFFD';
        }
        return new string(chars);
    }
}

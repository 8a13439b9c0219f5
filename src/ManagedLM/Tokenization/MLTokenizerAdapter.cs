using System.Buffers;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace ManagedLM.Tokenization;

/// <summary>
/// A model's <see cref="Tokenizer"/> seen through Microsoft.ML.Tokenizers' <see cref="Microsoft.ML.Tokenizers.Tokenizer"/>
/// abstraction, so text chunkers and token budgeting written against it work with any GGUF model. Our tokenizer stays the
/// engine: the ids are exactly those of <see cref="Tokenizer.Encode"/> (llama.cpp's), the text that of <see cref="Tokenizer.Decode"/>.
/// Immutable and safe to use from any number of threads. Made by <see cref="Tokenizer.AsMLTokenizer"/>.
/// </summary>
/// <remarks>
/// <para><b>Offsets.</b> Each <see cref="EncodedToken.Offset"/> is the range of chars of the input that the token's bytes
/// came from, found by lining up the tokens' UTF-8 bytes with the input's. A byte-level BPE token (or a SentencePiece byte
/// token) that holds only part of a multi-byte char covers the whole char, so the tokens that split one char have
/// overlapping ranges (as Hugging Face's offsets do). Bytes the tokenizer inserts (SentencePiece's space prefix) belong to
/// no char: a token made only of them has an empty range; whitespace a special token swallows (lstrip/rstrip) belongs to
/// no token. Where the tokens do not spell the input (WordPiece lowercases and strips accents; a SentencePiece text with
/// chars the vocabulary cannot encode), the encoding reports a normalized text (the tokens' text, one token after the
/// other) and the offsets and char counts point into it, as ML.Tokenizers does for its normalizers.</para>
/// <para><b>Limits.</b> <c>maxTokenCount</c> counts the special tokens the adapter adds (BOS/EOS when made with
/// <c>addSpecialTokens</c>): they are always there, and the text gets what is left. The text is cut only between two
/// tokens that share no char (never inside a char a token covers), so an encoding may hold fewer tokens than the limit;
/// the chars before the cut (<c>charsConsumed</c>, <see cref="Microsoft.ML.Tokenizers.Tokenizer.GetIndexByTokenCount(string, int, out string?, out int, bool, bool)"/>)
/// encode to those tokens, or to fewer where the cut splits a run of whitespace that the pre-tokenizer keeps whole at the
/// end of a text (qwen2 and llama-bpe's <c>\s+(?!\S)</c>), so a chunk cut there never exceeds its budget. <see cref="EncodeSettings.ConsiderPreTokenization"/> and
/// <see cref="EncodeSettings.ConsiderNormalization"/> are ignored: the model's tokenizer always pre-tokenizes and normalizes.</para>
/// </remarks>
public sealed class MLTokenizerAdapter : Microsoft.ML.Tokenizers.Tokenizer
{
    private readonly int[] _leading;
    private readonly int[] _trailing;

    internal MLTokenizerAdapter(Tokenizer tokenizer, bool addSpecialTokens, bool parseSpecialTokens)
    {
        Engine = tokenizer;
        AddSpecialTokens = addSpecialTokens;
        ParseSpecialTokens = parseSpecialTokens;
        (_leading, _trailing) = addSpecialTokens ? tokenizer.SpecialTokensAround() : ([], []);
    }

    /// <summary>The model's tokenizer that does the work.</summary>
    public Tokenizer Engine { get; }

    /// <summary>Encodings start and end with the special tokens the model adds (BOS/EOS as its flags say; [CLS]/[SEP] for WordPiece).</summary>
    public bool AddSpecialTokens { get; }

    /// <summary>Control-token text in the input (e.g. &lt;|im_end|&gt;) becomes its id.</summary>
    public bool ParseSpecialTokens { get; }

    /// <inheritdoc/>
    protected override EncodeResults<EncodedToken> EncodeToTokens(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings)
    {
        var a = Analyze(text, textSpan);
        int k = a.PrefixTokens(Budget(settings.MaxTokenCount));
        var tokens = new List<EncodedToken>(_leading.Length + k + _trailing.Length);
        if (k >= 0)
        {
            foreach (int id in _leading)
                tokens.Add(new EncodedToken(id, Engine.TokenText(id), new Range(0, 0)));
            for (int t = 0; t < k; t++)
                tokens.Add(new EncodedToken(a.Ids[t], Engine.TokenText(a.Ids[t]), new Range(a.Starts[t], a.Ends[t])));
            int end = a.PrefixLength(k);
            foreach (int id in _trailing)
                tokens.Add(new EncodedToken(id, Engine.TokenText(id), new Range(end, end)));
        }
        return new EncodeResults<EncodedToken> { Tokens = tokens, NormalizedText = a.NormalizedText, CharsConsumed = k >= 0 ? a.PrefixLength(k) : 0 };
    }

    /// <inheritdoc/>
    protected override EncodeResults<int> EncodeToIds(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings)
    {
        var a = Analyze(text, textSpan);
        int k = a.PrefixTokens(Budget(settings.MaxTokenCount));
        var ids = new List<int>(_leading.Length + Math.Max(k, 0) + _trailing.Length);
        if (k >= 0)
        {
            ids.AddRange(_leading);
            ids.AddRange(a.Ids.AsSpan(0, k));
            ids.AddRange(_trailing);
        }
        return new EncodeResults<int> { Tokens = ids, NormalizedText = a.NormalizedText, CharsConsumed = k >= 0 ? a.PrefixLength(k) : 0 };
    }

    /// <inheritdoc/>
    protected override int CountTokens(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings)
    {
        var a = Analyze(text, textSpan);
        int k = a.PrefixTokens(Budget(settings.MaxTokenCount));
        return k >= 0 ? _leading.Length + k + _trailing.Length : 0;
    }

    /// <inheritdoc/>
    protected override int GetIndexByTokenCount(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings, bool fromEnd,
        out string? normalizedText, out int tokenCount)
    {
        var a = Analyze(text, textSpan);
        normalizedText = a.NormalizedText;
        int budget = Budget(settings.MaxTokenCount);
        int k = fromEnd ? a.SuffixTokens(budget) : a.PrefixTokens(budget);
        if (k < 0)
        {
            tokenCount = 0;
            return fromEnd ? a.Length : 0;
        }
        tokenCount = _leading.Length + k + _trailing.Length;
        return fromEnd ? a.SuffixStart(k) : a.PrefixLength(k);
    }

    /// <summary>Text of <paramref name="ids"/>, as <see cref="Tokenizer.Decode"/> with special tokens skipped.</summary>
    public override string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        return Engine.Decode(ids.ToArray(), skipSpecialTokens: true);
    }

    /// <summary>
    /// Writes the text of as many of <paramref name="ids"/> as fit into <paramref name="destination"/>: the text of the first
    /// <paramref name="idsConsumed"/> ids, a prefix of the text of them all (so no char a later token completes is cut).
    /// </summary>
    public override OperationStatus Decode(IEnumerable<int> ids, Span<char> destination, out int idsConsumed, out int charsWritten)
    {
        ArgumentNullException.ThrowIfNull(ids);
        int[] all = ids.ToArray();
        string full = Engine.Decode(all, skipSpecialTokens: true);
        if (full.Length <= destination.Length)
        {
            full.CopyTo(destination);
            idsConsumed = all.Length;
            charsWritten = full.Length;
            return OperationStatus.Done;
        }
        // The largest prefix of the ids whose text fits: found by bisection, then the first one down whose text starts the full text.
        int lo = 0, hi = all.Length - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) / 2;
            if (Engine.Decode(all.AsSpan(0, mid), skipSpecialTokens: true).Length <= destination.Length)
                lo = mid;
            else
                hi = mid - 1;
        }
        for (int k = lo; k > 0; k--)
        {
            string part = Engine.Decode(all.AsSpan(0, k), skipSpecialTokens: true);
            if (part.Length <= destination.Length && full.StartsWith(part, StringComparison.Ordinal))
            {
                part.CopyTo(destination);
                idsConsumed = k;
                charsWritten = part.Length;
                return OperationStatus.DestinationTooSmall;
            }
        }
        idsConsumed = 0;
        charsWritten = 0;
        return OperationStatus.DestinationTooSmall;
    }

    // The text tokens a limit leaves, after the added special tokens; -1 where those alone exceed it.
    private int Budget(int maxTokenCount)
    {
        if (maxTokenCount <= 0)
            throw new ArgumentOutOfRangeException(nameof(maxTokenCount), maxTokenCount, "The maximum token count must be positive.");
        return maxTokenCount - _leading.Length - _trailing.Length;
    }

    private Analysis Analyze(string? text, ReadOnlySpan<char> textSpan)
    {
        string input = text ?? textSpan.ToString();
        int[] ids = Engine.Encode(input, addSpecialTokens: false, ParseSpecialTokens);
        var pieces = new byte[ids.Length][];
        for (int t = 0; t < ids.Length; t++)
            pieces[t] = Engine.TokenBytes(ids[t], includeSpecial: true).ToArray();

        var starts = new int[ids.Length];
        var ends = new int[ids.Length];
        if (TryAlign(input, pieces, starts, ends))
            return new Analysis(ids, starts, ends, input.Length, null);

        // The tokens do not spell the input: offsets into the text they spell.
        byte[] joined = pieces.SelectMany(p => p).ToArray();
        string normalized = Encoding.UTF8.GetString(joined);
        if (TryAlign(normalized, pieces, starts, ends))
            return new Analysis(ids, starts, ends, normalized.Length, normalized);

        // Their bytes are not UTF-8 (an unknown token's text): each token's text on its own.
        var sb = new StringBuilder();
        for (int t = 0; t < ids.Length; t++)
        {
            starts[t] = sb.Length;
            sb.Append(Encoding.UTF8.GetString(pieces[t]));
            ends[t] = sb.Length;
        }
        return new Analysis(ids, starts, ends, sb.Length, sb.ToString());
    }

    /// <summary>
    /// Lines up the tokens' bytes with the UTF-8 of <paramref name="text"/> (unpaired surrogates as U+FFFD, as the tokenizer
    /// reads them), allowing spaces the tokenizer inserts and ASCII whitespace it drops, and writes each token's char range.
    /// </summary>
    private static bool TryAlign(string text, byte[][] pieces, int[] starts, int[] ends)
    {
        byte[] input = Encoding.UTF8.GetBytes(text);
        // floor[b]: the char that byte b belongs to; ceil[b]: the first char boundary at or after byte b.
        var floor = new int[input.Length + 1];
        var ceil = new int[input.Length + 1];
        int pos = 0;
        for (int c = 0; c < text.Length;)
        {
            int chars = char.IsHighSurrogate(text[c]) && c + 1 < text.Length && char.IsLowSurrogate(text[c + 1]) ? 2 : 1;
            int bytes = chars == 2 ? 4 : char.IsSurrogate(text[c]) ? 3 : Encoding.UTF8.GetByteCount(text.AsSpan(c, 1));
            for (int k = 0; k < bytes; k++)
            {
                floor[pos + k] = c;
                ceil[pos + k] = k == 0 ? c : c + chars;
            }
            pos += bytes;
            c += chars;
        }
        floor[pos] = ceil[pos] = text.Length;

        int j = 0;
        for (int t = 0; t < pieces.Length; t++)
        {
            int first = -1, last = -1;
            foreach (byte b in pieces[t])
            {
                while (true)
                {
                    if (j < input.Length && input[j] == b)
                    {
                        if (first < 0)
                            first = j;
                        last = ++j;
                        break;
                    }
                    if (b == (byte)' ')
                        break; // inserted by the tokenizer
                    if (j < input.Length && input[j] is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r')
                    {
                        j++; // dropped by the tokenizer
                        continue;
                    }
                    return false;
                }
            }
            if (first < 0)
                starts[t] = ends[t] = ceil[j];
            else
            {
                starts[t] = floor[first];
                ends[t] = ceil[last];
            }
        }
        while (j < input.Length && input[j] is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r')
            j++;
        return j == input.Length;
    }

    /// <summary>One text's tokens (without the added special tokens) and their char ranges in a text of <see cref="Length"/> chars.</summary>
    private sealed record Analysis(int[] Ids, int[] Starts, int[] Ends, int Length, string? NormalizedText)
    {
        // Whether the text can be cut between token k-1 and token k: no char shared.
        private bool CleanCut(int k) => k == 0 || k == Ids.Length || Ends[k - 1] <= Starts[k];

        /// <summary>The most leading tokens, at most <paramref name="budget"/>, that end at a clean cut; -1 when the budget is negative.</summary>
        public int PrefixTokens(int budget)
        {
            if (budget < 0)
                return -1;
            int k = Math.Min(budget, Ids.Length);
            // A cut inside a char, or after a token that covers no char (SentencePiece's space prefix before a text whose
            // next char the budget leaves out): the text before the cut would not encode to those tokens.
            while (k > 0 && (!CleanCut(k) || (k < Ids.Length && Starts[k - 1] == Ends[k - 1])))
                k--;
            return k;
        }

        /// <summary>The most trailing tokens, at most <paramref name="budget"/>, that start at a clean cut; -1 when the budget is negative.</summary>
        public int SuffixTokens(int budget)
        {
            if (budget < 0)
                return -1;
            int k = Math.Min(budget, Ids.Length);
            while (!CleanCut(Ids.Length - k))
                k--;
            return k;
        }

        /// <summary>The chars the first <paramref name="k"/> tokens take: all of them when k is every token.</summary>
        public int PrefixLength(int k) => k == Ids.Length ? Length : k == 0 ? 0 : Ends[k - 1];

        /// <summary>Where the last <paramref name="k"/> tokens start: 0 when k is every token.</summary>
        public int SuffixStart(int k) => k == Ids.Length ? 0 : k == 0 ? Length : Starts[Ids.Length - k];
    }
}

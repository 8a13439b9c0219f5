using System.Buffers;
using ManagedLM.Gguf;

namespace ManagedLM.Tokenization;

/// <summary>
/// SentencePiece-style BPE (<c>tokenizer.ggml.model = llama</c>), as llama.cpp's llm_tokenizer_spm: spaces
/// become ▁ (plus a leading ▁ per add_space_prefix), the text splits into code points, and adjacent pairs
/// whose concatenation is a token merge highest score first. Symbols that are not tokens fall back to
/// their UTF-8 bytes as &lt;0xXX&gt; tokens (the unknown token when the vocabulary has no such byte token).
/// </summary>
public sealed class SpmTokenizer : Tokenizer
{
    private const char Space = '▁';

    // Token per byte: <0xXX>, else the one-char token for ASCII bytes, else -1.
    private readonly int[] _byteTokens = new int[256];

    internal SpmTokenizer(GgufMetadata metadata)
        : base(new TokenizerVocabulary(metadata, new VocabularyDefaults(
            PieceEncoding.SentencePiece, Bos: 1, Eos: 2, Unk: 0, AddBos: true, AddSpacePrefix: true, CleanSpaces: false)), "llama")
    {
        for (int b = 0; b < 256; b++)
        {
            int id = Vocabulary.Find($"<0x{b:X2}>");
            if (id < 0 && b < 0x80)
                id = Vocabulary.Find(((char)b).ToString());
            _byteTokens[b] = id;
        }
    }

    /// <summary>Whether text gets a leading space (▁) at its start and after each special token.</summary>
    public bool AddSpacePrefix => Vocabulary.AddSpacePrefix;

    private readonly record struct Bigram(float Score, int Left, int Right, int Size) : IMergeCandidate<Bigram>
    {
        // Highest score first; ties: leftmost first.
        public int CompareTo(Bigram other) =>
            Score != other.Score ? other.Score.CompareTo(Score) : Left.CompareTo(other.Left);
    }

    private protected override void EncodeText(ReadOnlySpan<char> text, bool afterSpecial, List<int> output)
    {
        bool prefix = AddSpacePrefix && afterSpecial;
        int length = text.Length + (prefix ? 1 : 0);
        char[] buffer = ArrayPool<char>.Shared.Rent(length);
        try
        {
            int n = 0;
            if (prefix)
                buffer[n++] = Space;
            foreach (char c in text)
                buffer[n++] = c == ' ' ? Space : c;
            Tokenize(buffer.AsSpan(0, n), output);
        }
        finally
        {
            ArrayPool<char>.Shared.Return(buffer);
        }
    }

    private void Tokenize(ReadOnlySpan<char> text, List<int> output)
    {
        var queue = new MergeQueue<Bigram>();
        queue.Reset(text, byChar: false);
        for (int i = 1; i < queue.SymbolCount; i++)
            TryAddBigram(queue, text, i - 1, i);

        while (queue.TryMergeNext(out var merged))
        {
            var left = queue.Symbols[merged.Left];
            TryAddBigram(queue, text, left.Prev, merged.Left);
            TryAddBigram(queue, text, merged.Left, left.Next);
        }

        Span<byte> utf8 = stackalloc byte[4];
        for (int i = queue.SymbolCount > 0 ? 0 : -1; i != -1; i = queue.Symbols[i].Next)
        {
            var symbol = queue.Symbols[i];
            var piece = text.Slice(symbol.Start, symbol.Length);
            int id = Vocabulary.Find(piece);
            if (id >= 0)
            {
                output.Add(id);
                continue;
            }
            foreach (var rune in piece.EnumerateRunes())
            {
                int count = rune.EncodeToUtf8(utf8);
                for (int j = 0; j < count; j++)
                    output.Add(ByteToken(utf8[j]));
            }
        }
    }

    private int ByteToken(byte b)
    {
        int id = _byteTokens[b];
        if (id >= 0)
            return id;
        return UnknownTokenId >= 0 ? UnknownTokenId
            : throw new InvalidOperationException($"The vocabulary has no token for byte 0x{b:X2} and no unknown token.");
    }

    private void TryAddBigram(MergeQueue<Bigram> queue, ReadOnlySpan<char> text, int left, int right)
    {
        if (left < 0 || right < 0)
            return;
        ref var l = ref queue.Symbols[left];
        int size = l.Length + queue.Symbols[right].Length;
        int id = Vocabulary.Find(text.Slice(l.Start, size));
        if (id < 0)
            return;
        queue.Push(new Bigram(Vocabulary.Scores[id], left, right, size));
    }
}

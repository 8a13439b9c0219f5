using System.Buffers;
using ManagedLM.Gguf;

namespace ManagedLM.Tokenization;

/// <summary>
/// Byte-level BPE (<c>tokenizer.ggml.model = gpt2</c>), as llama.cpp's llm_tokenizer_bpe: the pre-tokenizer
/// named by tokenizer.ggml.pre splits the text into words, each word's UTF-8 bytes map to GPT-2's printable
/// byte chars, and adjacent symbols merge lowest merge rank first.
/// </summary>
public sealed class BpeTokenizer : Tokenizer
{
    // Merge rank by "left right", the merge's own text (the first space after position 0 separates the pair).
    private readonly Dictionary<string, int> _ranks;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _rankLookup;
    private readonly BpePreTokenizer _preTokenizer;

    internal BpeTokenizer(GgufMetadata metadata) : this(metadata, BpePreTokenizer.ForName(metadata.GetStringOrNull("tokenizer.ggml.pre")))
    {
    }

    private BpeTokenizer(GgufMetadata metadata, BpePreTokenizer pre)
        : base(new TokenizerVocabulary(metadata, new VocabularyDefaults(
            PieceEncoding.ByteLevel, Bos: pre.NoDefaultBos ? -1 : 11, Eos: 11, Unk: -1, pre.AddBosByDefault, AddSpacePrefix: false, pre.CleanSpaces)), "gpt2")
    {
        _preTokenizer = pre;
        string[] merges = metadata.GetArray<string>("tokenizer.ggml.merges");
        _ranks = new Dictionary<string, int>(merges.Length, StringComparer.Ordinal);
        for (int rank = 0; rank < merges.Length; rank++)
        {
            if (merges[rank].IndexOf(' ', 1) > 0)
                _ranks.TryAdd(merges[rank], rank);
        }
        _rankLookup = _ranks.GetAlternateLookup<ReadOnlySpan<char>>();
        if (!EncodesEveryByte())
            MaxBytesPerToken = int.MaxValue;
    }

    // Whether every byte and every merge's result is a token: otherwise a word can lose bytes (a symbol that is not a token
    // is dropped, as llama.cpp does), and no token count bounds a text's length.
    private bool EncodesEveryByte()
    {
        for (int b = 0; b < 256; b++)
        {
            if (Vocabulary.Find([ByteLevelEncoding.ToChar((byte)b)]) < 0)
                return false;
        }
        char[] merged = ArrayPool<char>.Shared.Rent(64);
        try
        {
            foreach (string merge in _ranks.Keys)
            {
                int space = merge.IndexOf(' ', 1);
                // Symbols hold no space (the byte map has none), so a merge with another never applies.
                if (merge[0] == ' ' || merge.AsSpan(space + 1).Contains(' '))
                    continue;
                if (merged.Length < merge.Length)
                {
                    ArrayPool<char>.Shared.Return(merged);
                    merged = ArrayPool<char>.Shared.Rent(merge.Length);
                }
                merge.AsSpan(0, space).CopyTo(merged);
                merge.AsSpan(space + 1).CopyTo(merged.AsSpan(space));
                if (Vocabulary.Find(merged.AsSpan(0, merge.Length - 1)) < 0)
                    return false;
            }
            return true;
        }
        finally
        {
            ArrayPool<char>.Shared.Return(merged);
        }
    }

    /// <summary>The pre-tokenizer (tokenizer.ggml.pre) in use.</summary>
    public string PreTokenizer => _preTokenizer.Name;

    /// <summary>Number of merges.</summary>
    public int MergeCount => _ranks.Count;

    private readonly record struct Bigram(int Rank, int Left, int Right, int Size) : IMergeCandidate<Bigram>
    {
        // Lowest rank first; ties: leftmost first.
        public int CompareTo(Bigram other) => Rank != other.Rank ? Rank.CompareTo(other.Rank) : Left.CompareTo(other.Left);
    }

    private protected override void EncodeText(ReadOnlySpan<char> text, bool afterSpecial, List<int> output)
    {
        int[] cps = new int[text.Length];
        int count = Codepoints.Decode(text, cps);
        var words = _preTokenizer.Split(cps, count);
        var queue = new MergeQueue<Bigram>();
        char[] word = ArrayPool<char>.Shared.Rent(64);
        char[] key = ArrayPool<char>.Shared.Rent(64);
        try
        {
            Span<byte> utf8 = stackalloc byte[4];
            int pos = 0;
            foreach (int length in words)
            {
                if (word.Length < length * 4)
                {
                    ArrayPool<char>.Shared.Return(word);
                    word = ArrayPool<char>.Shared.Rent(length * 4);
                }
                int n = 0;
                for (int i = pos; i < pos + length; i++)
                {
                    int bytes = Codepoints.EncodeUtf8(cps[i], utf8);
                    for (int j = 0; j < bytes; j++)
                        word[n++] = ByteLevelEncoding.ToChar(utf8[j]);
                }
                pos += length;
                EncodeWord(word.AsSpan(0, n), queue, ref key, output);
            }
        }
        finally
        {
            ArrayPool<char>.Shared.Return(word);
            ArrayPool<char>.Shared.Return(key);
        }
    }

    private void EncodeWord(ReadOnlySpan<char> word, MergeQueue<Bigram> queue, ref char[] key, List<int> output)
    {
        if (_preTokenizer.IgnoreMerges && Vocabulary.Find(word) is int whole and >= 0)
        {
            output.Add(whole);
            return;
        }
        if (key.Length < word.Length + 1)
        {
            ArrayPool<char>.Shared.Return(key);
            key = ArrayPool<char>.Shared.Rent(word.Length + 1);
        }

        queue.Reset(word, byChar: true);
        for (int i = 1; i < queue.SymbolCount; i++)
            TryAddBigram(queue, word, key, i - 1, i);
        while (queue.TryMergeNext(out var merged))
        {
            var left = queue.Symbols[merged.Left];
            TryAddBigram(queue, word, key, left.Prev, merged.Left);
            TryAddBigram(queue, word, key, merged.Left, left.Next);
        }

        for (int i = 0; i < queue.SymbolCount; i++)
        {
            var symbol = queue.Symbols[i];
            if (symbol.Length == 0)
                continue;
            var piece = word.Slice(symbol.Start, symbol.Length);
            int id = Vocabulary.Find(piece);
            if (id >= 0)
            {
                output.Add(id);
                continue;
            }
            // llama.cpp looks each UTF-8 byte of the symbol's text up as a one-byte token.
            foreach (char c in piece)
            {
                if (c < 0x80 && Vocabulary.Find([c]) is int single and >= 0)
                    output.Add(single);
            }
        }
    }

    private void TryAddBigram(MergeQueue<Bigram> queue, ReadOnlySpan<char> word, char[] key, int left, int right)
    {
        if (left < 0 || right < 0)
            return;
        var l = queue.Symbols[left];
        var r = queue.Symbols[right];
        word.Slice(l.Start, l.Length).CopyTo(key);
        key[l.Length] = ' ';
        word.Slice(r.Start, r.Length).CopyTo(key.AsSpan(l.Length + 1));
        if (_rankLookup.TryGetValue(key.AsSpan(0, l.Length + 1 + r.Length), out int rank))
            queue.Push(new Bigram(rank, left, right, l.Length + r.Length));
    }
}

using System.Buffers;
using System.Text;
using ManagedLM.Gguf;

namespace ManagedLM.Tokenization;

/// <summary>
/// BERT's WordPiece (<c>tokenizer.ggml.model = bert</c>), as llama.cpp's llm_tokenizer_wpm. The text is normalized: each code
/// point becomes the first of its NFD decomposition and accent marks (M*) are dropped (tokenizer.ggml.normalizer.strip_accents),
/// letters are lowercased (tokenizer.ggml.normalizer.lowercase; both keys default to true, strip_accents to lowercase when only
/// that one is set), control characters, U+0000 and U+FFFD are dropped. It splits into words at whitespace, and every
/// punctuation mark, ASCII symbol and CJK ideograph is a word of its own. Each word, with ▁ before it, becomes the longest
/// vocabulary entry that starts it, then the longest that starts the rest, and so on (llama.cpp's vocabulary stores a
/// word-initial piece as "▁piece" and a continuation piece without "##"); a word that cannot be covered so is one [UNK].
/// With special tokens the ids are [CLS] … [SEP] (BOS and the separator: 101 and 102 unless the metadata says otherwise).
/// </summary>
/// <remarks>
/// Words have no length limit (Hugging Face's gives words over 100 chars [UNK]; llama.cpp does not): a word costs time in
/// proportion to its length times the longest token's. Decoding turns ▁ into a space and keeps a leading space, and removes
/// the space before ? ! . , and some apostrophes (clean_up_tokenization_spaces), as llama_detokenize does.
/// <see cref="Tokenizer.MaxBytesPerToken"/> is <see cref="int.MaxValue"/>: whitespace, control characters and accent marks
/// cost no token, and [UNK] stands for a whole word of any length.
/// </remarks>
public sealed class WordPieceTokenizer : Tokenizer
{
    private const char WordStart = '▁';

    // Every token text in a trie, one node per char: the node after (node, char) is _children[node << 16 | char]; the token
    // that ends at a node is _nodeTokens[node] (or -1). A word's longest piece at a position is one walk down, one lookup a char.
    private readonly Dictionary<long, int> _children;
    private readonly int[] _nodeTokens;

    internal WordPieceTokenizer(GgufMetadata metadata)
        : base(new TokenizerVocabulary(metadata, new VocabularyDefaults(
            PieceEncoding.SentencePiece, Bos: 101, Eos: -1, Unk: 100, AddBos: true, AddSpacePrefix: false, CleanSpaces: true,
            Sep: 102, AddSep: true)), "bert")
    {
        Lowercase = metadata.GetBoolean("tokenizer.ggml.normalizer.lowercase", true);
        StripAccents = metadata.GetBoolean("tokenizer.ggml.normalizer.strip_accents", Lowercase);
        (_children, _nodeTokens) = BuildTrie(Vocabulary.Texts);
        MaxBytesPerToken = int.MaxValue;
    }

    /// <summary>Whether letters are lowercased (tokenizer.ggml.normalizer.lowercase, true by default).</summary>
    public bool Lowercase { get; }

    /// <summary>Whether accents are stripped (tokenizer.ggml.normalizer.strip_accents, by default as <see cref="Lowercase"/>).</summary>
    public bool StripAccents { get; }

    private static (Dictionary<long, int> Children, int[] NodeTokens) BuildTrie(string[] texts)
    {
        var children = new Dictionary<long, int>(texts.Length * 4);
        var nodeTokens = new List<int>(texts.Length * 4) { -1 };
        for (int id = 0; id < texts.Length; id++)
        {
            int node = 0;
            foreach (char c in texts[id])
            {
                long key = Key(node, c);
                if (!children.TryGetValue(key, out int next))
                {
                    next = nodeTokens.Count;
                    nodeTokens.Add(-1);
                    children.Add(key, next);
                }
                node = next;
            }
            // Token texts are unique: at most one ends at a node.
            nodeTokens[node] = id;
        }
        children.TrimExcess();
        return (children, nodeTokens.ToArray());
    }

    private static long Key(int node, char c) => (long)node << 16 | c;

    private protected override void AddLeadingSpecialTokens(List<int> output) =>
        output.Add(BosTokenId >= 0 ? BosTokenId
            : throw new InvalidOperationException("The vocabulary has no BOS ([CLS]) token to start a sequence with special tokens."));

    private protected override void AddTrailingSpecialTokens(List<int> output) =>
        output.Add(SeparatorTokenId >= 0 ? SeparatorTokenId
            : throw new InvalidOperationException("The vocabulary has no separator ([SEP]) token to end a sequence with special tokens."));

    private protected override void EncodeText(ReadOnlySpan<char> text, bool afterSpecial, List<int> output)
    {
        // The word being built, ▁ first; it grows with the longest word.
        char[] word = ArrayPool<char>.Shared.Rent(Math.Min(text.Length + 3, 256));
        try
        {
            word[0] = WordStart;
            int length = 1;
            for (int i = 0; i < text.Length; i++)
            {
                int cp = text[i];
                if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
                    cp = char.ConvertToUtf32(text[i], text[++i]);
                if (StripAccents)
                    cp = UnicodeNfd.FirstOfDecomposition(cp);

                var flags = Codepoints.Flags(cp);
                if ((flags & CodepointFlags.Whitespace) != 0)
                {
                    length = EndWord(word, length, output);
                    continue;
                }
                if (cp is 0 or 0xFFFD || (flags & CodepointFlags.Control) != 0 || (StripAccents && (flags & CodepointFlags.AccentMark) != 0))
                    continue;

                int lower = Lowercase ? ToLower(cp) : cp;
                bool single = (flags & CodepointFlags.Punctuation) != 0 || (cp < 0x7F && (flags & CodepointFlags.Symbol) != 0) || IsChinese(cp);
                if (single)
                    length = EndWord(word, length, output);
                if (word.Length - length < 2)
                {
                    char[] larger = ArrayPool<char>.Shared.Rent(word.Length * 2);
                    word.AsSpan(0, length).CopyTo(larger);
                    ArrayPool<char>.Shared.Return(word);
                    word = larger;
                }
                length += new Rune(lower).EncodeToUtf16(word.AsSpan(length));
                if (single)
                    length = EndWord(word, length, output);
            }
            EndWord(word, length, output);
        }
        finally
        {
            ArrayPool<char>.Shared.Return(word);
        }
    }

    // Tokenizes the word in word[..length] (▁ and at least one char) if there is one; returns the length of an empty word.
    private int EndWord(char[] word, int length, List<int> output)
    {
        if (length > 1)
            TokenizeWord(word.AsSpan(0, length), output);
        return 1;
    }

    // Greedy longest match from the start; a position where no token starts makes the whole word one [UNK].
    private void TokenizeWord(ReadOnlySpan<char> word, List<int> output)
    {
        int start = output.Count;
        int pos = 0;
        while (pos < word.Length)
        {
            int node = 0, token = -1, end = pos;
            for (int i = pos; i < word.Length && _children.TryGetValue(Key(node, word[i]), out node); i++)
            {
                if (_nodeTokens[node] >= 0)
                    (token, end) = (_nodeTokens[node], i + 1);
            }
            if (token < 0)
            {
                output.RemoveRange(start, output.Count - start);
                output.Add(UnknownTokenId >= 0 ? UnknownTokenId
                    : throw new InvalidOperationException("The vocabulary has no unknown ([UNK]) token for a word it cannot cover."));
                return;
            }
            output.Add(token);
            pos = end;
        }
    }

    // Unicode's simple lowercase mapping, as llama.cpp's table has it (.NET keeps U+0130 İ as it is; Unicode maps it to i).
    private static int ToLower(int cp) => cp switch
    {
        >= 'A' and <= 'Z' => cp + 32,
        < 0x80 => cp,
        0x130 => 'i',
        _ => Rune.ToLowerInvariant(new Rune(cp)).Value,
    };

    // The CJK ranges of BERT's _is_chinese_char, as llama.cpp has them (Hugging Face's Rust code starts one at 0x2B920).
    private static bool IsChinese(int cp) =>
        cp is (>= 0x4E00 and <= 0x9FFF) or (>= 0x3400 and <= 0x4DBF) or (>= 0x20000 and <= 0x2A6DF) or (>= 0x2A700 and <= 0x2B73F)
            or (>= 0x2B740 and <= 0x2B81F) or (>= 0x2B920 and <= 0x2CEAF) or (>= 0xF900 and <= 0xFAFF) or (>= 0x2F800 and <= 0x2FA1F);
}

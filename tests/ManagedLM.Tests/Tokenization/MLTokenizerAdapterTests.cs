using Xunit.Abstractions;
using System.Buffers;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Microsoft.ML.Tokenizers;
using MLTokenizer = Microsoft.ML.Tokenizers.Tokenizer;

namespace ManagedLM.Tests.Tokenization;

public class MLTokenizerAdapterTests(ITestOutputHelper output)
{
    public static TheoryData<string> Vocabularies => new(VocabFixtures.Names);

    private static MLTokenizer Adapter(string vocab) => VocabFixtures.Load(vocab).AsMLTokenizer();

    [Theory]
    [MemberData(nameof(Vocabularies))]
    public void Ids_and_counts_are_our_tokenizers_on_every_vector(string vocab)
    {
        var ours = VocabFixtures.Load(vocab);
        var ml = Adapter(vocab);
        foreach (var (text, ids) in VocabFixtures.Vectors(vocab))
        {
            Assert.Equal(ids, ml.EncodeToIds(text));
            Assert.Equal(ids, ml.EncodeToTokens(text, out _).Select(t => t.Id));
            Assert.Equal(ids.Length, ml.CountTokens(text));
            Assert.Equal(ours.Decode(ids), ml.Decode(ids));
        }
    }

    [Theory]
    [MemberData(nameof(Vocabularies))]
    public void Offsets_cover_each_tokens_text_in_order(string vocab)
    {
        var ours = VocabFixtures.Load(vocab);
        var ml = Adapter(vocab);
        foreach (var (text, _) in VocabFixtures.Vectors(vocab))
        {
            var tokens = ml.EncodeToTokens(text, out string? normalized);
            string target = normalized ?? text;
            int previousEnd = 0;
            foreach (var token in tokens)
            {
                var (start, length) = token.Offset.GetOffsetAndLength(target.Length);
                Assert.True(start >= 0 && start + length <= target.Length);
                // Ranges only overlap where tokens split one char; they never go back further.
                Assert.True(start >= previousEnd - 2, $"{vocab}: token {token.Id} at {start} after one ending at {previousEnd} in \"{text}\"");
                previousEnd = start + length;
                byte[] piece = ours.TokenBytes(token.Id, includeSpecial: true).ToArray();
                byte[] covered = Encoding.UTF8.GetBytes(target.Substring(start, length));
                // The token's bytes lie in the chars it covers (less a space the tokenizer inserted).
                bool inside = piece.Length == 0 || covered.AsSpan().IndexOf(piece) >= 0
                    || (piece[0] == ' ' && (piece.Length == 1 || covered.AsSpan().IndexOf(piece.AsSpan(1)) >= 0));
                Assert.True(inside,
                    $"{vocab}: token {token.Id} ({ours.TokenToPiece(token.Id)}) covers \"{target.Substring(start, length)}\" of \"{text}\"");
            }
        }
    }

    [Fact]
    public void Offsets_on_byte_level_bpe_and_sentencepiece()
    {
        var gpt2 = Adapter("gpt-2");
        var tokens = gpt2.EncodeToTokens("Hello world", out string? normalized);
        Assert.Null(normalized);
        Assert.Equal([(0, 5), (5, 11)], tokens.Select(t => (t.Offset.Start.Value, t.Offset.End.Value)));
        Assert.Equal(["Hello", "Ġworld"], tokens.Select(t => t.Value));

        // SentencePiece inserts a space before the text: it belongs to no char, so "▁Hello" covers "Hello".
        var spm = Adapter("llama-spm");
        tokens = spm.EncodeToTokens("Hello world", out normalized);
        Assert.Null(normalized);
        Assert.Equal([(0, 5), (5, 11)], tokens.Select(t => (t.Offset.Start.Value, t.Offset.End.Value)));

        // An emoji (2 chars, 4 bytes) split over byte-level tokens: each of them covers the whole emoji.
        tokens = gpt2.EncodeToTokens("a😀", out _);
        Assert.True(tokens.Count > 2);
        Assert.Equal((0, 1), (tokens[0].Offset.Start.Value, tokens[0].Offset.End.Value));
        Assert.All(tokens.Skip(1), t => Assert.Equal((1, 3), (t.Offset.Start.Value, t.Offset.End.Value)));

        // WordPiece lowercases: the offsets point into the normalized text it reports.
        tokens = Adapter("bert-bge").EncodeToTokens("Hello World", out normalized);
        Assert.NotNull(normalized);
        Assert.All(tokens, t => Assert.InRange(t.Offset.End.Value, 0, normalized!.Length));
    }

    [Fact]
    public void Truncation_never_cuts_inside_a_char_a_token_covers()
    {
        const string text = "Grüße 😀😀 from 東京, naïve café!";
        foreach (string vocab in new[] { "gpt-2", "llama-spm", "llama-bpe", "qwen2" })
        {
            var ml = Adapter(vocab);
            var all = ml.EncodeToTokens(text, out _);
            for (int max = 1; max <= all.Count + 1; max++)
            {
                var ids = ml.EncodeToIds(text, max, out string? normalized, out int consumed);
                Assert.Null(normalized);
                Assert.True(ids.Count <= max);
                Assert.Equal(all.Take(ids.Count).Select(t => t.Id), ids);
                // The cut lies at a char boundary that no token straddles, and the chars before it encode to those tokens.
                Assert.False(consumed > 0 && consumed < text.Length && char.IsLowSurrogate(text[consumed]));
                if (ids.Count < all.Count)
                    Assert.True(all[ids.Count].Offset.Start.Value >= consumed);
                Assert.Equal(ids, ml.EncodeToIds(text[..consumed]));
                Assert.Equal(consumed, ml.GetIndexByTokenCount(text, max, out _, out int count));
                Assert.Equal(ids.Count, count);
            }
        }
    }

    [Theory]
    [InlineData("gpt-2")]
    [InlineData("llama-spm")]
    [InlineData("llama-bpe")]
    [InlineData("phi-3")]
    public void A_chunker_written_against_ML_Tokenizers_splits_a_text_into_chunks_of_at_most_N_tokens(string vocab)
    {
        var ml = Adapter(vocab);
        string text = string.Concat(Enumerable.Repeat(
            "The quick brown fox jumps over the lazy dog. Ünïcödé 😀 text, 東京 and numbers 12345.\n\n", 12));
        foreach (int n in new[] { 5, 16, 64 })
        {
            var chunks = new List<string>();
            string rest = text;
            while (rest.Length > 0)
            {
                int index = ml.GetIndexByTokenCount(rest, n, out string? normalized, out int count);
                Assert.Null(normalized);
                Assert.True(index > 0, $"no progress at \"{rest[..Math.Min(20, rest.Length)]}\"");
                Assert.True(count <= n);
                chunks.Add(rest[..index]);
                rest = rest[index..];
            }
            Assert.All(chunks, c => Assert.True(ml.CountTokens(c) <= n, $"{vocab}: \"{c}\" is {ml.CountTokens(c)} tokens > {n}"));
            Assert.Equal(text, string.Concat(chunks));
            output.WriteLine($"{vocab}: {ml.CountTokens(text)} tokens in {chunks.Count} chunks of at most {n}");
        }
    }

    [Fact]
    public void Index_from_the_end_keeps_the_last_tokens()
    {
        const string text = "one two three four five six";
        var ml = Adapter("gpt-2");
        int index = ml.GetIndexByTokenCountFromEnd(text, 2, out string? normalized, out int count);
        Assert.Null(normalized);
        Assert.Equal(2, count);
        Assert.Equal(" five six", text[index..]);
        Assert.Equal(0, ml.GetIndexByTokenCountFromEnd(text, 100, out _, out count));
        Assert.Equal(6, count);
    }

    [Fact]
    public void Special_tokens_are_counted_and_have_empty_ranges()
    {
        var spm = VocabFixtures.Load("llama-spm");
        var ml = spm.AsMLTokenizer(addSpecialTokens: true);
        var tokens = ml.EncodeToTokens("Hello world", out _);
        Assert.Equal(spm.Encode("Hello world"), tokens.Select(t => t.Id));
        Assert.Equal(spm.BosTokenId, tokens[0].Id);
        Assert.Equal(new Range(0, 0), tokens[0].Offset);
        Assert.Equal(3, ml.CountTokens("Hello world"));
        // A limit of 2 leaves one token for the text after BOS.
        Assert.Equal(5, ml.GetIndexByTokenCount("Hello world", 2, out _, out int count));
        Assert.Equal(2, count);
        Assert.Equal("Hello world", ml.Decode(tokens.Select(t => t.Id))!.TrimStart());
    }

    [Fact]
    public void Decode_into_a_short_destination_writes_whole_tokens()
    {
        var ml = Adapter("gpt-2");
        var ids = ml.EncodeToIds("Hello world, again");
        var buffer = new char[12];
        Assert.Equal(OperationStatus.DestinationTooSmall, ml.Decode(ids, buffer, out int consumed, out int written));
        Assert.Equal("Hello world,", new string(buffer, 0, written));
        Assert.Equal(3, consumed);
        buffer = new char[64];
        Assert.Equal(OperationStatus.Done, ml.Decode(ids, buffer, out consumed, out written));
        Assert.Equal("Hello world, again", new string(buffer, 0, written));
        Assert.Equal(ids.Count, consumed);
    }

    // Texts without special tokens, nor the punctuation whose spaces gpt-2's decoder cleans up: letters, digits,
    // whitespace and multi-byte chars (accents, CJK, an emoji).
    public static class Texts
    {
        private static readonly string[] Pieces = ["a", "Z", "hello", "The", "7", "42", " ", "  ", "\n", "\t", "é", "ß", "東京", "😀", "Ж", "ünï"];

        public static Arbitrary<string> Strings() =>
            Gen.ArrayOf(Gen.Elements(Pieces)).Select(string.Concat).ToArbitrary();

        public static Arbitrary<PositiveInt> Limits() =>
            Gen.Choose(1, 40).Select(n => PositiveInt.NewPositiveInt(n)).ToArbitrary();
    }

    private const string Seed = "(20260101,1973046111)";

    [Property(Arbitrary = [typeof(Texts)], MaxTest = 200, Replay = Seed)]
    public bool Decode_of_encode_is_the_text_on_byte_level_bpe(string text) =>
        Adapter("gpt-2").Decode(Adapter("gpt-2").EncodeToIds(text)) == text;

    [Property(Arbitrary = [typeof(Texts)], MaxTest = 200, Replay = Seed)]
    public bool Decode_of_encode_is_the_text_on_sentencepiece(string text)
    {
        // SentencePiece drops the space it put before the text, and with it one the text itself starts with (as llama.cpp).
        var ml = Adapter("llama-spm");
        string decoded = ml.Decode(ml.EncodeToIds(text))!;
        return decoded == text || (text.StartsWith(' ') && decoded == text[1..]);
    }

    [Property(Arbitrary = [typeof(Texts)], MaxTest = 200, Replay = Seed)]
    public bool CountTokens_is_the_number_of_ids(string text) =>
        VocabFixtures.Names.All(v => Adapter(v).CountTokens(text) == Adapter(v).EncodeToIds(text).Count);

    [Property(Arbitrary = [typeof(Texts)], MaxTest = 200, Replay = Seed)]
    public bool The_text_before_the_index_by_token_count_encodes_to_that_many_tokens(string text, PositiveInt limit)
    {
        foreach (string vocab in new[] { "gpt-2", "llama-spm", "qwen2" })
        {
            var ml = Adapter(vocab);
            int index = ml.GetIndexByTokenCount(text, limit.Get, out string? normalized, out int count);
            // The text before the index holds the first `count` tokens; encoded alone it may take fewer where the cut
            // splits a run of whitespace that a pre-tokenizer's lookahead (\s+(?!\S)) then keeps whole ("   " is one qwen2
            // token; "  7" gives "ĠĠ", "Ġ", "7").
            var prefix = ml.EncodeToIds(text[..index]);
            if (normalized is not null || count > limit.Get || prefix.Count > count
                || (prefix.Count == count && !prefix.SequenceEqual(ml.EncodeToIds(text).Take(count))))
                return false;
        }
        return true;
    }
}

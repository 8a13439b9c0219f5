using System.Diagnostics;
using System.Text.Json;
using ManagedLM.Gguf;
using ManagedLM.Tokenization;

namespace ManagedLM.Tests.Tokenization;

/// <summary>
/// BERT's WordPiece (<c>tokenizer.ggml.model = bert</c>) against llama.cpp: the vocabulary vectors run in
/// <see cref="VocabVectorTests"/>; here the synthetic BERT model's reference texts (ids with [CLS] … [SEP] and their
/// vocabulary strings, from llama.cpp), special tokens, normalization, decoding and rerank pairs.
/// </summary>
public class WordPieceTokenizerTests
{
    private static readonly Lazy<Tokenizer> SynthBert = new(() =>
    {
        using var file = GgufFile.Open(TestData.Model("synthetic/synth-bert-Q8_0.gguf"));
        return Tokenizer.FromGguf(file.Metadata);
    });

    private static Tokenizer Bert => VocabFixtures.Load("bert-bge");

    public static TheoryData<int> ReferenceTexts => [0, 1, 2, 3, 4, 5];

    private static readonly Lazy<(string Text, int[] Tokens, string[] TokenTexts)[]> Reference = new(() =>
    {
        using var doc = JsonDocument.Parse(TestData.ReadBytes(TestData.Model("synthetic/synth-bert-Q8_0.ref.json.gz")));
        return doc.RootElement.GetProperty("texts").EnumerateArray().Select(t => (
            t.GetProperty("text").GetString()!,
            t.GetProperty("tokens").EnumerateArray().Select(v => v.GetInt32()).ToArray(),
            t.GetProperty("token_texts").EnumerateArray().Select(v => v.GetString()!).ToArray())).ToArray();
    });

    [Theory]
    [MemberData(nameof(ReferenceTexts))]
    public void Reference_texts_encode_to_llama_cpp_ids_with_cls_and_sep(int index)
    {
        Assert.Equal(6, Reference.Value.Length);
        var (text, tokens, tokenTexts) = Reference.Value[index];
        foreach (var tokenizer in new[] { SynthBert.Value, Bert })
        {
            int[] ids = tokenizer.Encode(text);
            Assert.Equal(tokens, ids);
            Assert.Equal(tokenTexts, ids.Select(tokenizer.TokenText));
            Assert.Equal(tokens[1..^1], tokenizer.Encode(text, addSpecialTokens: false));
        }
    }

    [Fact]
    public void Special_tokens_are_llama_cpp_defaults()
    {
        var bert = SynthBert.Value;
        Assert.IsType<WordPieceTokenizer>(bert);
        Assert.Equal("bert", bert.Model);
        Assert.Equal(30522, bert.VocabSize);
        Assert.Equal((101, -1, 100, 102, 0), (bert.BosTokenId, bert.EosTokenId, bert.UnknownTokenId, bert.SeparatorTokenId, bert.PaddingTokenId));
        Assert.Equal((true, false, true), (bert.AddBosToken, bert.AddEosToken, bert.AddSeparatorToken));
        var wordPiece = (WordPieceTokenizer)bert;
        Assert.True(wordPiece.Lowercase);
        Assert.True(wordPiece.StripAccents);
        Assert.Equal([101, 102], bert.Encode(""));
        Assert.Empty(bert.Encode("", addSpecialTokens: false));
        Assert.Equal([101, 102], bert.Encode(" \t\n\u200B "));
        Assert.Equal("[CLS]", bert.TokenText(101));
        Assert.Equal(TokenType.Control, bert.GetTokenType(102));
        // Other tokenizers have no separator unless the metadata names one.
        Assert.Equal(-1, VocabFixtures.Load("llama-spm").SeparatorTokenId);
        Assert.False(VocabFixtures.Load("qwen2").AddSeparatorToken);
    }

    [Fact]
    public void Special_token_text_becomes_its_id_only_when_parsed()
    {
        var bert = Bert;
        int hi = bert.TokenId("▁hi");
        Assert.Equal([101, hi, 102], bert.Encode("[CLS] hi [SEP]", addSpecialTokens: false, parseSpecialTokens: true));
        int[] literal = bert.Encode("[CLS] hi [SEP]", addSpecialTokens: false);
        Assert.DoesNotContain(101, literal);
        Assert.Equal(bert.TokenId("▁["), literal[0]);
        Assert.Equal(bert.TokenId("▁]"), literal[^1]);
    }

    [Theory]
    [InlineData("Café naïve RÉSUMÉ", "cafe naive resume")]
    [InlineData("Cafe\u0301 Ångström", "cafe angstrom")] // a combining mark written out is dropped too
    [InlineData("hel\u200Blo\u0000 wor\uFFFDld", "hello world")] // format chars, U+0000 and U+FFFD are dropped
    [InlineData("a\u00A0b\u3000c\u2028d", "a b c d")] // every Unicode space separates words
    [InlineData("İstanbul", "istanbul")]
    [InlineData("東京タワー", "東 京 タワー")] // CJK ideographs are words of their own, kana are not
    [InlineData("sub-words,x$y+z", "sub - words , x $ y + z")] // punctuation and ASCII symbols too
    public void Normalization_and_splitting_follow_llama_cpp(string text, string same)
    {
        Assert.Equal(Bert.Encode(same, addSpecialTokens: false), Bert.Encode(text, addSpecialTokens: false));
    }

    [Fact]
    public void Longest_pieces_first_and_a_word_that_cannot_be_covered_is_one_unknown()
    {
        var tokenizer = Tiny(
            ["[UNK]", "▁a", "▁ab", "▁abc", "b", "bc", "c", "d", "▁d"],
            ("tokenizer.ggml.token_type", GgufValue.Of(GgufArray.Of([2, 1, 1, 1, 1, 1, 1, 1, 1]))),
            ("tokenizer.ggml.unknown_token_id", GgufValue.Of(0u)));
        // "abcd": ▁abc, then d. "abcbc": ▁abc, bc. "abx": ▁ab matches, x does not: the whole word is [UNK].
        Assert.Equal([3, 7, 3, 5, 0, 8], tokenizer.Encode("abcd abcbc abx d", addSpecialTokens: false));
        Assert.Equal(" abcd abcbc d", tokenizer.Decode([3, 7, 3, 5, 0, 8]));
        Assert.Equal(" abcd abcbc[UNK] d", tokenizer.Decode([3, 7, 3, 5, 0, 8], skipSpecialTokens: false));
    }

    [Fact]
    public void A_vocabulary_without_the_tokens_it_needs_fails_clearly()
    {
        // llama.cpp's defaults (BOS 101, SEP 102, add_bos, add_sep) name no token of a 3-token vocabulary: loading fails as in llama.cpp.
        var e = Assert.Throws<GgufFormatException>(() => Tokenizer.FromGguf(Metadata(("tokenizer.ggml.model", GgufValue.Of("bert")),
            ("tokenizer.ggml.tokens", GgufValue.Of(GgufArray.Of(["▁a", "b", "c"]))))));
        Assert.Contains("add_bos_token", e.Message);

        var tokenizer = Tiny(["▁a", "b", "c"]);
        Assert.Equal([0, 1, 0], tokenizer.Encode("ab a", addSpecialTokens: false));
        Assert.Throws<InvalidOperationException>(() => tokenizer.Encode("x", addSpecialTokens: false));
        Assert.Throws<InvalidOperationException>(() => tokenizer.Encode("a"));
    }

    [Fact]
    public void Normalizer_keys_turn_lowercasing_and_accent_stripping_off()
    {
        var meta = VocabFixtures.Metadata("bert-bge");
        var cased = (WordPieceTokenizer)Tokenizer.FromGguf(With(meta, ("tokenizer.ggml.normalizer.lowercase", GgufValue.Of(false))));
        Assert.False(cased.Lowercase);
        Assert.False(cased.StripAccents); // follows lowercase, as Hugging Face's BertNormalizer
        // The uncased vocabulary has no "▁Hello" and no "▁H": the word is [UNK].
        Assert.Equal([100, Bert.TokenId("▁world")], cased.Encode("Hello world", addSpecialTokens: false));
        Assert.NotEqual(Bert.Encode("café", addSpecialTokens: false), cased.Encode("café", addSpecialTokens: false));

        var stripped = (WordPieceTokenizer)Tokenizer.FromGguf(With(meta,
            ("tokenizer.ggml.normalizer.lowercase", GgufValue.Of(false)), ("tokenizer.ggml.normalizer.strip_accents", GgufValue.Of(true))));
        Assert.True(stripped.StripAccents);
        Assert.Equal(Bert.Encode("cafe", addSpecialTokens: false), stripped.Encode("café", addSpecialTokens: false));

        // Lowercasing alone: İ is i, as Unicode's simple lowercase mapping (llama.cpp's table) has it.
        var lowerOnly = (WordPieceTokenizer)Tokenizer.FromGguf(With(meta, ("tokenizer.ggml.normalizer.strip_accents", GgufValue.Of(false))));
        Assert.Equal(Bert.Encode("istanbul", addSpecialTokens: false), lowerOnly.Encode("İstanbul", addSpecialTokens: false));
    }

    [Fact]
    public void Decode_keeps_the_leading_space_and_cleans_spaces_before_punctuation_as_llama_detokenize()
    {
        var bert = Bert;
        Assert.Equal(" hello world!", bert.Decode(bert.Encode("Hello world!")));
        Assert.Equal("[CLS] hello world![SEP]", bert.Decode(bert.Encode("Hello world!"), skipSpecialTokens: false));
        Assert.Equal(" tokenization splits unbelievably long words.", bert.Decode(bert.Encode("Tokenization splits unbelievably long words.")));
        Assert.Equal(" it's 3. 14", bert.Decode(bert.Encode("It ' s 3.14")));
        Assert.Equal(" hello", bert.TokenToPiece(bert.TokenId("▁hello")));
        Assert.Equal("bel", bert.TokenToPiece(bert.TokenId("bel")));
        Assert.Equal("[UNK]", bert.TokenToPiece(100));
        Assert.True(bert.TokenBytes(100).IsEmpty);
    }

    [Fact]
    public void A_pair_is_laid_out_as_llama_cpp_lays_out_a_rerank_prompt()
    {
        var bert = Bert;
        const string query = "What is a panda?", document = "The giant panda is a bear.";
        int[] q = bert.Encode(query, addSpecialTokens: false), d = bert.Encode(document, addSpecialTokens: false);
        // add_bos, add_sep, no add_eos: [CLS] query [SEP] document (llama.cpp adds nothing after the document).
        Assert.Equal([101, .. q, 102, .. d], bert.EncodePair(query, document));
        // Special-token text in either text stays text.
        int[] literal = bert.Encode("[SEP]", addSpecialTokens: false);
        Assert.DoesNotContain(102, literal);
        Assert.Equal([101, .. literal, 102, .. bert.Encode("x", addSpecialTokens: false)], bert.EncodePair("[SEP]", "x"));

        // With add_eos (EOS [SEP] here): EOS after each text, and SEP between them.
        var withEos = Tokenizer.FromGguf(With(VocabFixtures.Metadata("bert-bge"),
            ("tokenizer.ggml.add_eos_token", GgufValue.Of(true)), ("tokenizer.ggml.eos_token_id", GgufValue.Of(102u))));
        Assert.Equal([101, .. q, 102, 102, .. d, 102], withEos.EncodePair(query, document));
        // Encode still ends with [SEP] alone: llama.cpp's WordPiece adds BOS and SEP, never EOS.
        Assert.Equal([101, .. q, 102], withEos.Encode(query));

        // A rerank template: {query} and {document} replaced, special tokens parsed, none added.
        var templated = Tokenizer.FromGguf(With(VocabFixtures.Metadata("bert-bge"),
            ("tokenizer.chat_template.rerank", GgufValue.Of("[CLS]q: {query}[SEP]d: {document}[SEP]"))));
        Assert.Equal(bert.Encode("[CLS]q: " + query + "[SEP]d: " + document + "[SEP]", addSpecialTokens: false, parseSpecialTokens: true),
            templated.EncodePair(query, document));

        // SentencePiece llama: BOS, then both texts with nothing between them (add_eos and add_sep are off).
        var spm = VocabFixtures.Load("llama-spm");
        Assert.Equal([1, .. spm.Encode("a", addSpecialTokens: false), .. spm.Encode("b", addSpecialTokens: false)], spm.EncodePair("a", "b"));
        Assert.Throws<ArgumentNullException>(() => bert.EncodePair(null!, "x"));
    }

    [Fact]
    public void The_token_count_has_no_byte_bound()
    {
        var bert = Bert;
        // Whitespace and control characters cost nothing, and [UNK] stands for a whole word of any length.
        Assert.Equal(int.MaxValue, bert.MaxBytesPerToken);
        Assert.Equal(0, bert.MinimumTokenCount(new string('x', 100_000)));
        Assert.Equal([101, 100, 102], bert.EncodePrompt(string.Concat(Enumerable.Repeat("🙂", 50_000)), contextLength: 3));
        Assert.Equal([101, 102], bert.EncodePrompt(new string(' ', 1 << 20), contextLength: 2));
    }

    [Fact]
    public void A_huge_word_costs_time_in_proportion_to_its_length()
    {
        var bert = Bert;
        string word = string.Concat(Enumerable.Repeat("abc", 1 << 18)); // 786,432 chars, one word
        var watch = Stopwatch.StartNew();
        int[] ids = bert.Encode(word, addSpecialTokens: false);
        watch.Stop();
        Assert.DoesNotContain(100, ids);
        Assert.InRange(ids.Length, word.Length / 20, word.Length);
        Assert.Equal(word, bert.Decode(ids)[1..]);
        // Linear: a quadratic search would take minutes; this takes well under a second.
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(20), $"{watch.Elapsed}");
        Assert.Equal([100], bert.Encode(word + "🙂", addSpecialTokens: false));
    }

    [Fact]
    public void Threads_share_one_tokenizer()
    {
        var bert = Bert;
        string[] texts = Enumerable.Range(0, 16).Select(i => TokenizerTests.GenerateText(20_000, seed: i)).ToArray();
        int[][] expected = texts.Select(t => bert.Encode(t)).ToArray();
        Parallel.For(0, 64, i => Assert.Equal(expected[i % 16], bert.Encode(texts[i % 16])));
    }

    private static Tokenizer Tiny(string[] tokens, params (string Key, GgufValue Value)[] extra) =>
        Tokenizer.FromGguf(Metadata([
            ("tokenizer.ggml.model", GgufValue.Of("bert")), ("tokenizer.ggml.tokens", GgufValue.Of(GgufArray.Of(tokens))),
            ("tokenizer.ggml.add_bos_token", GgufValue.Of(false)), ("tokenizer.ggml.add_sep_token", GgufValue.Of(false)), .. extra]));

    private static GgufMetadata With(GgufMetadata metadata, params (string Key, GgufValue Value)[] entries) =>
        new(metadata.Where(e => !entries.Any(x => x.Key == e.Key)).Concat(entries.Select(e => new GgufMetadataEntry(e.Key, e.Value, 0))).ToList(), 0);

    private static GgufMetadata Metadata(params (string Key, GgufValue Value)[] entries) =>
        new(entries.Select(e => new GgufMetadataEntry(e.Key, e.Value, 0)).ToList(), 0);
}

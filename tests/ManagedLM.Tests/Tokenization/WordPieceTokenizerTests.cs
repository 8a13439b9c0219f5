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

    // Ids and llama_detokenize text from llama.cpp (libllama of commit d32676d77, vocab only, bert-bge): scripts and the corners of
    // its normalization. Hangul keeps the first jamo of each syllable (the first code point of its NFD), Devanagari loses its
    // vowel signs and virama (accent marks, Mn and Mc), Thai has no pieces, U+0085 separates words, U+180E and other format
    // chars vanish.
    [Theory]
    [InlineData("Ελληνικά ΑΘΗΝΑ Σσς ᾼ", new[] { 1159, 29727, 29727, 24824, 16177, 18199, 29726, 14608, 1155, 29725, 24824, 16177, 14608, 1173, 29733, 19579, 1155 }, " ελληνικα αθηνα σσς α")]
    [InlineData("МОСКВА Ёлка й", new[] { 1191, 14150, 29747, 23925, 25529, 10260, 1185, 29436, 28598, 1188 }, " москва елка и")]
    [InlineData("안녕하세요 한국어", new[] { 1463, 29992, 30005, 29997, 29999, 1469, 29991, 29999 }, " ᄋᄂᄒᄉᄋ ᄒᄀᄋ")]
    [InlineData("ภาษาไทย हिन्दी", new[] { 100, 1339, 29863, 29861 }, " हनद")]
    [InlineData("العربية עברית", new[] { 1270, 23673, 29830, 17149, 29816, 14498, 19433, 1259, 29789, 29811, 29796, 29813 }, " العربية עברית")]
    [InlineData("ﬁne ﬀ Ｆｕｌｌ ｶﾀｶﾅ Ⅻ ² ½ ℌ", new[] { 1984, 2638, 100, 100, 100, 100, 1082, 1092, 100 }, " ﬁne ² ½")]
    [InlineData("丽 \U00020000 \U0002A700 \U0002F800 日本語", new[] { 100, 100, 100, 100, 1864, 1876, 1950 }, " 日 本 語")]
    [InlineData("\U0001F636\u200D\U0001F32B\uFE0F soft\u00ADhyphen zero\u200Bwidth \uFEFFbom", new[] { 100, 3730, 10536, 8458, 2368, 5717, 9148, 11927, 2232, 8945, 2213 }, " softhyphen zerowidth bom")]
    [InlineData("▁x ##ing [MASK] <tag> a_b x^2 C++", new[] { 100, 1001, 1001, 13749, 1031, 7308, 1033, 1026, 6415, 1028, 1037, 1035, 1038, 1060, 1034, 1016, 1039, 1009, 1009 }, " # # ing [ mask ] < tag > a _ b x ^ 2 c + +")]
    [InlineData("straße İstanbul Cửa Việt ǅ ǈ K Å Ω", new[] { 2358, 27807, 9960, 12731, 2050, 19710, 100, 100, 1047, 1037, 1179 }, " straße istanbul cua viet k a ω")]
    [InlineData("e\u0301 a\u0308 x\u20DD \u0345", new[] { 1041, 1037, 1060 }, " e a x")]
    [InlineData("http://example.com/a?b=c «quote» “smart” don't …", new[] { 8299, 1024, 1013, 1013, 2742, 1012, 4012, 1013, 1037, 1029, 1038, 1027, 1039, 1077, 14686, 1090, 1523, 6047, 1524, 2123, 1005, 1056, 1529 }, " http : / / example. com / a? b = c « quote » “ smart ” don't …")]
    [InlineData("\u00A0a\u2028b\u3000c\u0085d\u180Ee", new[] { 1037, 1038, 1039, 2139 }, " a b c de")]
    [InlineData("\uE000private \uFFFDreplacement \u0007bell", new[] { 2797, 6110, 4330 }, " private replacement bell")]
    public void Scripts_and_normalization_corners_match_llama_cpp(string text, int[] ids, string decoded)
    {
        Assert.Equal(ids, Bert.Encode(text, addSpecialTokens: false));
        Assert.Equal(decoded, Bert.Decode(ids));
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

using System.Buffers;
using System.Text;
using ManagedLM.Gguf;
using ManagedLM.Grammars;
using ManagedLM.Tests.Tokenization;
using ManagedLM.Tokenization;

namespace ManagedLM.Tests.Grammars;

public class GrammarVocabularyTests
{
    private static readonly Lazy<Tokenizer> Stories = new(() =>
    {
        using var file = GgufFile.Open(TestData.Model("stories260K.gguf"));
        return Tokenizer.FromGguf(file.Metadata);
    });

    private static readonly Lazy<GrammarVocabulary> StoriesVocabulary = new(() => GrammarVocabulary.FromTokenizer(Stories.Value));
    private static readonly Lazy<GrammarVocabulary> QwenVocabulary = new(() => GrammarVocabulary.FromTokenizer(VocabFixtures.Load("qwen2")));

    // 0: control (no text), 1 "a", 2 "ab", 3 "b", 4 "{", 5 0xC3, 6 0xA9, 7 "é", 8 end of generation, 9 "abc", 10 "a" again.
    private static GrammarVocabulary Small() => new(
        [[], "a"u8.ToArray(), "ab"u8.ToArray(), "b"u8.ToArray(), "{"u8.ToArray(), [0xC3], [0xA9], "é"u8.ToArray(), [], "abc"u8.ToArray(), "a"u8.ToArray()],
        [8]);

    private static int[] Allowed(GrammarMatcher m, int logitCount)
    {
        var logits = new float[logitCount];
        int count = m.Mask(logits);
        var allowed = Enumerable.Range(0, logitCount).Where(t => !float.IsNegativeInfinity(logits[t])).ToArray();
        Assert.Equal(allowed.Length, count);
        return allowed;
    }

    [Fact]
    public void Masks_exactly_the_tokens_that_continue_the_grammar()
    {
        var m = Grammar.FromGbnf("root ::= \"ab\"+ \"é\"?").CreateMatcher(Small());
        Assert.Equal([1, 2, 10], Allowed(m, 13));
        Assert.True(m.TryAcceptToken(2));
        Assert.Equal([1, 2, 5, 7, 8, 10], Allowed(m, 13));
        Assert.True(m.TryAcceptToken(5));
        Assert.Equal([6], Allowed(m, 13));
        Assert.False(m.Allows(8));
        Assert.True(m.TryAcceptToken(6));
        Assert.Equal([8], Allowed(m, 13));
        Assert.True(m.TryAcceptToken(8));
        Assert.True(m.IsComplete);
    }

    [Fact]
    public void Tokens_without_text_and_unknown_ids_are_never_allowed()
    {
        var m = Grammar.FromGbnf("root ::= .*").CreateMatcher(Small());
        Assert.False(m.Allows(0));
        Assert.False(m.TryAcceptToken(0));
        Assert.True(m.Allows(8));
        Assert.Throws<ArgumentOutOfRangeException>(() => m.Allows(11));
        Assert.Throws<ArgumentOutOfRangeException>(() => m.Allows(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => m.TryAcceptToken(11));
        Assert.Equal("The logits have 10 entries; the vocabulary has 11 tokens. (Parameter 'logits')",
            Assert.Throws<ArgumentException>(() => m.Mask(new float[10])).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new GrammarVocabulary([[1]], [1]));
        Assert.Equal("Token 1 has no byte array (use an empty one for a token without text). (Parameter 'tokenBytes')",
            Assert.Throws<ArgumentException>(() => new GrammarVocabulary([[1], null!], [])).Message);
    }

    [Fact]
    public void A_rejected_token_leaves_the_state_unchanged()
    {
        var m = Grammar.FromGbnf("root ::= \"ab\" \"d\"").CreateMatcher(Small());
        Assert.True(m.Allows(1));
        Assert.False(m.TryAcceptToken(9));
        Assert.True(m.TryAcceptToken(1));
        Assert.False(m.Allows(1));
        Assert.False(m.TryAcceptToken(1));
        Assert.True(m.Allows(3));
        Assert.False(m.IsComplete);
    }

    [Fact]
    public void Vocabulary_from_a_tokenizer_keeps_text_tokens_and_end_of_generation()
    {
        var tokenizer = Stories.Value;
        var vocabulary = StoriesVocabulary.Value;
        Assert.Equal(tokenizer.VocabSize, vocabulary.Count);
        for (int t = 0; t < vocabulary.Count; t++)
        {
            Assert.Equal(tokenizer.TokenBytes(t).ToArray(), vocabulary.TokenBytes(t).ToArray());
            Assert.Equal(tokenizer.IsEndOfGeneration(t), vocabulary.IsEndOfGeneration(t));
        }
        Assert.True(vocabulary.TokenBytes(tokenizer.BosTokenId).IsEmpty);
        Assert.True(vocabulary.IsEndOfGeneration(tokenizer.EosTokenId));
    }

    public static TheoryData<string, string, string> States => new()
    {
        { "stories", "json", "" },
        { "stories", "json", "{\"a\": " },
        { "stories", "json", "{\"a\": \"x" },
        { "stories", "json", "{\"a\": [tr" },
        { "stories", "json", "{\"a\": 1}" },
        { "stories", "arithmetic", "(a+" },
        { "qwen2", "json", "" },
        { "qwen2", "json", "{\"a\": \"x" },
        { "qwen2", "json", "{\"a\": [1.5e" },
        { "qwen2", "json", "{}" },
        { "qwen2", "japanese", "こんにち" },
        { "qwen2", "list", "- 中" },
    };

    [Theory]
    [MemberData(nameof(States))]
    public void Mask_agrees_with_allows_for_every_token(string vocabularyName, string grammarName, string prefix)
    {
        var vocabulary = vocabularyName == "stories" ? StoriesVocabulary.Value : QwenVocabulary.Value;
        var m = GrammarMatcherTests.Shared(grammarName).CreateMatcher(vocabulary);
        Assert.True(m.TryAccept(prefix));
        var allowed = Allowed(m, vocabulary.Count + 64);
        Assert.NotEmpty(allowed);
        Assert.All(allowed, t => Assert.True(t < vocabulary.Count));
        var expected = Enumerable.Range(0, vocabulary.Count).Where(m.Allows).ToArray();
        Assert.Equal(expected, allowed);
    }

    [Fact]
    public void Mask_agrees_with_allows_at_every_step_of_a_document_with_transitions_cached_or_not()
    {
        var tokenizer = Stories.Value;
        var vocabulary = StoriesVocabulary.Value;
        var m = GrammarMatcherTests.Shared("json").CreateMatcher(vocabulary);
        Assert.True(m.TryAccept("{"));
        int[] tokens = tokenizer.Encode("\"once\": [\"upon\", 1.5e3, {\"a\": \"time\\n\"}, true], \"b\": null}", addSpecialTokens: false);
        // Pass 0 fills the cache as it goes; pass 1 finds every state cached, then checks again with the cache emptied.
        var walker = m.Clone();
        for (int pass = 0; pass < 2; pass++)
        {
            walker.CopyFrom(m);
            foreach (int token in tokens)
            {
                var expected = Enumerable.Range(0, vocabulary.Count).Where(walker.Allows).ToArray();
                Assert.Equal(expected, Allowed(walker, vocabulary.Count));
                if (pass == 1)
                {
                    walker.ClearCache();
                    Assert.Equal(expected, Allowed(walker, vocabulary.Count));
                }
                Assert.Contains(token, expected);
                Assert.True(walker.TryAcceptToken(token));
            }
            Assert.True(walker.IsComplete);
        }
    }

    [Fact]
    public void A_mask_that_needs_too_much_work_is_a_clear_error_and_leaves_nothing_half_cached()
    {
        var vocabulary = StoriesVocabulary.Value;
        var m = GrammarMatcherTests.Shared("json").CreateMatcher(vocabulary);
        Assert.True(m.TryAccept("{\"a\": [[[{\"b\": \"x"));
        m.MaxMaskWork = 2000;
        var e = Assert.Throws<InvalidOperationException>(() => m.Mask(new float[vocabulary.Count]));
        Assert.Equal("Masking the vocabulary needs more than 2000 steps of parse-stack work here: the grammar is too ambiguous or the text nests too deeply.", e.Message);
        m.MaxMaskWork = 1L << 28;
        var expected = Enumerable.Range(0, vocabulary.Count).Where(m.Allows).ToArray();
        Assert.Equal(expected, Allowed(m, vocabulary.Count));
    }

    [Theory]
    [InlineData("stories", 40)]
    [InlineData("qwen2", 4)]
    public void Random_tokens_drawn_from_the_mask_always_make_valid_json(string vocabularyName, int seeds)
    {
        var vocabulary = vocabularyName == "stories" ? StoriesVocabulary.Value : QwenVocabulary.Value;
        var grammar = GrammarMatcherTests.Shared("json");
        var logits = new float[vocabulary.Count];
        int finished = 0;
        for (int seed = 0; seed < seeds; seed++)
        {
            var rng = new Random(seed);
            var m = grammar.CreateMatcher(vocabulary);
            var text = new List<byte>();
            for (int step = 0; step < 300; step++)
            {
                logits.AsSpan().Clear();
                Assert.True(m.Mask(logits) > 0);
                var allowed = Enumerable.Range(0, vocabulary.Count).Where(t => logits[t] == 0).ToArray();
                var ends = allowed.Where(vocabulary.IsEndOfGeneration).ToArray();
                int token = ends.Length > 0 && rng.Next(2) == 0 ? ends[0] : allowed[rng.Next(allowed.Length)];
                Assert.True(m.TryAcceptToken(token));
                if (vocabulary.IsEndOfGeneration(token))
                {
                    // An independent judge: the JSON reader of the framework.
                    using var document = System.Text.Json.JsonDocument.Parse(text.ToArray());
                    Assert.Equal(System.Text.Json.JsonValueKind.Object, document.RootElement.ValueKind);
                    finished++;
                    break;
                }
                text.AddRange(vocabulary.TokenBytes(token).ToArray());
            }
        }
        Assert.True(finished >= seeds / 4, $"{finished} of {seeds} finished");
    }

    [Fact]
    public void Every_token_with_valid_utf8_text_is_allowed_where_any_text_is()
    {
        var vocabulary = QwenVocabulary.Value;
        var m = Grammar.FromGbnf("root ::= .*").CreateMatcher(vocabulary);
        var allowed = Allowed(m, vocabulary.Count);
        var expected = Enumerable.Range(0, vocabulary.Count)
            .Where(t => vocabulary.IsEndOfGeneration(t) || !vocabulary.TokenBytes(t).IsEmpty && IsUtf8Prefix(vocabulary.TokenBytes(t)))
            .ToArray();
        Assert.Equal(expected, allowed);
        Assert.True(allowed.Length > 150_000);
    }

    // Valid UTF-8 that may stop inside its last character.
    private static bool IsUtf8Prefix(ReadOnlySpan<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            var status = Rune.DecodeFromUtf8(bytes, out _, out int consumed);
            if (status == OperationStatus.NeedMoreData)
                return true;
            if (status != OperationStatus.Done)
                return false;
            bytes = bytes[consumed..];
        }
        return true;
    }

    [Fact]
    public void Tokens_of_a_valid_text_are_allowed_one_by_one_and_the_end_only_at_the_end()
    {
        var tokenizer = VocabFixtures.Load("qwen2");
        var m = GrammarMatcherTests.Shared("json").CreateMatcher(QwenVocabulary.Value);
        int eos = tokenizer.EosTokenId >= 0 ? tokenizer.EosTokenId : tokenizer.EotTokenId;
        foreach (int token in tokenizer.Encode("{\"name\": \"Zoë 😀\", \"tags\": [1, 2.5, null]}", addSpecialTokens: false))
        {
            Assert.False(m.Allows(eos));
            Assert.True(m.Allows(token));
            Assert.True(m.TryAcceptToken(token));
        }
        Assert.True(m.Allows(eos));
        Assert.True(m.TryAcceptToken(eos));
    }

    [Fact]
    public void Checking_and_accepting_tokens_allocates_nothing_once_warm()
    {
        var tokenizer = VocabFixtures.Load("qwen2");
        var vocabulary = QwenVocabulary.Value;
        var m = GrammarMatcherTests.Shared("json").CreateMatcher(vocabulary);
        int[] tokens = tokenizer.Encode("{\"a\": [1, {\"b\": \"c d\"}], \"e\": \"中文\"}", addSpecialTokens: false);
        var logits = new float[vocabulary.Count];
        var saved = m.Clone();
        void Pass()
        {
            m.Reset();
            foreach (int token in tokens)
            {
                Assert.True(m.Allows(token));
                logits.AsSpan().Clear();
                Assert.True(m.Mask(logits) > 0);
                Assert.True(m.TryAcceptToken(token));
            }
            saved.CopyFrom(m);
            m.CopyFrom(saved);
        }
        Pass();
        Assert.Equal(0, Allocations.Fewest(Pass));
    }

    [Fact]
    public void One_grammar_and_vocabulary_serve_many_threads()
    {
        var grammar = GrammarMatcherTests.Shared("json");
        var vocabulary = StoriesVocabulary.Value;
        string[] texts = ["{\"a\": 1}", "{\"b\": [true, false]}", "{\"c\": {\"d\": \"e\"}}", "{}"];
        Parallel.For(0, 64, i =>
        {
            var m = grammar.CreateMatcher(vocabulary);
            string text = texts[i % texts.Length];
            foreach (char c in text)
                Assert.True(m.TryAccept(c.ToString()));
            Assert.True(m.IsComplete);
        });
    }
}

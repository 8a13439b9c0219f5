using System.Text;
using ManagedLM.Gguf;
using ManagedLM.Tokenization;

namespace ManagedLM.Tests.Tokenization;

/// <summary>
/// <see cref="Tokenizer.MinimumTokenCount"/> is a true lower bound (every text encodes to at least that many tokens), so
/// <see cref="Tokenizer.EncodePrompt"/> rejects only prompts that cannot fit.
/// </summary>
public class TokenCountBoundTests
{
    public static TheoryData<string> Vocabularies => [.. VocabFixtures.Names];

    [Theory]
    [InlineData("gpt-2", 128, false)]
    [InlineData("llama-bpe", 128, false)]
    [InlineData("llama-spm", 48, false)]
    [InlineData("phi-3", 48, true)]
    [InlineData("qwen2", 128, false)]
    public void The_bound_is_the_longest_token_in_input_bytes(string vocab, int maxBytes, bool whitespaceFree)
    {
        var tokenizer = VocabFixtures.Load(vocab);
        Assert.Equal(maxBytes, tokenizer.MaxBytesPerToken);
        // Whitespace counts unless a special token swallows the whitespace beside it (Phi-3's rstrip).
        Assert.Equal(whitespaceFree ? 1 : 2, tokenizer.MinimumTokenCount(new string(' ', maxBytes) + "x"));
    }

    [Theory]
    [MemberData(nameof(Vocabularies))]
    public void Every_text_encodes_to_at_least_the_minimum_token_count(string vocab)
    {
        var tokenizer = VocabFixtures.Load(vocab);
        int checkedTexts = 0;
        foreach (string text in Texts(tokenizer, vocab))
        {
            int least = tokenizer.MinimumTokenCount(text);
            foreach (bool parseSpecial in new[] { false, true })
            {
                int count = tokenizer.Encode(text, addSpecialTokens: false, parseSpecialTokens: parseSpecial).Length;
                Assert.True(count >= least, $"{vocab}: {count} tokens (parse special: {parseSpecial}) for a text whose bound is {least}: \"{text[..Math.Min(80, text.Length)]}\"");
            }
            checkedTexts++;
        }
        Assert.True(checkedTexts > 100, $"{checkedTexts} texts");
    }

    // The vocabulary's test texts, mixed text, and texts built to cost few tokens: the longest tokens repeated (as their
    // text and as what they decode to), runs of ▁ written out (3 bytes each, one SentencePiece symbol), runs of spaces
    // beside special tokens (which lstrip/rstrip swallow).
    private static IEnumerable<string> Texts(Tokenizer tokenizer, string vocab)
    {
        foreach (var (text, _) in VocabFixtures.Vectors(vocab))
            yield return text;
        for (int seed = 0; seed < 8; seed++)
            yield return TokenizerTests.GenerateText(2000, seed);
        var longest = Enumerable.Range(0, tokenizer.VocabSize)
            .OrderByDescending(id => Encoding.UTF8.GetByteCount(tokenizer.TokenText(id)))
            .Take(40);
        foreach (int id in longest)
        {
            yield return string.Concat(Enumerable.Repeat(tokenizer.TokenText(id), 5));
            yield return string.Concat(Enumerable.Repeat(Encoding.UTF8.GetString(tokenizer.TokenBytes(id, includeSpecial: true)), 5));
        }
        yield return new string('▁', 200);
        yield return " " + new string('▁', 31) + "x" + new string('▁', 16);
        for (int id = 0; id < tokenizer.VocabSize; id++)
        {
            if (tokenizer.GetTokenType(id) is TokenType.Control or TokenType.UserDefined)
                yield return $"a{new string(' ', 100)}{tokenizer.TokenText(id)}{new string(' ', 300)}\n\n{tokenizer.TokenText(id)}\t\t b";
        }
    }

    [Fact]
    public void A_prompt_that_cannot_fit_the_context_is_rejected_naming_the_bound()
    {
        var tokenizer = VocabFixtures.Load("llama-spm");
        int context = 100;
        string fits = new('a', context * tokenizer.MaxBytesPerToken);
        Assert.Equal(context, tokenizer.MinimumTokenCount(fits));
        // Within the bound the text is encoded (here to far fewer ids than the context: the caller checks those).
        Assert.Equal(tokenizer.Encode(fits), tokenizer.EncodePrompt(fits, context));

        var e = Assert.Throws<ArgumentException>(() => tokenizer.EncodePrompt(fits + "a", context));
        Assert.Equal("prompt", e.ParamName);
        Assert.StartsWith($"The prompt needs at least {context + 1} tokens ({context * 48 + 1} bytes of UTF-8, at most 48 per token); the context length is {context}.", e.Message);

        // Multi-byte text: bytes count, not chars.
        Assert.Throws<ArgumentException>(() => tokenizer.EncodePrompt(new string('é', context * 48 / 2 + 1), context));
        Assert.NotEmpty(tokenizer.EncodePrompt(new string('é', context * 48 / 2), context));
    }

    [Fact]
    public void Whitespace_does_not_count_where_special_tokens_swallow_it()
    {
        var phi3 = VocabFixtures.Load("phi-3");
        string spaces = new(' ', 10_000);
        Assert.Equal(0, phi3.MinimumTokenCount(spaces));
        Assert.Equal(phi3.Encode(spaces), phi3.EncodePrompt(spaces, contextLength: 1));
        Assert.Equal(2, phi3.Encode("<|end|>" + spaces + "<|end|>", addSpecialTokens: false, parseSpecialTokens: true).Length);
    }

    [Fact]
    public void A_byte_level_vocabulary_that_can_drop_bytes_gives_no_bound()
    {
        // No token for most bytes: llama.cpp drops what it cannot encode, so a text can encode to nothing.
        var tokenizer = Tokenizer.FromGguf(new GgufMetadata(
        [
            new GgufMetadataEntry("tokenizer.ggml.model", GgufValue.Of("gpt2"), 0),
            new GgufMetadataEntry("tokenizer.ggml.pre", GgufValue.Of("gpt-2"), 0),
            new GgufMetadataEntry("tokenizer.ggml.tokens", GgufValue.Of(GgufArray.Of(["a", "b", "ab"])), 0),
            new GgufMetadataEntry("tokenizer.ggml.merges", GgufValue.Of(GgufArray.Of(["a b"])), 0),
        ], 0));
        Assert.Empty(tokenizer.Encode("ddd", addSpecialTokens: false));
        Assert.Equal(int.MaxValue, tokenizer.MaxBytesPerToken);
        Assert.Equal(0, tokenizer.MinimumTokenCount(new string('d', 1 << 20)));
    }
}

using System.Text;
using ManagedLM.Gguf;
using ManagedLM.Tokenization;

namespace ManagedLM.Tests.Tokenization;

public class TokenizerTests
{
    [Fact]
    public void Stories260K_prompt_with_bos()
    {
        using var file = GgufFile.Open(TestData.Model("stories260K.gguf"));
        var tokenizer = Tokenizer.FromGguf(file.Metadata);
        Assert.IsType<SpmTokenizer>(tokenizer);
        Assert.Equal(512, tokenizer.VocabSize);
        Assert.Equal(new[] { 1, 403, 407, 261, 378 }, tokenizer.Encode("Once upon a time"));
        Assert.Equal((1, 2, 0), (tokenizer.BosTokenId, tokenizer.EosTokenId, tokenizer.UnknownTokenId));
        // padding_token_id = 0xFFFFFFFF names no token: ignored, as llama.cpp does.
        Assert.Equal(-1, tokenizer.PaddingTokenId);
        Assert.True(tokenizer.IsEndOfGeneration(2));
        Assert.False(tokenizer.IsEndOfGeneration(1));
    }

    [Theory]
    [InlineData("llama-spm", true, 1)]
    [InlineData("phi-3", true, 1)]
    [InlineData("llama-bpe", true, 128000)]
    [InlineData("qwen2", false, 151643)]
    [InlineData("gpt-2", false, 50256)]
    public void Bos_is_added_as_the_model_says(string vocab, bool addBos, int bos)
    {
        var tokenizer = VocabFixtures.Load(vocab);
        Assert.Equal(addBos, tokenizer.AddBosToken);
        Assert.False(tokenizer.AddEosToken);
        Assert.Equal(bos, tokenizer.BosTokenId);
        int[] plain = tokenizer.Encode("Hello world", addSpecialTokens: false);
        int[] prompt = tokenizer.Encode("Hello world");
        Assert.Equal(addBos ? [bos, .. plain] : plain, prompt);
        Assert.Equal(addBos ? [bos] : [], tokenizer.Encode(""));
    }

    [Fact]
    public void Special_tokens_are_parsed_only_when_asked()
    {
        var tokenizer = VocabFixtures.Load("llama-bpe");
        const string text = "<|begin_of_text|>Hello";
        Assert.Equal(new[] { 128000, 9906 }, tokenizer.Encode(text, addSpecialTokens: false, parseSpecialTokens: true));
        int[] literal = tokenizer.Encode(text, addSpecialTokens: false, parseSpecialTokens: false);
        Assert.DoesNotContain(128000, literal);
        Assert.Equal(text, tokenizer.Decode(literal));
        // With add_bos the prompt starts with BOS, then the parsed one: two BOS tokens, as llama.cpp gives.
        Assert.Equal(new[] { 128000, 128000, 9906 }, tokenizer.Encode(text, addSpecialTokens: true, parseSpecialTokens: true));
    }

    [Fact]
    public void User_defined_tokens_are_recognized_without_parsing_special_tokens()
    {
        var tokenizer = VocabFixtures.Load("qwen2");
        int think = tokenizer.TokenId("<think>");
        int imStart = tokenizer.TokenId("<|im_start|>");
        Assert.Equal(TokenType.UserDefined, tokenizer.GetTokenType(think));
        Assert.Equal(TokenType.Control, tokenizer.GetTokenType(imStart));
        int[] ids = tokenizer.Encode("<|im_start|><think>x</think>", addSpecialTokens: false);
        Assert.Contains(think, ids);
        Assert.DoesNotContain(imStart, ids);
        Assert.Equal(imStart, tokenizer.Encode("<|im_start|><think>", addSpecialTokens: false, parseSpecialTokens: true)[0]);
    }

    [Fact]
    public void Phi3_special_tokens_swallow_the_whitespace_after_them()
    {
        var tokenizer = VocabFixtures.Load("phi-3");
        int user = tokenizer.TokenId("<|user|>");
        int hello = tokenizer.TokenId("▁Hello");
        Assert.Equal(new[] { user, hello }, tokenizer.Encode("<|user|>\nHello", addSpecialTokens: false, parseSpecialTokens: true));
    }

    [Fact]
    public void End_of_generation_tokens_match_llama_cpp()
    {
        var llama3 = VocabFixtures.Load("llama-bpe");
        Assert.True(llama3.IsEndOfGeneration(128001));
        Assert.True(llama3.IsEndOfGeneration(llama3.TokenId("<|eot_id|>")));
        Assert.False(llama3.IsEndOfGeneration(128000));
        Assert.False(llama3.IsEndOfGeneration(9906));
        Assert.Equal(llama3.TokenId("<|eot_id|>"), llama3.EotTokenId);

        var qwen = VocabFixtures.Load("qwen2");
        Assert.True(qwen.IsEndOfGeneration(qwen.TokenId("<|im_end|>")));
        Assert.True(qwen.IsEndOfGeneration(qwen.TokenId("<|endoftext|>")));
        Assert.True(qwen.IsEndOfGeneration(qwen.TokenId("<|file_sep|>")));
        Assert.False(qwen.IsEndOfGeneration(qwen.TokenId("<|im_start|>")));
        Assert.Equal(qwen.TokenId("<|im_end|>"), qwen.EotTokenId);

        var phi3 = VocabFixtures.Load("phi-3");
        Assert.True(phi3.IsEndOfGeneration(phi3.TokenId("<|end|>")));
        Assert.True(phi3.IsEndOfGeneration(phi3.EosTokenId));
        Assert.False(phi3.IsEndOfGeneration(phi3.TokenId("<|user|>")));
        Assert.False(phi3.IsEndOfGeneration(-1));
    }

    [Fact]
    public void Pieces_show_spaces_bytes_and_special_text()
    {
        var spm = VocabFixtures.Load("llama-spm");
        Assert.Equal(" Hello", spm.TokenToPiece(spm.TokenId("▁Hello")));
        Assert.Equal("<s>", spm.TokenToPiece(1));
        Assert.Equal("\n", spm.TokenToPiece(spm.TokenId("<0x0A>")));
        Assert.Equal("<0xF0>", spm.TokenToPiece(spm.TokenId("<0xF0>")));
        Assert.True(spm.TokenBytes(1).IsEmpty);
        Assert.Equal("<s>"u8.ToArray(), spm.TokenBytes(1, includeSpecial: true).ToArray());
        Assert.Equal(new byte[] { 0xF0 }, spm.TokenBytes(spm.TokenId("<0xF0>")).ToArray());

        var gpt2 = VocabFixtures.Load("gpt-2");
        Assert.Equal(" Hello", gpt2.TokenToPiece(gpt2.TokenId("ĠHello")));
        Assert.Equal("\n", gpt2.TokenToPiece(gpt2.TokenId("Ċ")));
        // "âĢ" is the bytes E2 80: the start of a three-byte character.
        Assert.Equal("<0xE2><0x80>", gpt2.TokenToPiece(gpt2.TokenId("âĢ")));
        Span<byte> dest = stackalloc byte[8];
        Assert.Equal(2, gpt2.TokenToBytes(gpt2.TokenId("âĢ"), dest));
        Assert.Equal(new byte[] { 0xE2, 0x80 }, dest[..2].ToArray());
        Assert.Throws<ArgumentException>(() => gpt2.TokenToBytes(gpt2.TokenId("ĠHello"), new byte[2]));
        Assert.Throws<ArgumentOutOfRangeException>(() => gpt2.TokenToPiece(gpt2.VocabSize));
    }

    [Fact]
    public void Decode_follows_llama_cpp_detokenize()
    {
        var spm = VocabFixtures.Load("llama-spm");
        Assert.Equal("Hello world", spm.Decode(spm.Encode("Hello world", addSpecialTokens: false)));
        // A dropped BOS keeps the space prefix of the next token (llama_detokenize).
        Assert.Equal(" Hello world", spm.Decode(spm.Encode("Hello world")));
        Assert.Equal("<s> Hello world", spm.Decode(spm.Encode("Hello world"), skipSpecialTokens: false));

        var llama3 = VocabFixtures.Load("llama-bpe");
        Assert.Equal("Hello", llama3.Decode(llama3.Encode("Hello")));
        Assert.Equal("<|begin_of_text|>Hello", llama3.Decode(llama3.Encode("Hello"), skipSpecialTokens: false));

        // clean_up_tokenization_spaces: gpt-2 and llama-bpe remove spaces before punctuation; qwen2 does not.
        var gpt2 = VocabFixtures.Load("gpt-2");
        Assert.Equal("Hello, world! It's'x'I'm", gpt2.Decode(gpt2.Encode("Hello , world ! It 's ' x ' I 'm")));
        var qwen = VocabFixtures.Load("qwen2");
        Assert.Equal("Hello , world !", qwen.Decode(qwen.Encode("Hello , world !")));
        Assert.Throws<ArgumentOutOfRangeException>(() => qwen.Decode([qwen.VocabSize]));
    }

    [Fact]
    public void Unpaired_surrogates_encode_as_replacement_characters()
    {
        var qwen = VocabFixtures.Load("qwen2");
        Assert.Equal(qwen.Encode("a\uFFFDb"), qwen.Encode("a\uD800b"));
        var spm = VocabFixtures.Load("llama-spm");
        Assert.Equal(spm.Encode("\uFFFD"), spm.Encode("\uDC00"));
    }

    [Theory]
    [InlineData("llama-spm")]
    [InlineData("qwen2")]
    public void A_megabyte_of_text_round_trips(string vocab)
    {
        var tokenizer = VocabFixtures.Load(vocab);
        string text = GenerateText(1 << 20, seed: 1234);
        int[] ids = tokenizer.Encode(text, addSpecialTokens: false);
        Assert.InRange(ids.Length, text.Length / 12, text.Length);
        Assert.Equal(text, tokenizer.Decode(ids));
    }

    /// <summary>Deterministic mixed text: words, numbers, punctuation, accents, CJK, emoji, runs of spaces and newlines.</summary>
    internal static string GenerateText(int length, int seed)
    {
        string[] words =
        [
            "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "Hello", "world", "tokenizer", "don't", "it's",
            "naïve", "café", "Ünïcödé", "Привет", "мир", "こんにちは", "世界", "안녕하세요", "🦙", "😁", "🚀✨", "3.14159",
            "1234567", "(x)", "[y]", "{z}", "->", "==", "//", "#include", "\t", "  ", "\n", "\n\n", "   \n", "...", "?!",
        ];
        var random = new Random(seed);
        var sb = new StringBuilder(length + 32);
        while (sb.Length < length)
        {
            sb.Append(words[random.Next(words.Length)]);
            sb.Append(random.Next(4) == 0 ? "" : " ");
        }
        return sb.ToString();
    }

    [Fact]
    public void Unknown_model_or_pre_tokenizer_is_named()
    {
        var t5 = Assert.Throws<NotSupportedException>(() => Tokenizer.FromGguf(Metadata(("tokenizer.ggml.model", GgufValue.Of("t5")))));
        Assert.Contains("\"t5\"", t5.Message);
        Assert.Contains("\"bert\" (WordPiece)", t5.Message);
        var pre = Assert.Throws<NotSupportedException>(() => Tokenizer.FromGguf(Metadata(
            ("tokenizer.ggml.model", GgufValue.Of("gpt2")), ("tokenizer.ggml.pre", GgufValue.Of("no-such-pre")),
            ("tokenizer.ggml.tokens", GgufValue.Of(GgufArray.Of(["a", "b"]))), ("tokenizer.ggml.merges", GgufValue.Of(GgufArray.Of(["a b"]))))));
        Assert.Contains("\"no-such-pre\"", pre.Message);
        Assert.Throws<GgufFormatException>(() => Tokenizer.FromGguf(Metadata(("general.architecture", GgufValue.Of("llama")))));
    }

    [Fact]
    public void Tiny_bpe_vocabulary_from_metadata()
    {
        // Merges decide: "a b" → "ab" (rank 0), then "ab c" → "abc" (rank 1); "Ġ" is the space byte.
        var tokenizer = Tokenizer.FromGguf(Metadata(
            ("tokenizer.ggml.model", GgufValue.Of("gpt2")), ("tokenizer.ggml.pre", GgufValue.Of("gpt-2")),
            ("tokenizer.ggml.tokens", GgufValue.Of(GgufArray.Of(["a", "b", "c", "ab", "abc", "Ġ", "Ġabc", "<eos>"]))),
            ("tokenizer.ggml.token_type", GgufValue.Of(GgufArray.Of([1, 1, 1, 1, 1, 1, 1, 3]))),
            ("tokenizer.ggml.merges", GgufValue.Of(GgufArray.Of(["a b", "ab c", "Ġ abc"]))),
            ("tokenizer.ggml.eos_token_id", GgufValue.Of(7u)),
            ("tokenizer.ggml.add_eos_token", GgufValue.Of(true))));
        Assert.Equal(new[] { 4, 6, 3, 7 }, tokenizer.Encode("abc abcab"));
        Assert.Equal("abc abcabab", tokenizer.Decode([4, 6, 3, 3, 7]));
        Assert.True(tokenizer.IsEndOfGeneration(7));
        // llama.cpp's default BPE BOS id (11) names no token in an 8-token vocabulary.
        Assert.Equal(-1, tokenizer.BosTokenId);
    }

    private static GgufMetadata Metadata(params (string Key, GgufValue Value)[] entries) =>
        new(entries.Select(e => new GgufMetadataEntry(e.Key, e.Value, 0)).ToList(), 0);
}

using ManagedLM.Tokenization;

namespace ManagedLM.Tests.Tokenization;

public class StreamingDecoderTests
{
    [Fact]
    public void Emoji_split_over_byte_tokens_comes_out_when_complete()
    {
        var spm = VocabFixtures.Load("llama-spm");
        int[] ids = spm.Encode("😁!", addSpecialTokens: false);
        int[] bytes = new[] { "<0xF0>", "<0x9F>", "<0x98>", "<0x81>" }.Select(spm.TokenId).ToArray();
        Assert.Equal(bytes, ids[1..5]);

        var decoder = spm.CreateStreamingDecoder();
        string[] parts = ids.Select(decoder.Append).ToArray();
        Assert.Equal(new[] { " ", "", "", "", "😁", "!" }, parts);
        Assert.Equal("", decoder.Flush());
    }

    [Fact]
    public void Allocation_free_append_writes_into_the_buffer()
    {
        var gpt2 = VocabFixtures.Load("gpt-2");
        const string text = "Lucky 🦙 says 你好";
        int[] ids = gpt2.Encode(text);
        var decoder = gpt2.CreateStreamingDecoder();
        Span<char> buffer = stackalloc char[64];
        var result = new System.Text.StringBuilder();
        foreach (int id in ids)
        {
            int n = decoder.Append(id, buffer);
            result.Append(buffer[..n]);
        }
        Assert.Equal(text, result.ToString());
        Assert.Throws<ArgumentException>(() => decoder.Append(gpt2.TokenId("ĠHello"), new char[2]));
    }

    [Fact]
    public void Incomplete_character_flushes_as_replacement_and_reset_forgets_it()
    {
        var spm = VocabFixtures.Load("llama-spm");
        var decoder = spm.CreateStreamingDecoder();
        Assert.Equal("", decoder.Append(spm.TokenId("<0xF0>")));
        Assert.Equal("", decoder.Append(spm.TokenId("<0x9F>")));
        Assert.Equal("\uFFFD", decoder.Flush());

        Assert.Equal("", decoder.Append(spm.TokenId("<0xE2>")));
        decoder.Reset();
        Assert.Equal("a", decoder.Append(spm.TokenId("a")));
        // A broken sequence followed by a normal token: U+FFFD, then the token.
        Assert.Equal("", decoder.Append(spm.TokenId("<0xE2>")));
        Assert.Equal("\uFFFD Hello", decoder.Append(spm.TokenId("▁Hello")));
    }

    [Fact]
    public void Special_tokens_are_skipped_unless_asked()
    {
        var llama3 = VocabFixtures.Load("llama-bpe");
        Assert.Equal("", llama3.CreateStreamingDecoder().Append(128009));
        Assert.Equal("<|eot_id|>", llama3.CreateStreamingDecoder(skipSpecialTokens: false).Append(128009));
    }

    [Fact]
    public void Span_append_allocates_nothing_once_warm()
    {
        var spm = VocabFixtures.Load("llama-spm");
        int[] ids = spm.Encode("Hello 😁 wörld, 你好!", addSpecialTokens: false);
        var decoder = spm.CreateStreamingDecoder();
        char[] buffer = new char[64];
        foreach (int id in ids)
            decoder.Append(id, buffer);
        int chars = 0;
        Assert.Equal(0, Allocations.Fewest(() =>
        {
            for (int round = 0; round < 100; round++)
            {
                foreach (int id in ids)
                    chars += decoder.Append(id, buffer);
                chars += spm.IsEndOfGeneration(ids[0]) ? 1 : 0;
            }
        }));
        Assert.True(chars > 0);
    }
}

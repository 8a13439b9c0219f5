using ManagedLM.Generation;

namespace ManagedLM.Tests.Generation;

/// <summary>What a user sees printing a <see cref="GenerationResult"/>: one short line, not the record's every member.</summary>
public class GenerationResultFormatTests
{
    private static GenerationResult Result(string text, int generated = 64) =>
        new([1, 403, 407, 261, 378], new int[generated], text, StopReason.MaxTokens, TimeSpan.FromMilliseconds(20), TimeSpan.FromSeconds(0.5))
        {
            ReusedPromptTokens = 2,
        };

    [Fact]
    public void ToString_is_one_line_with_the_reason_counts_speed_and_text()
    {
        Assert.Equal("StopReason=MaxTokens, 64 tokens (prompt 5, reused 2), 128.0 tokens/s: \"Once upon a time\"",
            Result("Once upon a time").ToString());
    }

    [Fact]
    public void Long_text_is_cut_at_60_characters_and_breaks_and_quotes_are_escaped()
    {
        string text = "Lily said \"hi\".\nTom\tran. " + new string('a', 100);
        Assert.Equal("StopReason=MaxTokens, 64 tokens (prompt 5, reused 2), 128.0 tokens/s: \"Lily said \\\"hi\\\".\\nTom\\tran. "
            + new string('a', 60 - 25) + "…\"", Result(text).ToString());
    }

    [Fact]
    public void A_cut_never_splits_a_surrogate_pair()
    {
        string text = new string('a', 59) + "😀 and more";
        Assert.EndsWith(": \"" + new string('a', 59) + "…\"", Result(text).ToString());
        Assert.EndsWith(": \"" + new string('a', 58) + "😀…\"", Result(new string('a', 58) + "😀 and more").ToString());
    }
}

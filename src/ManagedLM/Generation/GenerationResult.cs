using System.Globalization;
using System.Text;

namespace ManagedLM.Generation;

/// <summary>Why generation stopped.</summary>
public enum StopReason
{
    /// <summary>The model produced an end-of-generation token.</summary>
    EndOfGeneration,
    /// <summary>The requested number of tokens was produced.</summary>
    MaxTokens,
    /// <summary>A stop string appeared in the text.</summary>
    StopString,
    /// <summary>The context is full.</summary>
    ContextFull,
}

/// <summary>The outcome of one generation: ids, text, why it stopped, and timings.</summary>
public sealed record GenerationResult(
    int[] PromptTokens,
    int[] GeneratedTokens,
    string Text,
    StopReason StopReason,
    TimeSpan PromptTime,
    TimeSpan DecodeTime)
{
    /// <summary>Prompt tokens found in the cache and not evaluated again.</summary>
    public int ReusedPromptTokens { get; init; }

    /// <summary>Context shifts during the generation (<see cref="ContextOverflow.Shift"/>).</summary>
    public int ContextShifts { get; init; }

    /// <summary>Tokens the context shifts discarded from the cache.</summary>
    public int DiscardedTokens { get; init; }

    /// <summary>Prompt tokens evaluated per second.</summary>
    public double PromptTokensPerSecond => (PromptTokens.Length - ReusedPromptTokens) / Math.Max(PromptTime.TotalSeconds, 1e-9);

    /// <summary>Generated tokens per second (one sample and one forward pass each).</summary>
    public double DecodeTokensPerSecond => GeneratedTokens.Length / Math.Max(DecodeTime.TotalSeconds, 1e-9);

    /// <summary>Per generated token, its log-probability (when asked with <see cref="GenerationOptions.Logprobs"/>).</summary>
    public IReadOnlyList<TokenOutput>? Tokens { get; init; }

    /// <summary>Characters of <see cref="Text"/> that <see cref="ToString"/> shows.</summary>
    private const int ShownTextChars = 60;

    /// <summary>
    /// One line: why it stopped, the token counts, the decode speed and the start of the text, e.g.
    /// <c>StopReason=MaxTokens, 64 tokens (prompt 5, reused 0), 123.4 tokens/s: "Once upon a time, there was…"</c>.
    /// </summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"StopReason={StopReason}, {GeneratedTokens.Length} tokens (prompt {PromptTokens.Length}, reused {ReusedPromptTokens}), {DecodeTokensPerSecond:F1} tokens/s: \"{Excerpt(Text, ShownTextChars)}\"");

    // The first chars of a text on one line: line breaks, tabs and quotes escaped, "…" where it was cut (never inside a surrogate pair).
    private static string Excerpt(string text, int chars)
    {
        int length = Math.Min(text.Length, chars);
        if (length < text.Length && length > 0 && char.IsHighSurrogate(text[length - 1]))
            length--;
        var s = new StringBuilder(length + 8);
        foreach (char c in text.AsSpan(0, length))
        {
            _ = c switch
            {
                '\n' => s.Append("\\n"),
                '\r' => s.Append("\\r"),
                '\t' => s.Append("\\t"),
                '"' or '\\' => s.Append('\\').Append(c),
                _ => s.Append(c),
            };
        }
        return length < text.Length ? s.Append('…').ToString() : s.ToString();
    }
}

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

    /// <summary>Prompt tokens evaluated per second.</summary>
    public double PromptTokensPerSecond => (PromptTokens.Length - ReusedPromptTokens) / Math.Max(PromptTime.TotalSeconds, 1e-9);

    /// <summary>Generated tokens per second (one sample and one forward pass each).</summary>
    public double DecodeTokensPerSecond => GeneratedTokens.Length / Math.Max(DecodeTime.TotalSeconds, 1e-9);

    /// <summary>Per generated token, its log-probability (when asked with <see cref="GenerationOptions.Logprobs"/>).</summary>
    public IReadOnlyList<TokenOutput>? Tokens { get; init; }
}

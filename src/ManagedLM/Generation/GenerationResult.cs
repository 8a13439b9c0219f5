namespace ManagedLM.Generation;

/// <summary>Why generation stopped.</summary>
public enum StopReason
{
    /// <summary>The model produced an end-of-generation token.</summary>
    EndOfGeneration,
    /// <summary>The requested number of tokens was produced.</summary>
    MaxTokens,
    /// <summary>The context is full.</summary>
    ContextFull,
}

/// <summary>The outcome of one generation: ids, why it stopped, and timings.</summary>
public sealed record GenerationResult(
    int[] PromptTokens,
    int[] GeneratedTokens,
    StopReason StopReason,
    TimeSpan PromptTime,
    TimeSpan DecodeTime)
{
    /// <summary>Prompt tokens evaluated per second.</summary>
    public double PromptTokensPerSecond => PromptTokens.Length / Math.Max(PromptTime.TotalSeconds, 1e-9);

    /// <summary>Generated tokens per second (one sample and one forward pass each).</summary>
    public double DecodeTokensPerSecond => GeneratedTokens.Length / Math.Max(DecodeTime.TotalSeconds, 1e-9);
}

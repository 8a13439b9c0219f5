using System.Collections.Immutable;
using ManagedLM.Sampling;

namespace ManagedLM.Generation;

/// <summary>Options of one generation call (<see cref="Generator.Generate(string, GenerationOptions?, CancellationToken)"/> and friends).</summary>
public sealed record GenerationOptions
{
    public static GenerationOptions Default { get; } = new();

    /// <summary>Most tokens to generate. Must be ≥ 0.</summary>
    public int MaxTokens { get; init; } = 256;

    /// <summary>
    /// Strings that end generation when the text produces them, matched across token boundaries;
    /// the stop string itself is not emitted.
    /// </summary>
    public IReadOnlyList<string> StopStrings
    {
        get => _stopStrings;
        init => _stopStrings = value is null ? throw new ArgumentNullException(nameof(StopStrings)) : [.. value];
    }

    private readonly ImmutableArray<string> _stopStrings = [];

    /// <summary>Sampling for this call; null uses the generator's (<see cref="GeneratorOptions.Sampling"/>).</summary>
    public SamplingOptions? Sampling { get; init; }

    /// <summary>Keep generating past end-of-generation tokens (they are then emitted like any token).</summary>
    public bool IgnoreEndOfGeneration { get; init; }

    /// <summary>For a text prompt: add BOS/EOS as the model's tokenizer asks (default true).</summary>
    public bool AddSpecialTokens { get; init; } = true;

    /// <summary>For a text prompt: recognize special tokens written in the text, e.g. "&lt;|im_start|&gt;" (default false).</summary>
    public bool ParseSpecialTokens { get; init; }

    /// <summary>
    /// Reuse the cached tokens the new prompt starts with instead of evaluating them again (default true).
    /// The result is the same either way; only the time differs.
    /// </summary>
    public bool ReusePrefix { get; init; } = true;

    /// <summary>Report each token's log-probability (<see cref="TokenOutput.Logprob"/>).</summary>
    public bool Logprobs { get; init; }

    /// <summary>Also report this many most likely alternatives per token (0–20; needs <see cref="Logprobs"/>).</summary>
    public int TopLogprobs { get; init; }

    /// <summary>
    /// Throw <see cref="InvalidOperationException"/> when the context fills up, instead of ending with
    /// <see cref="StopReason.ContextFull"/>.
    /// </summary>
    public bool ThrowOnContextFull { get; init; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the bound a value violates.</summary>
    public void Validate()
    {
        if (MaxTokens < 0)
            throw new ArgumentOutOfRangeException(nameof(MaxTokens), MaxTokens, "MaxTokens must be ≥ 0.");
        if (TopLogprobs is < 0 or > 20)
            throw new ArgumentOutOfRangeException(nameof(TopLogprobs), TopLogprobs, "TopLogprobs must be in [0, 20].");
        if (TopLogprobs > 0 && !Logprobs)
            throw new ArgumentOutOfRangeException(nameof(TopLogprobs), TopLogprobs, "TopLogprobs needs Logprobs = true.");
        foreach (string s in StopStrings)
        {
            if (string.IsNullOrEmpty(s))
                throw new ArgumentException("Stop strings must be non-empty.", nameof(StopStrings));
        }
        Sampling?.Validate();
    }
}

namespace ManagedLM.Sampling;

/// <summary>
/// How the next token is chosen from the logits, applied in llama.cpp's order:
/// top-k → top-p → min-p → temperature → seeded draw. Temperature 0 is greedy (argmax, ties to the lower id).
/// Defaults are llama.cpp's.
/// </summary>
public sealed record SamplingOptions
{
    /// <summary>llama.cpp's defaults: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, random seed.</summary>
    public static SamplingOptions Default { get; } = new();

    /// <summary>Always the most likely token.</summary>
    public static SamplingOptions Greedy { get; } = new() { Temperature = 0 };

    /// <summary>Divides the logits; 0 means greedy. Must be ≥ 0.</summary>
    public float Temperature { get; init; } = 0.8f;
    /// <summary>Keep only the k most likely tokens; 0 disables.</summary>
    public int TopK { get; init; } = 40;
    /// <summary>Keep the smallest set of most likely tokens whose probabilities sum to at least p; 1 disables. In (0, 1].</summary>
    public float TopP { get; init; } = 0.95f;
    /// <summary>Drop tokens less likely than min_p times the most likely one; 0 disables. In [0, 1].</summary>
    public float MinP { get; init; } = 0.05f;
    /// <summary>Seed of the generator's random draws; null picks one at random (see SamplerChain.Seed).</summary>
    public ulong? Seed { get; init; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the bound an option violates.</summary>
    public void Validate()
    {
        if (!(Temperature >= 0) || float.IsInfinity(Temperature))
            throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, "Temperature must be a finite number ≥ 0 (0 is greedy).");
        if (TopK < 0)
            throw new ArgumentOutOfRangeException(nameof(TopK), TopK, "TopK must be ≥ 0 (0 disables it).");
        if (!(TopP > 0 && TopP <= 1))
            throw new ArgumentOutOfRangeException(nameof(TopP), TopP, "TopP must be in (0, 1] (1 disables it).");
        if (!(MinP >= 0 && MinP <= 1))
            throw new ArgumentOutOfRangeException(nameof(MinP), MinP, "MinP must be in [0, 1] (0 disables it).");
    }
}

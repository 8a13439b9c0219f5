using System.Collections.Frozen;

namespace ManagedLM.Sampling;

/// <summary>
/// How the next token is chosen from the logits, applied in llama.cpp's order:
/// logit bias → penalties (repeat, frequency, presence over the last <see cref="RepeatLastN"/> tokens) →
/// top-k → typical-p → top-p → min-p → temperature → seeded draw.
/// Temperature 0 is greedy: the argmax (ties to the lower id) of the biased and penalized logits.
/// Defaults are llama.cpp's (common_params_sampling).
/// </summary>
public sealed record SamplingOptions
{
    private readonly FrozenDictionary<int, float> _logitBias = FrozenDictionary<int, float>.Empty;

    /// <summary>
    /// llama.cpp's defaults: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, typical-p 1 (off),
    /// repeat penalty 1 (off) over the last 64 tokens, no frequency or presence penalty, no logit bias, random seed.
    /// </summary>
    public static SamplingOptions Default { get; } = new();

    /// <summary>Always the most likely token (after logit bias and penalties).</summary>
    public static SamplingOptions Greedy { get; } = new() { Temperature = 0 };

    /// <summary>llama.cpp <c>temp</c> (<c>--temp</c>): divides the logits; 0 is greedy. Finite, ≥ 0.</summary>
    public float Temperature { get; init; } = 0.8f;

    /// <summary>llama.cpp <c>top_k</c> (<c>--top-k</c>): keep only the k most likely tokens; 0 disables. ≥ 0.</summary>
    public int TopK { get; init; } = 40;

    /// <summary>
    /// llama.cpp <c>top_p</c> (<c>--top-p</c>, nucleus): keep the fewest most likely tokens whose probabilities
    /// sum to at least p; 1 disables. In (0, 1].
    /// </summary>
    public float TopP { get; init; } = 0.95f;

    /// <summary>
    /// llama.cpp <c>min_p</c> (<c>--min-p</c>): drop tokens less likely than min-p times the most likely one;
    /// 0 disables. In [0, 1].
    /// </summary>
    public float MinP { get; init; } = 0.05f;

    /// <summary>
    /// llama.cpp <c>typ_p</c> (<c>--typical</c>, locally typical sampling): keep the tokens whose surprise
    /// (−ln p) is closest to the distribution's entropy until their probabilities sum past p; 1 disables. In (0, 1].
    /// </summary>
    public float TypicalP { get; init; } = 1f;

    /// <summary>
    /// llama.cpp <c>penalty_repeat</c> (<c>--repeat-penalty</c>): a token seen in the window has a positive logit
    /// divided by this and a non-positive one multiplied by it; 1 disables. Finite, &gt; 0.
    /// </summary>
    public float RepeatPenalty { get; init; } = 1f;

    /// <summary>
    /// llama.cpp <c>penalty_last_n</c> (<c>--repeat-last-n</c>): how many of the last tokens (prompt included)
    /// the penalties look at; 0 disables the penalties, -1 is the whole history. ≥ -1.
    /// </summary>
    public int RepeatLastN { get; init; } = 64;

    /// <summary>
    /// llama.cpp <c>penalty_freq</c> (<c>--frequency-penalty</c>): subtracted from a token's logit once per
    /// occurrence in the window; 0 disables. Finite.
    /// </summary>
    public float FrequencyPenalty { get; init; }

    /// <summary>
    /// llama.cpp <c>penalty_present</c> (<c>--presence-penalty</c>): subtracted once from the logit of every token
    /// that occurs in the window; 0 disables. Finite.
    /// </summary>
    public float PresencePenalty { get; init; }

    /// <summary>
    /// llama.cpp <c>logit_bias</c> (<c>--logit-bias</c>): token id → value added to its logit before anything else;
    /// <see cref="float.NegativeInfinity"/> bans the token. Values finite or -∞; ids in the vocabulary
    /// (checked by <see cref="SamplerChain"/>, which knows its size). Stored as an immutable copy.
    /// </summary>
    public IReadOnlyDictionary<int, float> LogitBias
    {
        get => _logitBias;
        init
        {
            ArgumentNullException.ThrowIfNull(value);
            _logitBias = value as FrozenDictionary<int, float> ?? value.ToFrozenDictionary();
        }
    }

    /// <summary>llama.cpp <c>seed</c> (<c>--seed</c>): seed of the random draws; null picks one at random (see <see cref="SamplerChain.Seed"/>).</summary>
    public ulong? Seed { get; init; }

    /// <summary>Whether the penalties stage changes anything (llama.cpp skips it otherwise).</summary>
    internal bool PenaltiesEnabled =>
        RepeatLastN != 0 && (RepeatPenalty != 1f || FrequencyPenalty != 0f || PresencePenalty != 0f);

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
        if (!(TypicalP > 0 && TypicalP <= 1))
            throw new ArgumentOutOfRangeException(nameof(TypicalP), TypicalP, "TypicalP must be in (0, 1] (1 disables it).");
        if (!(RepeatPenalty > 0) || float.IsInfinity(RepeatPenalty))
            throw new ArgumentOutOfRangeException(nameof(RepeatPenalty), RepeatPenalty, "RepeatPenalty must be a finite number > 0 (1 disables it).");
        if (RepeatLastN < -1)
            throw new ArgumentOutOfRangeException(nameof(RepeatLastN), RepeatLastN, "RepeatLastN must be ≥ -1 (-1 is the whole history, 0 disables the penalties).");
        if (!float.IsFinite(FrequencyPenalty))
            throw new ArgumentOutOfRangeException(nameof(FrequencyPenalty), FrequencyPenalty, "FrequencyPenalty must be finite, in (-∞, ∞) (0 disables it).");
        if (!float.IsFinite(PresencePenalty))
            throw new ArgumentOutOfRangeException(nameof(PresencePenalty), PresencePenalty, "PresencePenalty must be finite, in (-∞, ∞) (0 disables it).");
        foreach (var (id, bias) in _logitBias)
        {
            if (id < 0)
                throw new ArgumentOutOfRangeException(nameof(LogitBias), id, "LogitBias token ids must be ≥ 0.");
            if (float.IsNaN(bias) || float.IsPositiveInfinity(bias))
                throw new ArgumentOutOfRangeException(nameof(LogitBias), bias, $"LogitBias of token {id} must be finite or -∞ (a ban), in [-∞, ∞).");
        }
    }

    /// <summary>
    /// Checks <see cref="LogitBias"/> ids against the vocabulary: each must be in [0, <paramref name="vocabSize"/>).
    /// </summary>
    internal void ValidateLogitBias(int vocabSize)
    {
        foreach (int id in _logitBias.Keys)
        {
            if ((uint)id >= (uint)vocabSize)
                throw new ArgumentOutOfRangeException(nameof(LogitBias), id, $"LogitBias token id {id} is outside the vocabulary [0, {vocabSize}).");
        }
    }
}

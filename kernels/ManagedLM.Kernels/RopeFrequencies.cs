namespace ManagedLM.Kernels;

/// <summary>
/// How a model stretches RoPE past its training context, as llama.cpp's rope parameters: linear interpolation
/// (<see cref="FrequencyScale"/> = 1 / factor), YaRN (<see cref="ExtrapolationFactor"/> 1: the high-frequency pairs
/// keep their angles, the low ones are interpolated, a ramp between them over the pairs that turn between
/// <see cref="BetaFast"/> and <see cref="BetaSlow"/> times in the original context), and a magnitude on cos and sin
/// (<see cref="AttentionFactor"/>; YaRN multiplies it by 1 + 0.1·ln(1 / FrequencyScale)). The default is plain RoPE.
/// </summary>
public readonly record struct RopeScaling(float FrequencyScale = 1, float ExtrapolationFactor = 0, float AttentionFactor = 1,
    float BetaFast = 32, float BetaSlow = 1, int OriginalContext = 0)
{
    /// <summary>No scaling.</summary>
    public static RopeScaling None => new(1, 0, 1, 32, 1, 0);
}

/// <summary>
/// The per-pair constants of a rotary embedding: pair i of position p turns by θᵢ = p · PositionScaleᵢ · Inverseᵢ, and
/// cos θᵢ, sin θᵢ are multiplied by <see cref="Magnitude"/>. Built once per model (and per rope variant of its layers).
/// </summary>
public sealed class RopeFrequencies
{
    // [n/2] each: base^(−2i/n) / factorᵢ, and s·(1 − mixᵢ) + mixᵢ.
    internal readonly float[] InverseValues;
    internal readonly double[] PositionScaleValues;

    /// <summary>base^(−2i/n) / factorᵢ for the n/2 pairs (factors: Llama-3's <c>rope_freqs</c>, Phi-3's long or short factors).</summary>
    public ReadOnlySpan<float> Inverse => InverseValues;
    /// <summary>Per pair: s·(1 − mixᵢ) + mixᵢ for the linear scale s and YaRN's ramp mix (s alone without YaRN).</summary>
    public ReadOnlySpan<double> PositionScale => PositionScaleValues;
    /// <summary>The factor on cos and sin (1 unless YaRN or longrope).</summary>
    public float Magnitude { get; }

    private RopeFrequencies(float[] inverse, double[] positionScale, float magnitude) =>
        (InverseValues, PositionScaleValues, Magnitude) = (inverse, positionScale, magnitude);

    /// <summary>The constants of <paramref name="rotDims"/> rotated dimensions (n/2 pairs) at base <paramref name="freqBase"/>.</summary>
    public static RopeFrequencies Create(int rotDims, float freqBase, ReadOnlySpan<float> factors, RopeScaling scaling)
    {
        var inverse = Rope.InverseFrequencies(rotDims, freqBase, factors);
        var scale = new double[inverse.Length];
        float magnitude = scaling.AttentionFactor;
        var (low, high) = CorrectionRange(rotDims, scaling.OriginalContext, freqBase, scaling.BetaFast, scaling.BetaSlow);
        for (int i = 0; i < scale.Length; i++)
        {
            double mix = scaling.ExtrapolationFactor == 0 ? 0 : Ramp(low, high, i) * scaling.ExtrapolationFactor;
            scale[i] = mix == 0 ? scaling.FrequencyScale : scaling.FrequencyScale * (1 - mix) + mix;
        }
        if (scaling.ExtrapolationFactor != 0)
            magnitude *= 1.0f + 0.1f * MathF.Log(1.0f / scaling.FrequencyScale);
        return new RopeFrequencies(inverse, scale, magnitude);
    }

    // ggml_rope_yarn_corr_dims: the pairs that turn beta_fast and beta_slow times over the original context, floor/ceil'd.
    private static (float Low, float High) CorrectionRange(int rotDims, int originalContext, float freqBase, float betaFast, float betaSlow)
    {
        if (originalContext <= 0)
            return (0, 0);
        float Dim(float rotations) => rotDims * MathF.Log(originalContext / (rotations * 2 * MathF.PI)) / (2 * MathF.Log(freqBase));
        return (MathF.Max(0, MathF.Floor(Dim(betaFast))), MathF.Min(rotDims - 1, MathF.Ceiling(Dim(betaSlow))));
    }

    // rope_yarn_ramp: 1 for the pairs below the range (extrapolated), 0 above it (interpolated).
    private static float Ramp(float low, float high, int pair)
    {
        float y = (pair - low) / MathF.Max(0.001f, high - low);
        return 1 - MathF.Min(1, MathF.Max(0, y));
    }
}

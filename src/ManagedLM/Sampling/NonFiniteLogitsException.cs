
namespace ManagedLM.Sampling;

/// <summary>
/// The logits a token is to be drawn from are not usable: one is NaN or +∞, or none is finite. A model does this when
/// its weights hold NaN/∞ or overflow (a corrupt or badly converted file); no sampler can choose a token from them.
/// Greedy and sampled decoding, and the log-probabilities, all throw it, before choosing anything. The generator stays
/// usable: a new prompt (or <see cref="Generation.Generator.Reset"/>) runs normally; in a
/// <see cref="Batching.BatchEngine"/> only the request whose logits they are fails.
/// </summary>
public sealed class NonFiniteLogitsException : ArithmeticException
{
    /// <summary>An exception naming the offending logit.</summary>
    public NonFiniteLogitsException(string message) : base(message)
    {
    }

    /// <summary>
    /// The largest of <paramref name="logits"/> (one or more); throws when they hold a NaN or +∞, or no finite value
    /// (−∞ alone is a token of probability 0). One vectorized pass (the maximum propagates NaN); allocates nothing.
    /// </summary>
    /// <exception cref="NonFiniteLogitsException">The logits cannot be sampled from.</exception>
    internal static float MaxOrThrow(ReadOnlySpan<float> logits)
    {
        float max = Kernels.Maximum.Of(logits);
        return float.IsFinite(max) ? max : throw Describe(logits, max);
    }

    private static NonFiniteLogitsException Describe(ReadOnlySpan<float> logits, float max)
    {
        const string cause = "no token can be chosen; the weights hold NaN or ∞, or the forward pass overflowed";
        if (float.IsNegativeInfinity(max))
            return new($"The model produced non-finite logits (all {logits.Length} are -∞): {cause}.");
        bool nan = float.IsNaN(max);
        int at = nan ? IndexOfNaN(logits) : logits.IndexOf(float.PositiveInfinity);
        return new($"The model produced non-finite logits (logit {at} of {logits.Length} is {(nan ? "NaN" : "+∞")}): {cause}.");
    }

    private static int IndexOfNaN(ReadOnlySpan<float> logits)
    {
        for (int i = 0; i < logits.Length; i++)
        {
            if (float.IsNaN(logits[i]))
                return i;
        }
        return -1;
    }
}

using System.Globalization;
using ManagedLM.Gguf;
using ManagedLM.Kernels;

namespace ManagedLM.Model;

/// <summary>
/// The RoPE constants of a model's layers, built once at load: the global layers' (with the file's scaling and factors;
/// Phi-3's longrope has a second set, its short factors, for contexts within the original one) and, where the family
/// rotates sliding layers on their own base (Gemma 3), the local layers'.
/// </summary>
internal sealed class ModelRope
{
    private readonly ModelConfig _c;
    private readonly RopeFrequencies _global;
    private readonly RopeFrequencies? _globalShort, _local;

    /// <summary>How many sets of angles a position needs: 1, or 2 with local layers (<see cref="ModelConfig.RopeVariants"/>).</summary>
    public int Variants => _c.RopeVariants;

    public ModelRope(ModelConfig c, ModelWeights w, GgufMetadata metadata)
    {
        _c = c;
        bool longrope = !w.RopeLongFactors.IsEmpty;
        _global = Build(c.RopeFreqBase, longrope ? w.RopeLongFactors.Span : w.RopeFrequencyFactors.Span, c.RopeScaling, "rope.freq_base",
            longrope ? "rope_factors_long.weight" : "rope_freqs.weight");
        if (!w.RopeShortFactors.IsEmpty)
            _globalShort = Build(c.RopeFreqBase, w.RopeShortFactors.Span, c.RopeScaling, "rope.freq_base", "rope_factors_short.weight");
        if (c.LocalRopeFreqBase is { } local)
            _local = Build(local, [], RopeScaling.None, "rope.freq_base_swa", "");

        RopeFrequencies Build(float freqBase, ReadOnlySpan<float> f, RopeScaling scaling, string key, string factors)
        {
            var r = RopeFrequencies.Create(c.RopeDimensions, freqBase, f, scaling);
            foreach (float x in r.Inverse)
            {
                if (!float.IsFinite(x))
                    throw new GgufFormatException(metadata.FindEntry($"{c.Architecture}.{key}")?.Offset ?? 0,
                        $"the RoPE frequencies overflow a float (\"{c.Architecture}.{key}\" = {freqBase.ToString(CultureInfo.InvariantCulture)}" +
                        (f.IsEmpty ? ")" : $", divided by {factors})"));
            }
            return r;
        }
    }

    /// <summary>The variant layer <paramref name="layer"/> rotates with (0 global, 1 local).</summary>
    public int VariantOf(int layer) => _local is not null && _c.IsSlidingLayer(layer) ? 1 : 0;

    /// <summary>The constants of <paramref name="variant"/> for a sequence of context length <paramref name="context"/>.</summary>
    public RopeFrequencies For(int variant, int context) =>
        variant == 1 ? _local! : _globalShort is not null && context <= _c.RopeOriginalContext ? _globalShort : _global;
}

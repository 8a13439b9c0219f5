using ManagedLM.Model;

namespace ManagedLM.Generation;

/// <summary>Creates the per-request state of a shared <see cref="TransformerModel"/>.</summary>
public static class ModelGenerators
{
    /// <summary>Creates an independent generator (its own KV cache, scratch, sampler and RNG).</summary>
    public static Generator CreateGenerator(this TransformerModel model, GeneratorOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return new Generator(model, options ?? GeneratorOptions.Default);
    }
}

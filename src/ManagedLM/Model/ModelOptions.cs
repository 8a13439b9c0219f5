namespace ManagedLM.Model;

/// <summary>Options for <see cref="TransformerModel.Load(string, ModelOptions?)"/>.</summary>
public sealed record ModelOptions
{
    /// <summary>Default options.</summary>
    public static ModelOptions Default => new();

    /// <summary>
    /// Largest context a generator of this model may use; null: the model's training context.
    /// Each generator picks its own length up to this (see GeneratorOptions.ContextLength).
    /// </summary>
    public int? MaxContextLength { get; init; }

    /// <summary>
    /// When set, loading reads every page of the weights into memory (so the first request does not wait on the disk)
    /// and reports the fraction read, 0 to 1.
    /// </summary>
    public IProgress<double>? Progress { get; init; }
}

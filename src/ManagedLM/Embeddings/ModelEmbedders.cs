using ManagedLM.Model;

namespace ManagedLM.Embeddings;

/// <summary>Creates embedding state on a shared <see cref="TransformerModel"/>.</summary>
public static class ModelEmbedders
{
    /// <summary>
    /// Creates an independent embedder (its own scratch, and a decoder's caches): an encoder (BERT) embeds with its
    /// encoder pass, a decoder (llama, qwen2, qwen3, ...) with its causal pass without the output projection.
    /// </summary>
    /// <exception cref="ArgumentException">Invalid options, or Rank pooling on a model without a classifier head.</exception>
    /// <exception cref="NotSupportedException">A decoder family whose file asks for non-causal attention.</exception>
    public static Embedder CreateEmbedder(this TransformerModel model, EmbedderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return new Embedder(model, options ?? EmbedderOptions.Default);
    }
}

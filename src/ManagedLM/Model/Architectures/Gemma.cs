namespace ManagedLM.Model;

internal static partial class Architectures
{
    /// <summary>
    /// Gemma 2: embeddings × √n_embd, GeGLU, post-attention and post-FFN norms, soft-capped attention and logits
    /// (from the file), a sliding window on every other layer. The 27B (46 blocks) scales queries by 1/√(n_embd/n_head).
    /// </summary>
    public static readonly ModelArchitecture Gemma2 = new()
    {
        Name = "gemma2", Gate = FeedForwardGate.GeluTanh, RequiresPostNorms = true, ScaleEmbeddingsByWidth = true, ScalesQueries = true,
        SlidingWindowPattern = 2,
        AttentionScale = (blocks, embd, heads, headDim) => 1f / MathF.Sqrt(blocks == 46 ? embd / heads : headDim),
    };

    /// <summary>
    /// Gemma 3 (text): Gemma 2 without soft-caps, with per-head q/k norms, five sliding layers in six, and local layers
    /// on their own RoPE base without scaling. The 27B (62 blocks) scales queries by 1/√(n_embd/n_head).
    /// </summary>
    public static readonly ModelArchitecture Gemma3 = new()
    {
        Name = "gemma3", Gate = FeedForwardGate.GeluTanh, RequiresPostNorms = true, RequiresQueryKeyNorms = true,
        ScaleEmbeddingsByWidth = true, SlidingWindowPattern = 6, LocalRopeOnSlidingLayers = true, ScalesQueries = true,
        AttentionScale = (blocks, embd, heads, headDim) => 1f / MathF.Sqrt(blocks == 62 ? embd / heads : headDim),
    };
}

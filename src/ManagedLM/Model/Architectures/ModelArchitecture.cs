using System.Collections.Frozen;
using ManagedLM.Kernels;

namespace ManagedLM.Model;

/// <summary>The gate activation of a feed-forward block: dst = act(gate) · up.</summary>
public enum FeedForwardGate
{
    /// <summary>SiLU (SwiGLU): Llama, Qwen, Phi, Granite.</summary>
    Silu,
    /// <summary>GELU, tanh approximation (GeGLU): Gemma; ungated: BERT.</summary>
    GeluTanh,
}

/// <summary>
/// What one model family is, as data that the one forward pass composes: its RoPE pairing, feed-forward gate, which
/// optional tensors it must have, how it scales embeddings and attention, and its sliding-window layer pattern. The
/// numbers that vary per file (windows, soft-caps, multipliers, experts) come from the file's metadata for every
/// family (see <see cref="ModelConfig"/>); tensors that are present are used (biases, q/k norms, post-norms, fused
/// projections, experts). Adding a family is one file with one of these and a row in <see cref="All"/>.
/// </summary>
public sealed record ModelArchitecture
{
    /// <summary><c>general.architecture</c>.</summary>
    public required string Name { get; init; }
    public RopeLayout RopeLayout { get; init; } = RopeLayout.NeoX;
    public FeedForwardGate Gate { get; init; } = FeedForwardGate.Silu;
    /// <summary>q/k/v biases must be present (Qwen2).</summary>
    public bool RequiresAttentionBiases { get; init; }
    /// <summary>Per-head q/k RMSNorms must be present (Qwen3, Gemma 3).</summary>
    public bool RequiresQueryKeyNorms { get; init; }
    /// <summary>RMSNorms after attention and after the feed-forward, before the residual, must be present (Gemma 2/3).</summary>
    public bool RequiresPostNorms { get; init; }
    /// <summary>Every block routes through experts (<c>ffn_gate_inp</c>, <c>ffn_*_exps</c>).</summary>
    public bool RequiresExperts { get; init; }
    /// <summary>The selected experts' router probabilities are renormalized to sum to 1.</summary>
    public bool NormalizeExpertWeights { get; init; } = true;
    /// <summary>Token embeddings are multiplied by √n_embd (Gemma) unless the file gives <c>embedding_scale</c>.</summary>
    public bool ScaleEmbeddingsByWidth { get; init; }
    /// <summary>
    /// The sliding-window layer pattern when the file gives none: layer l slides iff l mod n &lt; n − 1; 0: the family
    /// has no sliding layers (a window in the file is ignored, as llama.cpp ignores it).
    /// </summary>
    public int SlidingWindowPattern { get; init; }
    /// <summary>Sliding layers rotate with <c>rope.freq_base_swa</c> and no scaling (Gemma 3).</summary>
    public bool LocalRopeOnSlidingLayers { get; init; }
    /// <summary>
    /// Queries are multiplied by the attention scale after RoPE, and the scores are not scaled again (Gemma, Phi-3): the
    /// same product as scaling the scores, rounded differently where the cache rounds queries to F16.
    /// </summary>
    public bool ScalesQueries { get; init; }
    /// <summary>The attention scale (before any <c>attention.scale</c> in the file) from (blocks, n_embd, heads, head_dim).</summary>
    public Func<int, int, int, int, float> AttentionScale { get; init; } = (_, _, _, headDim) => 1f / MathF.Sqrt(headDim);

    /// <summary>
    /// A BERT-style encoder (Inference/Encoder): absolute position embeddings (<c>position_embd</c>) and token type 0
    /// (<c>token_types</c>) added to the token embeddings, then LayerNorm (<c>token_embd_norm</c>); each block's attention
    /// over the whole sequence (unless the file's <c>attention.causal</c> is true), then LayerNorm of the residual
    /// (<c>attn_output_norm</c>), the feed-forward, LayerNorm of the residual (<c>layer_output_norm</c>); norms with
    /// biases and <c>attention.layer_norm_epsilon</c>, biased projections, no RoPE, no KV cache and no output projection.
    /// It embeds whole sequences and does not generate.
    /// </summary>
    public bool Encoder { get; init; }
    /// <summary>The feed-forward is gated, down(act(gate·x) ⊙ up·x); false: down(gelu(up·x)) (BERT's; encoders only).</summary>
    public bool GatedFeedForward { get; init; } = true;
    /// <summary>How embeddings pool a sequence when the file has no <c>pooling_type</c>: the last token for decoders.</summary>
    public PoolingType DefaultPooling { get; init; } = PoolingType.Last;

    /// <summary>The families this engine runs, by name.</summary>
    public static FrozenDictionary<string, ModelArchitecture> All { get; } = new[]
    {
        Architectures.Llama, Architectures.Qwen2, Architectures.Qwen3, Architectures.Qwen2Moe, Architectures.Qwen3Moe,
        Architectures.Gemma2, Architectures.Gemma3, Architectures.Phi3, Architectures.Granite, Architectures.Bert,
    }.ToFrozenDictionary(a => a.Name, StringComparer.Ordinal);
}

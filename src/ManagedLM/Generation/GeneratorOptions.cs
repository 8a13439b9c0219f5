using ManagedLM.Inference;
using ManagedLM.Sampling;

namespace ManagedLM.Generation;

/// <summary>Options of one <see cref="Generator"/>: its context length and sampling.</summary>
public sealed record GeneratorOptions
{
    /// <summary>Context length used when none is given and the model allows more.</summary>
    public const int DefaultContextLength = 4096;

    public static GeneratorOptions Default { get; } = new();

    /// <summary>The context length a generator of <paramref name="model"/> gets when <paramref name="requested"/> (null: the default).</summary>
    internal static int ContextLengthFor(Model.TransformerModel model, int? requested) => requested ?? Math.Min(model.MaxContextLength, DefaultContextLength);

    /// <summary>Most positions (prompt + generated) this generator holds; null: min(model's, 4096).</summary>
    public int? ContextLength { get; init; }

    /// <summary>
    /// Threads that split each matmul of this generator (the calling thread included). The default, 1, suits many
    /// concurrent generators (one core each: two TinyLlama-shape Q4_K_M generators on a 2-core machine decode 61.6
    /// tokens/s together); a lone generator decodes faster with one per core (34 tokens/s with 1 thread, 58 with 2).
    /// </summary>
    public int Threads { get; init; } = 1;

    /// <summary>
    /// Prompt tokens evaluated per forward pass (llama.cpp's n_ubatch): a chunk reads the weights once for all its
    /// tokens, so larger chunks prefill faster, at the cost of scratch memory (about chunk × (4·n_embd + 2·n_ff) floats).
    /// Cancellation is observed between chunks.
    /// </summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>
    /// Storage of the KV cache: F16 (default, as llama.cpp), F32, or ggml's Q8_0 or Q4_0 blocks (34/64 or 18/64 of F16's
    /// memory, as llama.cpp's <c>-ctk/-ctv q8_0</c>; they need n_kv_head · head_dim to be a multiple of 32).
    /// </summary>
    public KvCacheType KvCacheType { get; init; } = KvCacheType.F16;

    /// <summary>Sampling chain and seed.</summary>
    public SamplingOptions Sampling { get; init; } = SamplingOptions.Default;
}

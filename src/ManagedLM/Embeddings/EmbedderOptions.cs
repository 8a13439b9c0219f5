using ManagedLM.Model;

namespace ManagedLM.Embeddings;

/// <summary>Options of one <see cref="Embedder"/>.</summary>
public sealed record EmbedderOptions
{
    /// <summary>Token budget of one pass when none is given.</summary>
    public const int DefaultBatchTokens = 2048;

    public static EmbedderOptions Default { get; } = new();

    /// <summary>How a sequence's hidden states become its embedding; null: the model's (<c>pooling_type</c>, else mean for an encoder and last for a decoder).</summary>
    public PoolingType? Pooling { get; init; }

    /// <summary>Whether embeddings (and per-token vectors) are divided by their L2 norm, as llama.cpp's embedding example and server do. Rank scores never are.</summary>
    public bool Normalize { get; init; } = true;

    /// <summary>
    /// Most tokens evaluated in one pass over the weights (llama.cpp's n_ubatch): texts are packed into passes of up to this
    /// many tokens. It also bounds a text's length (with the model's context), and the scratch memory (about
    /// tokens × (4·n_embd + 2·n_ff) floats).
    /// </summary>
    public int BatchTokens { get; init; } = DefaultBatchTokens;

    /// <summary>Threads that split each matmul and the attention (the calling thread included); 1 suits many concurrent embedders.</summary>
    public int Threads { get; init; } = 1;
}

using ManagedLM.Generation;
using ManagedLM.Inference;
using ManagedLM.Sampling;

namespace ManagedLM.Batching;

/// <summary>Limits and defaults of a <see cref="BatchEngine"/>.</summary>
public sealed record BatchEngineOptions
{
    public static BatchEngineOptions Default { get; } = new();

    /// <summary>Sequences in the batch at once (prefilling or decoding); more requests wait in the queue.</summary>
    public int MaxActiveSequences { get; init; } = 16;

    /// <summary>Requests that may wait for a place; beyond that <see cref="BatchEngine.SubmitAsync(string, GenerationOptions?, CancellationToken)"/> waits and <see cref="BatchEngine.TrySubmit(string, GenerationOptions?, out BatchRequest?, CancellationToken)"/> refuses.</summary>
    public int MaxQueuedRequests { get; init; } = 256;

    /// <summary>
    /// Prompt tokens evaluated per step, over all prefilling sequences: long prompts are fed in chunks of this size, so
    /// the sequences already decoding get a token every step.
    /// </summary>
    public int PrefillChunk { get; init; } = 64;

    /// <summary>Threads of the decoding step (its matmuls and attention); null: one per core.</summary>
    public int? Threads { get; init; }

    /// <summary>Context length of each sequence; null: min(model's, 4096).</summary>
    public int? ContextLength { get; init; }

    /// <summary>KV cache storage of each sequence (see <see cref="GeneratorOptions.KvCacheType"/>): Q8_0 holds about twice the sequences of F16 in the same memory.</summary>
    public KvCacheType KvCacheType { get; init; } = KvCacheType.F16;

    /// <summary>Sampling of requests whose options give none.</summary>
    public SamplingOptions Sampling { get; init; } = SamplingOptions.Default;

    /// <summary>
    /// Whether a new request copies the keys and values of the longest prompt prefix another sequence (running or
    /// finished and kept) already computed — a shared system prompt is evaluated once — instead of recomputing them.
    /// </summary>
    public bool SharePrefixes { get; init; } = true;

    /// <summary>Shortest shared prefix worth copying (tokens).</summary>
    public int MinSharedPrefix { get; init; } = 8;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> for values out of range.</summary>
    public void Validate()
    {
        if (MaxActiveSequences < 1)
            throw new ArgumentOutOfRangeException(nameof(MaxActiveSequences), MaxActiveSequences, "MaxActiveSequences must be at least 1.");
        if (MaxQueuedRequests < 1)
            throw new ArgumentOutOfRangeException(nameof(MaxQueuedRequests), MaxQueuedRequests, "MaxQueuedRequests must be at least 1.");
        if (PrefillChunk < 1)
            throw new ArgumentOutOfRangeException(nameof(PrefillChunk), PrefillChunk, "PrefillChunk must be at least 1.");
        if (Threads is < 1)
            throw new ArgumentOutOfRangeException(nameof(Threads), Threads, "Threads must be at least 1.");
        if (ContextLength is < 1)
            throw new ArgumentOutOfRangeException(nameof(ContextLength), ContextLength, "ContextLength must be at least 1.");
        if (MinSharedPrefix < 1)
            throw new ArgumentOutOfRangeException(nameof(MinSharedPrefix), MinSharedPrefix, "MinSharedPrefix must be at least 1.");
        Sampling.Validate();
    }
}

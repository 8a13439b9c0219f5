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

    /// <summary>
    /// When true (the default), the first generator or batch engine made from the model evaluates a short prompt and one
    /// decode step on a throwaway cache first, as llama.cpp warms up after loading, so that the kernels for this model's
    /// tensor types are compiled before the first request's tokens rather than during them. Costs one forward pass of up to
    /// 9 tokens, once per model; generators made at the same time wait for it.
    /// </summary>
    public bool WarmUp { get; init; } = true;

    /// <summary>
    /// When true (the default), loading copies the weight matrices whose type has a faster repacked layout on this CPU
    /// (Q4_0, Q5_0, Q8_0, IQ4_NL and Q4_K, with AVX-VNNI) into groups of rows side by side; the products then read the copy. Logits are the
    /// same either way; the copy costs memory the size of those matrices (<see cref="ModelWeights.RepackedBytes"/>), and for a
    /// model loaded from a file the pages of their originals are given back (on Linux and Windows), so a repacked model
    /// stays about as resident as one read from the file.
    /// </summary>
    public bool RepackWeights { get; init; } = true;

    /// <summary>
    /// When true (the default) and the OS backs memory with large pages on request (Linux x86-64 with transparent huge
    /// pages in <c>always</c> or <c>madvise</c> mode), loading a model from a file copies the weight matrices it does not
    /// repack into memory advised for 2 MiB pages and gives back the file's pages: a pass over the weights then misses the
    /// TLB once per 2 MiB instead of once per 4 kB (<see cref="ModelWeights.LargePageBytes"/>). Logits are the same either
    /// way, and the process stays about as resident; loading takes one copy of the weights longer. A model whose weights
    /// exceed three quarters of the memory available to the process stays on its file mapping (whose pages the OS can drop
    /// and read again). The repacked copies (<see cref="RepackWeights"/>) are in such memory either way.
    /// </summary>
    public bool LargePages { get; init; } = true;
}

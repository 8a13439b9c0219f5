namespace ManagedLM.Sampling;

/// <summary>
/// Log-probabilities of the model's raw distribution: log-softmax of the unmodified logits at temperature 1
/// (OpenAI-style <c>logprobs</c>), whatever the sampling options. Accumulates in double; allocates nothing.
/// </summary>
public static class LogProbabilities
{
    /// <summary>ln p(<paramref name="id"/>) = logit[id] − ln Σ exp(logit).</summary>
    /// <exception cref="NonFiniteLogitsException">A logit is NaN or +∞, or none is finite.</exception>
    public static float Of(ReadOnlySpan<float> logits, int id)
    {
        if ((uint)id >= (uint)logits.Length)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"Token id must be in [0, {logits.Length}).");
        return (float)(logits[id] - LogSumExp(logits));
    }

    /// <summary>
    /// The n = min(<paramref name="ids"/>.Length, vocabulary size) most likely tokens, best first (ties to the lower id):
    /// their ids in <paramref name="ids"/>[..n] and log-probabilities in <paramref name="logprobs"/>[..n]. Returns n.
    /// </summary>
    /// <exception cref="NonFiniteLogitsException">A logit is NaN or +∞, or none is finite.</exception>
    public static int Top(ReadOnlySpan<float> logits, Span<int> ids, Span<float> logprobs)
    {
        if (logprobs.Length < ids.Length)
            throw new ArgumentException($"logprobs holds {logprobs.Length} values, fewer than the {ids.Length} ids asked for.", nameof(logprobs));
        int n = Math.Min(ids.Length, logits.Length);
        if (n == 0)
            return 0;
        double logZ = LogSumExp(logits);
        var heap = ids[..n];
        for (int i = 0; i < n; i++)
            heap[i] = i;
        var order = new IdsByLogit(logits);
        Ranking.Heapify(heap, order);
        for (int id = n; id < logits.Length; id++)
            Ranking.Offer(heap, id, order);
        Ranking.SortHeap(heap, order);

        for (int i = 0; i < n; i++)
            logprobs[i] = (float)(logits[heap[i]] - logZ);
        return n;
    }

    // ln Σ exp(logit), shifted by the max so that no term overflows.
    private static double LogSumExp(ReadOnlySpan<float> logits)
    {
        float max = NonFiniteLogitsException.MaxOrThrow(logits);
        double total = 0;
        foreach (float l in logits)
            total += Math.Exp((double)l - max);
        return max + Math.Log(total);
    }

    // Token ids ranked by their logit, higher first; ties to the lower id.
    private readonly ref struct IdsByLogit(ReadOnlySpan<float> logits) : IRankOrder<int>
    {
        private readonly ReadOnlySpan<float> _logits = logits;

        public bool Ahead(in int a, in int b) => _logits[a] > _logits[b] || (_logits[a] == _logits[b] && a < b);
    }
}

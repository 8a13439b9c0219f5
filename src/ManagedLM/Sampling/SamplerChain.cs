namespace ManagedLM.Sampling;

/// <summary>
/// One generator's sampler: the <see cref="SamplingOptions"/> chain and its own seeded RNG.
/// Works in a candidate buffer sized once for the vocabulary; sampling allocates nothing.
/// </summary>
public sealed class SamplerChain
{
    private readonly SamplingOptions _options;
    private readonly TokenCandidate[] _candidates;
    private Xoshiro256 _rng;

    /// <summary>The seed in use (the given one, or the one picked at random).</summary>
    public ulong Seed { get; }
    public SamplingOptions Options => _options;

    public SamplerChain(SamplingOptions options, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _candidates = new TokenCandidate[vocabSize];
        Seed = options.Seed ?? (ulong)Random.Shared.NextInt64();
        _rng = new Xoshiro256(Seed);
    }

    /// <summary>Restarts the random sequence from <see cref="Seed"/>.</summary>
    public void Reset() => _rng = new Xoshiro256(Seed);

    /// <summary>Chooses the next token id from <paramref name="logits"/> (one per vocabulary entry).</summary>
    public int Sample(ReadOnlySpan<float> logits)
    {
        if (logits.Length != _candidates.Length)
            throw new ArgumentException($"Expected {_candidates.Length} logits, got {logits.Length}.", nameof(logits));
        if (_options.Temperature == 0)
            return ArgMax(logits);

        var c = _candidates.AsSpan();
        for (int i = 0; i < c.Length; i++)
            c[i] = new TokenCandidate(i, logits[i]);

        int n = c.Length;
        n = TopK(c, _options.TopK);               // c[..n] sorted, most likely first, when top-k ran
        bool sorted = _options.TopK > 0 && _options.TopK < c.Length;
        if (_options.TopP < 1)
        {
            if (!sorted)
            {
                SortBestFirst(c[..n]);
                sorted = true;
            }
            n = TopP(c[..n], _options.TopP);
        }
        if (_options.MinP > 0)
            n = MinP(c[..n], _options.MinP);

        var kept = c[..n];
        float invTemp = 1.0f / _options.Temperature;
        for (int i = 0; i < kept.Length; i++)
            kept[i].Logit *= invTemp;
        return Draw(kept, _rng.NextDouble());
    }

    /// <summary>Index of the largest logit; ties go to the lower id.</summary>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++)
        {
            if (logits[i] > logits[best])
                best = i;
        }
        return best;
    }

    // Keeps the k most likely candidates at the front, sorted; returns the count kept.
    private static int TopK(Span<TokenCandidate> c, int k)
    {
        if (k <= 0 || k >= c.Length)
            return c.Length;
        // Heap of the k best seen so far in c[..k]; the root is the worst of them.
        Heapify(c[..k]);
        for (int i = k; i < c.Length; i++)
        {
            if (Better(c[i], c[0]))
            {
                c[0] = c[i];
                SiftDown(c, 0, k);
            }
        }
        SortHeap(c[..k]);
        return k;
    }

    // Heap sort, most likely first (Span.Sort with a comparer allocates a delegate per call).
    private static void SortBestFirst(Span<TokenCandidate> c)
    {
        Heapify(c);
        SortHeap(c);
    }

    private static void Heapify(Span<TokenCandidate> c)
    {
        for (int i = c.Length / 2 - 1; i >= 0; i--)
            SiftDown(c, i, c.Length);
    }

    // c is a heap with the worst at the root: moving the root to the end repeatedly sorts best first.
    private static void SortHeap(Span<TokenCandidate> c)
    {
        for (int end = c.Length - 1; end > 0; end--)
        {
            (c[0], c[end]) = (c[end], c[0]);
            SiftDown(c, 0, end);
        }
    }

    private static void SiftDown(Span<TokenCandidate> heap, int i, int n)
    {
        while (true)
        {
            int l = 2 * i + 1, r = l + 1, worst = i;
            if (l < n && Better(heap[worst], heap[l])) worst = l;
            if (r < n && Better(heap[worst], heap[r])) worst = r;
            if (worst == i)
                return;
            (heap[i], heap[worst]) = (heap[worst], heap[i]);
            i = worst;
        }
    }

    // c sorted most likely first: keeps the shortest prefix whose probability mass reaches p.
    private static int TopP(Span<TokenCandidate> c, float p)
    {
        float max = c[0].Logit;
        double total = 0;
        foreach (var t in c)
            total += Math.Exp(t.Logit - max);
        double cumulative = 0;
        for (int i = 0; i < c.Length; i++)
        {
            cumulative += Math.Exp(c[i].Logit - max) / total;
            if (cumulative >= p)
                return i + 1;
        }
        return c.Length;
    }

    // Keeps candidates with probability ≥ minP · max probability, i.e. logit ≥ max + ln(minP).
    private static int MinP(Span<TokenCandidate> c, float minP)
    {
        float max = float.NegativeInfinity;
        foreach (var t in c)
            max = Math.Max(max, t.Logit);
        float threshold = max + MathF.Log(minP);
        int n = 0;
        for (int i = 0; i < c.Length; i++)
        {
            if (c[i].Logit >= threshold)
                c[n++] = c[i];
        }
        return n;
    }

    // Softmax over the kept candidates, then the token where the cumulative probability passes u.
    private static int Draw(Span<TokenCandidate> c, double u)
    {
        float max = float.NegativeInfinity;
        foreach (var t in c)
            max = Math.Max(max, t.Logit);
        double total = 0;
        foreach (var t in c)
            total += Math.Exp(t.Logit - max);
        double target = u * total, cumulative = 0;
        for (int i = 0; i < c.Length; i++)
        {
            cumulative += Math.Exp(c[i].Logit - max);
            if (cumulative > target)
                return c[i].Id;
        }
        return c[^1].Id;
    }

    private struct TokenCandidate(int id, float logit)
    {
        public int Id = id;
        public float Logit = logit;
    }

    // Higher logit first; ties to the lower id.
    private static bool Better(TokenCandidate a, TokenCandidate b) => a.Logit > b.Logit || (a.Logit == b.Logit && a.Id < b.Id);
}

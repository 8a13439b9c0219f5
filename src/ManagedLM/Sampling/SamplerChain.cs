namespace ManagedLM.Sampling;

/// <summary>
/// One generator's sampler: the <see cref="SamplingOptions"/> chain in llama.cpp's order and its own seeded RNG.
/// Works in buffers sized once for the vocabulary; sampling allocates nothing. Not thread-safe (one per generator).
/// </summary>
public sealed class SamplerChain
{
    private readonly SamplingOptions _options;
    private readonly TokenCandidate[] _candidates;   // [vocab] working copy of the logits
    private readonly int[] _biasIds;                 // [bias entries] ascending
    private readonly float[] _biasValues;            // [bias entries] the bias of _biasIds[i]
    private readonly int[] _counts;                  // [vocab] when penalties are on, else []: occurrences in the window; all zero between calls
    private Xoshiro256 _rng;

    /// <summary>The seed in use (the given one, or the one picked at random).</summary>
    public ulong Seed { get; }

    /// <summary>Number of logits each draw takes (the model's vocabulary).</summary>
    public int VocabSize => _candidates.Length;

    /// <summary>The validated options this chain applies.</summary>
    public SamplingOptions Options => _options;

    /// <summary>
    /// Validates <paramref name="options"/> (<see cref="ArgumentOutOfRangeException"/> naming the bound; logit-bias ids
    /// must lie in [0, <paramref name="vocabSize"/>)) and sizes the buffers for the vocabulary.
    /// </summary>
    public SamplerChain(SamplingOptions options, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(vocabSize);
        options.Validate();
        options.ValidateLogitBias(vocabSize);
        _options = options;
        _candidates = new TokenCandidate[vocabSize];
        _biasIds = [.. options.LogitBias.Keys];
        Array.Sort(_biasIds);
        _biasValues = new float[_biasIds.Length];
        for (int i = 0; i < _biasIds.Length; i++)
            _biasValues[i] = options.LogitBias[_biasIds[i]];
        _counts = options.PenaltiesEnabled ? new int[vocabSize] : [];
        Seed = options.Seed ?? (ulong)Random.Shared.NextInt64();
        _rng = new Xoshiro256(Seed);
    }

    /// <summary>
    /// The random state. Setting it (on this chain or a fresh one with the same options) continues the draws from there;
    /// the all-zero state throws <see cref="ArgumentException"/>.
    /// </summary>
    public SamplerState State
    {
        get
        {
            _rng.GetState(out ulong s0, out ulong s1, out ulong s2, out ulong s3);
            return new SamplerState(s0, s1, s2, s3);
        }
        set => _rng = new Xoshiro256(value.S0, value.S1, value.S2, value.S3);
    }

    /// <summary>Restarts the random sequence from <see cref="Seed"/>.</summary>
    public void Reset() => _rng = new Xoshiro256(Seed);

    /// <summary>Chooses the next token id from <paramref name="logits"/> (one per vocabulary entry) with no history: no penalties.</summary>
    public int Sample(ReadOnlySpan<float> logits) => Sample(logits, []);

    /// <summary>
    /// Chooses the next token id from <paramref name="logits"/> (one per vocabulary entry, left unmodified).
    /// <paramref name="history"/> is every token of the sequence so far (prompt and generated); the penalties look at its
    /// last <see cref="SamplingOptions.RepeatLastN"/>, whose ids must lie in the vocabulary. Non-greedy sampling takes one
    /// random draw per call. Throws <see cref="InvalidOperationException"/> when the logit bias leaves no token.
    /// </summary>
    /// <exception cref="NonFiniteLogitsException">A logit is NaN or +∞, or none is finite (greedy or not; nothing is drawn).</exception>
    public int Sample(ReadOnlySpan<float> logits, ReadOnlySpan<int> history)
    {
        if (logits.Length != _candidates.Length)
            throw new ArgumentException($"Expected {_candidates.Length} logits, got {logits.Length}.", nameof(logits));
        NonFiniteLogitsException.MaxOrThrow(logits);
        var window = PenaltyWindow(history);
        bool greedy = _options.Temperature == 0;
        if (greedy && _biasIds.Length == 0 && window.IsEmpty)
            return FirstMax(logits);

        var c = _candidates.AsSpan();
        for (int i = 0; i < c.Length; i++)
            c[i] = new TokenCandidate(i, logits[i]);
        ApplyLogitBias(c);
        ApplyPenalties(c, window);
        if (greedy)
            return GreedyPick(c);

        var kept = c[..DropBanned(c)];
        bool sorted = false;
        if (_options.TopK > 0 && _options.TopK < kept.Length)
        {
            Ranking.SelectFirst(kept, _options.TopK, default(ByLogit));
            kept = kept[.._options.TopK];
            sorted = true;
        }
        if (_options.TypicalP < 1)
        {
            kept = kept[..LocallyTypical(kept, _options.TypicalP)];
            sorted = false;
        }
        if (_options.TopP < 1)
        {
            kept = kept[..TopP(kept, _options.TopP, sorted)];
            sorted = true;
        }
        if (_options.MinP > 0)
            kept = kept[..MinP(kept, _options.MinP)];
        return Draw(kept, _options.Temperature, _rng.NextDouble());
    }

    /// <summary>Index of the largest logit; ties go to the lower id.</summary>
    /// <exception cref="NonFiniteLogitsException">A logit is NaN or +∞, or none is finite.</exception>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        if (logits.IsEmpty)
            throw new ArgumentException("There are no logits.", nameof(logits));
        NonFiniteLogitsException.MaxOrThrow(logits);
        return FirstMax(logits);
    }

    private static int FirstMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++)
        {
            if (logits[i] > logits[best])
                best = i;
        }
        return best;
    }

    // The last RepeatLastN tokens of history (all of it for -1), checked against the vocabulary; empty when penalties are off.
    private ReadOnlySpan<int> PenaltyWindow(ReadOnlySpan<int> history)
    {
        if (_counts.Length == 0)
            return [];
        int lastN = _options.RepeatLastN;
        var window = lastN < 0 || lastN >= history.Length ? history : history[^lastN..];
        foreach (int id in window)
        {
            if ((uint)id >= (uint)_counts.Length)
                throw new ArgumentOutOfRangeException(nameof(history), id, $"History token id {id} is outside the vocabulary [0, {_counts.Length}).");
        }
        return window;
    }

    // c in id order.
    private void ApplyLogitBias(Span<TokenCandidate> c)
    {
        for (int i = 0; i < _biasIds.Length; i++)
            c[_biasIds[i]].Logit += _biasValues[i];
    }

    // llama.cpp's penalties: for a token seen `count` times in the window, a positive logit is divided by the repeat
    // penalty and a non-positive one multiplied, then count·frequency + presence is subtracted. c in id order.
    private void ApplyPenalties(Span<TokenCandidate> c, ReadOnlySpan<int> window)
    {
        foreach (int id in window)
            _counts[id]++;
        float repeat = _options.RepeatPenalty, frequency = _options.FrequencyPenalty, presence = _options.PresencePenalty;
        foreach (int id in window)
        {
            int count = _counts[id];
            if (count == 0)
                continue;                        // already applied: each distinct id once, its count cleared for the next call
            _counts[id] = 0;
            ref float logit = ref c[id].Logit;
            logit = logit <= 0 ? logit * repeat : logit / repeat;
            logit -= count * frequency + presence;
        }
    }

    // Argmax over c in id order (ties to the lower id).
    private static int GreedyPick(ReadOnlySpan<TokenCandidate> c)
    {
        int best = 0;
        for (int i = 1; i < c.Length; i++)
        {
            if (c[i].Logit > c[best].Logit)
                best = i;
        }
        if (float.IsNegativeInfinity(c[best].Logit))
            throw NoTokenLeft();
        return c[best].Id;
    }

    // Removes the -inf candidates (banned, probability 0), keeping the order; returns the count left.
    private static int DropBanned(Span<TokenCandidate> c)
    {
        int n = 0;
        while (n < c.Length && !float.IsNegativeInfinity(c[n].Logit))
            n++;                                 // nothing moves before the first ban
        for (int i = n + 1; i < c.Length; i++)
        {
            if (!float.IsNegativeInfinity(c[i].Logit))
                c[n++] = c[i];
        }
        return n == 0 ? throw NoTokenLeft() : n;
    }

    private static InvalidOperationException NoTokenLeft() =>
        new("Every token's logit is -∞ after the logit bias: no token is left to sample.");

    // Locally typical sampling: ranks candidates by |−ln p − H| (H the entropy) and keeps the fewest whose probabilities
    // sum past p. Returns the count kept, in that ranking.
    private static int LocallyTypical(Span<TokenCandidate> c, float p)
    {
        float max = MaxLogit(c);
        double total = SumExp(c, max);
        double logTotal = Math.Log(total);
        double entropy = 0;
        foreach (var t in c)
        {
            double logP = t.Logit - max - logTotal;
            entropy -= Math.Exp(logP) * logP;
        }
        for (int i = 0; i < c.Length; i++)
            c[i].Key = (float)Math.Abs(-(c[i].Logit - max - logTotal) - entropy);
        Ranking.Sort(c, default(ByTypicality));
        double cumulative = 0;
        for (int i = 0; i < c.Length; i++)
        {
            cumulative += Math.Exp(c[i].Logit - max) / total;
            if (cumulative > p)
                return i + 1;
        }
        return c.Length;
    }

    // Nucleus: keeps the shortest most-likely-first prefix whose probability reaches p; c[..count] ends sorted.
    // Unsorted input is ranked only as far as needed: a heap with the best at the root, popped until the mass reaches p.
    internal static int TopP(Span<TokenCandidate> c, float p, bool sorted)
    {
        float max = sorted ? c[0].Logit : MaxLogit(c);
        double total = SumExp(c, max);
        double cumulative = 0;
        if (sorted)
        {
            for (int i = 0; i < c.Length; i++)
            {
                cumulative += Math.Exp(c[i].Logit - max) / total;
                if (cumulative >= p)
                    return i + 1;
            }
            return c.Length;
        }

        var bestAtRoot = new Reversed<TokenCandidate, ByLogit>(default);
        Ranking.Heapify(c, bestAtRoot);
        int end = c.Length;                      // c[end..] holds the popped candidates, best last
        while (end > 0)
        {
            var best = c[0];
            end--;
            c[0] = c[end];
            c[end] = best;
            Ranking.SiftDown(c[..end], 0, bestAtRoot);
            cumulative += Math.Exp(best.Logit - max) / total;
            if (cumulative >= p)
                break;
        }
        var popped = c[end..];
        popped.Reverse();
        popped.CopyTo(c);
        return popped.Length;
    }

    // Keeps candidates with probability ≥ minP · max probability, i.e. logit ≥ max + ln(minP), in order.
    private static int MinP(Span<TokenCandidate> c, float minP)
    {
        float threshold = MaxLogit(c) + MathF.Log(minP);
        int n = 0;
        for (int i = 0; i < c.Length; i++)
        {
            if (c[i].Logit >= threshold)
                c[n++] = c[i];
        }
        return n;
    }

    // Softmax of logit / temperature over the kept candidates, then the first token whose cumulative weight passes
    // u · total. Weights exp((logit − max) / temperature): the same softmax, and no overflow at tiny temperatures.
    private static int Draw(Span<TokenCandidate> c, float temperature, double u)
    {
        float max = MaxLogit(c);
        double total = 0;
        for (int i = 0; i < c.Length; i++)
        {
            c[i].Key = (float)Math.Exp((c[i].Logit - max) / (double)temperature);
            total += c[i].Key;
        }
        double target = u * total, cumulative = 0;
        for (int i = 0; i < c.Length; i++)
        {
            cumulative += c[i].Key;
            if (cumulative > target)
                return c[i].Id;
        }
        return c[^1].Id;
    }

    private static float MaxLogit(ReadOnlySpan<TokenCandidate> c)
    {
        float max = float.NegativeInfinity;
        foreach (var t in c)
            max = Math.Max(max, t.Logit);
        return max;
    }

    // Σ exp(logit − max), the softmax denominator.
    private static double SumExp(ReadOnlySpan<TokenCandidate> c, float max)
    {
        double total = 0;
        foreach (var t in c)
            total += Math.Exp(t.Logit - max);
        return total;
    }

    internal struct TokenCandidate(int id, float logit)
    {
        public int Id = id;
        public float Logit = logit;
        public float Key;                        // typical-p's rank |−ln p − H|, then the draw's weight
    }

    // Higher logit first; ties to the lower id.
    private readonly struct ByLogit : IRankOrder<TokenCandidate>
    {
        public bool Ahead(in TokenCandidate a, in TokenCandidate b) => a.Logit > b.Logit || (a.Logit == b.Logit && a.Id < b.Id);
    }

    // Smaller typical-p key first; ties by logit.
    private readonly struct ByTypicality : IRankOrder<TokenCandidate>
    {
        public bool Ahead(in TokenCandidate a, in TokenCandidate b) =>
            a.Key < b.Key || (a.Key == b.Key && default(ByLogit).Ahead(a, b));
    }
}

using System.Runtime.CompilerServices;
using ManagedLM.Sampling;

namespace ManagedLM.Generation;

public sealed partial class Generator
{
    /// <summary>Continues <paramref name="prompt"/> and returns the generated text.</summary>
    public string Generate(string prompt, GenerationOptions? options = null, CancellationToken cancellationToken = default) =>
        Complete(prompt, options, null, cancellationToken).Text;

    /// <summary>
    /// Continues <paramref name="prompt"/> (encoded with the model's tokenizer) until an end-of-generation
    /// token, a stop string, <see cref="GenerationOptions.MaxTokens"/> or a full context (unless the options shift it:
    /// <see cref="GenerationOptions.ContextOverflow"/>).
    /// <paramref name="onToken"/> sees each token as it is produced.
    /// </summary>
    /// <exception cref="ArgumentException">The prompt is empty or longer than the context, or a context shift would keep too much of it.</exception>
    /// <exception cref="OperationCanceledException">Cancelled; the generator stays usable.</exception>
    public GenerationResult Complete(string prompt, GenerationOptions? options = null, Action<TokenOutput>? onToken = null,
        CancellationToken cancellationToken = default)
    {
        options ??= GenerationOptions.Default;
        return Complete(Encode(prompt, options), options, onToken, cancellationToken);
    }

    /// <summary>As <see cref="Complete(string, GenerationOptions?, Action{TokenOutput}?, CancellationToken)"/>, for prompt token ids used as given.</summary>
    public GenerationResult Complete(IReadOnlyList<int> promptTokens, GenerationOptions? options = null, Action<TokenOutput>? onToken = null,
        CancellationToken cancellationToken = default)
    {
        Enter();
        try
        {
            var run = Begin(promptTokens, options ?? GenerationOptions.Default, cancellationToken);
            while (Advance(run, cancellationToken) is { } output)
                onToken?.Invoke(output);
            return LastResult!;
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Runs <see cref="Complete(string, GenerationOptions?, Action{TokenOutput}?, CancellationToken)"/> on the thread pool.</summary>
    public Task<GenerationResult> GenerateAsync(string prompt, GenerationOptions? options = null, CancellationToken cancellationToken = default) =>
        Task.Run(() => Complete(prompt, options, null, cancellationToken), cancellationToken);

    /// <summary>Runs <see cref="Complete(IReadOnlyList{int}, GenerationOptions?, Action{TokenOutput}?, CancellationToken)"/> on the thread pool.</summary>
    public Task<GenerationResult> GenerateAsync(IReadOnlyList<int> promptTokens, GenerationOptions? options = null, CancellationToken cancellationToken = default) =>
        Task.Run(() => Complete(promptTokens, options, null, cancellationToken), cancellationToken);

    /// <summary>
    /// Streams the continuation of <paramref name="prompt"/> token by token; each step runs on the thread
    /// pool. The generator is held from the first MoveNextAsync until the enumeration completes or is
    /// disposed. Cancellation is observed before each token; <see cref="LastResult"/> tells why it stopped.
    /// </summary>
    public IAsyncEnumerable<TokenOutput> GenerateStreamingAsync(string prompt, GenerationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        options ??= GenerationOptions.Default;
        return Stream(() => Encode(prompt, options), options, cancellationToken);
    }

    /// <summary>As <see cref="GenerateStreamingAsync(string, GenerationOptions?, CancellationToken)"/>, for prompt token ids used as given.</summary>
    public IAsyncEnumerable<TokenOutput> GenerateStreamingAsync(IReadOnlyList<int> promptTokens, GenerationOptions? options = null,
        CancellationToken cancellationToken = default) =>
        Stream(() => promptTokens, options ?? GenerationOptions.Default, cancellationToken);

    private async IAsyncEnumerable<TokenOutput> Stream(Func<IReadOnlyList<int>> prompt, GenerationOptions options,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        Enter();
        try
        {
            var run = await Task.Run(() => Begin(prompt(), options, cancellationToken), cancellationToken).ConfigureAwait(false);
            while (await Task.Run(() => Advance(run, cancellationToken), cancellationToken).ConfigureAwait(false) is { } output)
                yield return output;
        }
        finally
        {
            Exit();
        }
    }

    private int[] Encode(string prompt, GenerationOptions options)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        return Model.Tokenizer.EncodePrompt(prompt, ContextLength, options.AddSpecialTokens, options.ParseSpecialTokens);
    }

    // Validates, reuses the cached prefix, evaluates the rest of the prompt.
    private Sequence Begin(IReadOnlyList<int> promptTokens, GenerationOptions options, CancellationToken cancellationToken)
    {
        var run = StartSequence(promptTokens, options);
        PrefillCore(run.Prompt.AsSpan(run.Reused), cancellationToken);
        run.PromptDone();
        return run;
    }

    /// <summary>
    /// Validates a request and starts its sequence on this generator: keeps the longest cached prefix of the prompt (at least
    /// the last prompt token is left to evaluate: its logits are needed). The prompt from <see cref="Sequence.Reused"/> on
    /// still has to be evaluated.
    /// </summary>
    internal Sequence StartSequence(IReadOnlyList<int> promptTokens, GenerationOptions options)
    {
        ArgumentNullException.ThrowIfNull(promptTokens);
        options.Validate();
        int[] prompt = CheckPrompt(promptTokens, ContextLength, Model.Config.VocabSize);
        int keep = KeepFor(prompt, options, ContextLength, Model.Tokenizer.BosTokenId);

        var run = new Sequence(Model.Tokenizer, prompt, options, SamplerFor(options), _decoder) { Keep = keep };
        LastResult = null;
        int reuse = options.ReusePrefix ? CommonPrefix(prompt) : 0;
        if (!_cache.Holds(reuse))
            reuse = 0; // a sliding layer no longer holds that prefix's window: evaluate the prompt anew (as llama.cpp does)
        TrimCore(reuse);
        run.Reused = reuse;
        return run;
    }

    /// <summary>A copy of the prompt's ids, or <see cref="ArgumentException"/> when it is empty, longer than the context, or holds an id outside the vocabulary.</summary>
    internal static int[] CheckPrompt(IReadOnlyList<int> promptTokens, int contextLength, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(promptTokens);
        int[] prompt = promptTokens.ToArray();
        if (prompt.Length == 0)
            throw new ArgumentException("The prompt is empty.", nameof(promptTokens));
        if (prompt.Length > contextLength)
            throw new ArgumentException($"The prompt has {prompt.Length} tokens; the context length is {contextLength}.", nameof(promptTokens));
        foreach (int t in prompt)
        {
            if ((uint)t >= (uint)vocabSize)
                throw new ArgumentException($"Token id {t} is outside the vocabulary [0, {vocabSize}).", nameof(promptTokens));
        }
        return prompt;
    }

    /// <summary>
    /// How many leading prompt tokens are cached here (at most prompt length − 1), as a fresh evaluation would have cached
    /// them: after a context shift, only the kept tokens count.
    /// </summary>
    internal int CommonPrefix(ReadOnlySpan<int> prompt)
    {
        int limit = Math.Min(Math.Min(Position, _exactPrefix), prompt.Length - 1), n = 0;
        while (n < limit && _tokens[n] == prompt[n])
            n++;
        return n;
    }

    /// <summary>The index of the generator whose cache holds the longest prefix of <paramref name="prompt"/> (the first on ties; -1 when there is none).</summary>
    internal static int LongestCachedPrefix(List<Generator> candidates, ReadOnlySpan<int> prompt)
    {
        int best = -1, bestLength = -1;
        for (int i = 0; i < candidates.Count; i++)
        {
            int n = candidates[i].CommonPrefix(prompt);
            if (n > bestLength)
                (best, bestLength) = (i, n);
        }
        return best;
    }

    // The generator's sampler, or a new one for options that differ. A given seed restarts its sequence
    // every call, so a request is reproducible whatever ran before it on this generator.
    private SamplerChain SamplerFor(GenerationOptions options)
    {
        var sampling = options.Sampling ?? Options.Sampling;
        if (!Equals(sampling, Sampler.Options))
            Sampler = new SamplerChain(sampling, Model.Config.VocabSize);
        else if (sampling.Seed is not null)
            Sampler.Reset();
        return Sampler;
    }

    // One token: evaluates the pending one, samples the next and emits it. Null once finished.
    private TokenOutput? Advance(Sequence run, CancellationToken cancellationToken)
    {
        if (run.Finished)
            return null;
        cancellationToken.ThrowIfCancellationRequested();
        if (!run.Stopping(Position, ContextLength, out var output))
        {
            if (run.Pending is int pending)
            {
                MakeRoom(run);
                PrefillCore([pending], cancellationToken);
                run.Pending = null;
            }
            output = run.Accept(Logits, History);
        }
        if (run.Finished)
            LastResult = run.Result;
        return output;
    }
}

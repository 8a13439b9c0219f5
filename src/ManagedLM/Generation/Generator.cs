using System.Diagnostics;
using ManagedLM.Kernels.Threading;
using ManagedLM.Model;
using ManagedLM.Sampling;

namespace ManagedLM.Generation;

/// <summary>
/// One request's state on a shared <see cref="TransformerModel"/>: KV cache, scratch activations,
/// token history, sampler and RNG. Create one per concurrent request with
/// <see cref="TransformerModel.CreateGenerator"/>; generators of one model run in parallel without locks.
/// </summary>
public sealed class Generator : IDisposable
{
    private readonly ForwardState _state;
    private readonly KvCache _cache;
    private readonly List<int> _tokens;
    private readonly WorkerPool? _pool;
    private bool _hasLogits;

    public TransformerModel Model { get; }
    public SamplerChain Sampler { get; }
    /// <summary>Most positions this generator holds.</summary>
    public int ContextLength { get; }
    /// <summary>Tokens evaluated so far (the next token's position).</summary>
    public int Position => _tokens.Count;
    /// <summary>Every token evaluated so far, in order.</summary>
    public IReadOnlyList<int> Tokens => _tokens;

    internal Generator(TransformerModel model, GeneratorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Model = model;
        int context = options.ContextLength ?? Math.Min(model.MaxContextLength, GeneratorOptions.DefaultContextLength);
        if (context <= 0 || context > model.MaxContextLength)
            throw new ArgumentOutOfRangeException(nameof(options), context, $"ContextLength must be in [1, {model.MaxContextLength}].");
        ContextLength = context;
        _tokens = new List<int>(context);
        if (options.Threads < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.Threads, "Threads must be at least 1.");
        Sampler = new SamplerChain(options.Sampling, model.Config.VocabSize);
        _pool = options.Threads > 1 ? new WorkerPool(options.Threads) : null;
        _state = new ForwardState(model.Config, context, _pool);
        _cache = new KvCache(options.KvCacheType, model.Config.BlockCount, model.Config.KvLength, context);
    }

    /// <summary>The logits after the last evaluated token ([vocab]); empty before any.</summary>
    public ReadOnlySpan<float> Logits => _hasLogits ? _state.Logits : default;

    /// <summary>Evaluates <paramref name="tokens"/> after what is cached and returns the logits after the last.</summary>
    /// <exception cref="ArgumentException">A token id is outside the vocabulary, or the tokens do not fit the context.</exception>
    public ReadOnlySpan<float> Prefill(scoped ReadOnlySpan<int> tokens)
    {
        if (tokens.IsEmpty)
            throw new ArgumentException("Prefill needs at least one token.", nameof(tokens));
        if (Position + tokens.Length > ContextLength)
            throw new ArgumentException(
                $"{tokens.Length} tokens after {Position} exceed the context length {ContextLength}.", nameof(tokens));
        int vocab = Model.Config.VocabSize;
        foreach (int t in tokens)
        {
            if ((uint)t >= (uint)vocab)
                throw new ArgumentException($"Token id {t} is outside the vocabulary [0, {vocab}).", nameof(tokens));
        }
        _cache.EnsureCapacity(Position + tokens.Length);
        for (int i = 0; i < tokens.Length; i++)
        {
            Transformer.Forward(Model, _state, _cache, tokens[i], Position, computeLogits: i == tokens.Length - 1);
            _tokens.Add(tokens[i]);
        }
        _hasLogits = true;
        return _state.Logits;
    }

    /// <summary>Evaluates one token and returns the logits after it.</summary>
    public ReadOnlySpan<float> Decode(int token) => Prefill([token]);

    /// <summary>Samples the next token from the current logits with this generator's sampler.</summary>
    public int Sample()
    {
        if (!_hasLogits)
            throw new InvalidOperationException("No logits yet: call Prefill first.");
        return Sampler.Sample(_state.Logits);
    }

    /// <summary>Forgets every cached token and restarts the sampler's random sequence.</summary>
    public void Reset()
    {
        _tokens.Clear();
        _hasLogits = false;
        Sampler.Reset();
    }

    /// <summary>
    /// Evaluates <paramref name="prompt"/> (ids, as given) and samples up to <paramref name="maxTokens"/> tokens,
    /// stopping at an end-of-generation token or a full context. <paramref name="onToken"/> sees each
    /// generated id as it is produced.
    /// </summary>
    public GenerationResult Generate(IReadOnlyList<int> prompt, int maxTokens, Func<int, bool>? isEndOfGeneration = null, Action<int>? onToken = null)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentOutOfRangeException.ThrowIfNegative(maxTokens);
        var promptIds = prompt.ToArray();
        var clock = Stopwatch.StartNew();
        Prefill(promptIds);
        var promptTime = clock.Elapsed;
        clock.Restart();

        var generated = new List<int>();
        StopReason reason = StopReason.MaxTokens;
        while (generated.Count < maxTokens)
        {
            int next = Sample();
            if (isEndOfGeneration?.Invoke(next) == true)
            {
                reason = StopReason.EndOfGeneration;
                break;
            }
            generated.Add(next);
            onToken?.Invoke(next);
            if (Position >= ContextLength)
            {
                reason = StopReason.ContextFull;
                break;
            }
            Decode(next); // every generated token is evaluated, so the generator can continue from here
        }
        return new GenerationResult(promptIds, generated.ToArray(), reason, promptTime, clock.Elapsed);
    }

    /// <summary>Stops this generator's worker threads (if <see cref="GeneratorOptions.Threads"/> &gt; 1).</summary>
    public void Dispose()
    {
        _pool?.Dispose();
        GC.SuppressFinalize(this);
    }

    ~Generator() => _pool?.Dispose();
}

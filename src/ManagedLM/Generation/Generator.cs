using System.Runtime.CompilerServices;
using ManagedLM.Inference;
using ManagedLM.Kernels.Threading;
using ManagedLM.Kernels;
using ManagedLM.Model;
using ManagedLM.Sampling;
using ManagedLM.Tokenization;

namespace ManagedLM.Generation;

/// <summary>
/// One request's state on a shared <see cref="TransformerModel"/>: KV cache, scratch activations,
/// token history, sampler and RNG, incremental decoder. Create one per concurrent request with
/// <see cref="ModelGenerators.CreateGenerator"/> (or rent one from a <see cref="GeneratorPool"/>);
/// generators of one model run in parallel without locks.
/// A generator is used by one operation at a time: a second thread entering it while it is busy gets
/// an <see cref="InvalidOperationException"/> (never corrupted state). Handing it from thread to
/// thread between operations (await, Task.Run) is fine.
/// </summary>
public sealed partial class Generator : IDisposable
{
    private readonly ForwardState _state;
    private readonly KvCache _cache;
    private readonly List<int> _tokens;
    private readonly WorkerPool? _pool;
    private readonly StreamingDecoder _decoder;
    private bool _hasLogits;
    private BusyGuard _guard;
    // Leading cached positions whose keys and values equal a fresh evaluation of _tokens: all of them, until a context
    // shift moves entries computed with discarded tokens in view. Only these are reused for another prompt.
    private int _exactPrefix;

    public TransformerModel Model { get; }
    /// <summary>The options this generator was created with.</summary>
    public GeneratorOptions Options { get; }
    /// <summary>The sampler used by <see cref="Sample"/> (and by generation calls that give no sampling options).</summary>
    public SamplerChain Sampler { get; private set; }
    /// <summary>Most positions this generator holds.</summary>
    public int ContextLength { get; }
    /// <summary>Tokens evaluated so far (the next token's position).</summary>
    public int Position => _tokens.Count;
    /// <summary>Every token evaluated so far, in order.</summary>
    public IReadOnlyList<int> Tokens => _tokens;
    /// <summary>The outcome of the last finished generation call, or null.</summary>
    public GenerationResult? LastResult { get; private set; }

    internal Generator(TransformerModel model, GeneratorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (model.Config.Family.Encoder)
            throw new NotSupportedException(
                $"\"{model.Config.Architecture}\" is an encoder: it embeds text and does not generate it (model.CreateEmbedder, ManagedLM.Embeddings).");
        Model = model;
        Options = options;
        int context = GeneratorOptions.ContextLengthFor(model, options.ContextLength);
        if (context <= 0 || context > model.MaxContextLength)
            throw new ArgumentOutOfRangeException(nameof(options), context, $"ContextLength must be in [1, {model.MaxContextLength}].");
        if (options.Threads < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.Threads, "Threads must be at least 1.");
        KvCache.CheckType(options.KvCacheType, model.Config.KvHeadCount, model.Config.HeadDim, nameof(options));
        ContextLength = context;
        _tokens = new List<int>(context);
        Sampler = new SamplerChain(options.Sampling, model.Config.VocabSize);
        _pool = options.Threads > 1 ? new WorkerPool(options.Threads) : null;
        if (options.BatchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.BatchSize, "BatchSize must be at least 1.");
        ModelWarmUp.Ensure(model, options.KvCacheType);
        _state = new ForwardState(model.Config, _pool);
        _cache = new KvCache(options.KvCacheType, model.Config.BlockCount, new KvBlockLayout(model.Config.KvHeadCount, model.Config.HeadDim), context,
            windows: model.Config.LayerWindows.AsSpan());
        _decoder = model.Tokenizer.CreateStreamingDecoder();
    }

    /// <summary>The logits after the last evaluated token ([vocab]); empty when there are none (before any, or after a rewind).</summary>
    public ReadOnlySpan<float> Logits => _hasLogits ? _state.Logits.AsSpan(0, Model.Config.VocabSize) : default;

    /// <summary>The ids evaluated so far, as <see cref="Tokens"/> (the sampler's penalty history).</summary>
    internal ReadOnlySpan<int> History => System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_tokens);

    /// <summary>Bytes held by this generator's KV cache.</summary>
    public long KvCacheBytes => _cache.AllocatedBytes;

    /// <summary>Evaluates <paramref name="tokens"/> after what is cached and returns the logits after the last.</summary>
    /// <exception cref="ArgumentException">A token id is outside the vocabulary, or the tokens do not fit the context.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public ReadOnlySpan<float> Prefill(scoped ReadOnlySpan<int> tokens)
    {
        Enter();
        try
        {
            PrefillCore(tokens, CancellationToken.None);
            return _state.Logits.AsSpan(0, Model.Config.VocabSize);
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Evaluates one token at the end of the sequence and returns the logits after it.</summary>
    public ReadOnlySpan<float> Step(int token) => Prefill([token]);

    /// <summary>Samples the next token from the current logits with <see cref="Sampler"/>, penalizing by the token history.</summary>
    public int Sample()
    {
        Enter();
        try
        {
            if (!_hasLogits)
                throw new InvalidOperationException("There are no logits to sample from: call Prefill or Step first.");
            return Sampler.Sample(Logits, History);
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Drops the last <paramref name="count"/> tokens (their cache entries are overwritten by what comes next).</summary>
    public void Rewind(int count)
    {
        if ((uint)count > (uint)Position)
            throw new ArgumentOutOfRangeException(nameof(count), count, $"Can rewind at most the {Position} tokens evaluated.");
        Trim(Position - count);
    }

    /// <summary>Keeps the first <paramref name="length"/> tokens and forgets the rest. The logits are kept only when nothing is dropped.</summary>
    public void Trim(int length)
    {
        Enter();
        try
        {
            TrimCore(length);
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Forgets every cached token and restarts the sampler's random sequence.</summary>
    public void Reset()
    {
        Enter();
        try
        {
            TrimCore(0);
            Sampler.Reset();
            _decoder.Reset();
            LastResult = null;
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Stops this generator's worker threads (if <see cref="GeneratorOptions.Threads"/> &gt; 1).</summary>
    public void Dispose()
    {
        _pool?.Dispose();
        GC.SuppressFinalize(this);
    }

    ~Generator() => _pool?.Dispose();

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void PrefillCore(scoped ReadOnlySpan<int> tokens, CancellationToken cancellation)
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
        _hasLogits = false;
        // Chunks of up to BatchSize tokens, each one forward pass (one read of the weights); logits after the last token only.
        int chunk = Math.Min(tokens.Length, Options.BatchSize);
        _state.EnsureCapacity(chunk, 1);
        for (int start = 0; start < tokens.Length; start += chunk)
        {
            cancellation.ThrowIfCancellationRequested();
            int n = Math.Min(chunk, tokens.Length - start);
            for (int i = 0; i < n; i++)
                _state.Rows[i] = new ForwardRow(_cache, tokens[start + i], Position + i, Logits: start + i == tokens.Length - 1);
            Transformer.Forward(Model, _state, n);
            Append(tokens.Slice(start, n));
        }
        _hasLogits = true;
    }

    private void TrimCore(int length)
    {
        if ((uint)length > (uint)Position)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"Length must be in [0, {Position}].");
        if (length < Position)
        {
            _tokens.RemoveRange(length, Position - length);
            _hasLogits = false;
        }
        _exactPrefix = Math.Min(_exactPrefix, length);
        if (!_cache.Holds(length))
        {
            // A sliding layer has dropped positions that the next token's window sees: evaluate the kept tokens again.
            int[] kept = [.. _tokens];
            _tokens.Clear();
            PrefillCore(kept, CancellationToken.None);
            _hasLogits = false;
        }
    }

    // Adds evaluated tokens to the history; they are exact when everything before them is.
    private void Append(ReadOnlySpan<int> tokens)
    {
        if (_exactPrefix == Position)
            _exactPrefix += tokens.Length;
        foreach (int t in tokens)
            _tokens.Add(t);
    }

    /// <summary>This generator's KV cache (written by batch steps).</summary>
    internal KvCache Cache => _cache;

    /// <summary>
    /// Records tokens a batch step evaluated on this generator's cache (see <see cref="Batching.BatchDecoder"/>): appends them
    /// to the history; <paramref name="logits"/> are the logits after the last one ([vocab]) or empty when not computed.
    /// </summary>
    internal void Accept(ReadOnlySpan<int> tokens, ReadOnlySpan<float> logits)
    {
        Append(tokens);
        _hasLogits = !logits.IsEmpty;
        if (_hasLogits)
            logits.CopyTo(_state.Logits);
    }

    /// <summary>Replaces the cached tokens with the first <paramref name="length"/> of <paramref name="source"/>'s (a generator of the same model), copying their keys and values.</summary>
    internal void AdoptPrefix(Generator source, int length)
    {
        if (source.Model != Model || (uint)length > (uint)source.Position || length > ContextLength)
            throw new ArgumentException("The prefix does not fit this generator.", nameof(source));
        source._cache.CopyTo(_cache, length);
        _tokens.Clear();
        for (int i = 0; i < length; i++)
            _tokens.Add(source._tokens[i]);
        _exactPrefix = Math.Min(length, source._exactPrefix);
        _hasLogits = false;
    }

    internal void Enter() => _guard.Enter(
        "This Generator is already in use by another operation (another thread, or a streaming enumeration not yet disposed). " +
        "A Generator holds one request's state and serves one operation at a time: create one Generator per thread with " +
        "model.CreateGenerator, or rent one from a GeneratorPool.");

    internal void Exit() => _guard.Exit();
}

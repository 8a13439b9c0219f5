using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using ManagedLM.Generation;
using ManagedLM.Inference;
using ManagedLM.Model;

namespace ManagedLM.Batching;

/// <summary>
/// Continuous batching: requests submitted from any thread are decoded together, one forward pass per step for every
/// running sequence, so the weights are read once per step instead of once per sequence. Sequences join and leave at
/// step boundaries; prompts are fed in chunks (<see cref="BatchEngineOptions.PrefillChunk"/>) so running streams keep
/// flowing; each request has its own sampler, seed, stop conditions and cancellation, and streams its tokens through a
/// channel. Every request gets exactly the tokens it would get alone on a <see cref="Generator"/>.
/// <para>
/// The steps run on one dedicated thread (plus the step's worker threads): a step is long, CPU-bound and back to back,
/// so it would hold a thread-pool thread anyway, and a thread of its own keeps step latency free of thread-pool
/// injection delays while the pool serves the callers.
/// </para>
/// </summary>
public sealed class BatchEngine : IAsyncDisposable, IDisposable
{
    private readonly TransformerModel _model;
    private readonly BatchEngineOptions _options;
    private readonly GeneratorOptions _generatorOptions;
    private readonly Channel<BatchRequest> _queue;
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Thread _thread;
    private readonly BatchDecoder _decoder;
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _draining;
    private readonly EngineCounters _counters = new();
    private readonly EngineTelemetry _telemetry;
    private long _nextId;
    private int _queued;

    // Decoder-thread state.
    private readonly List<Slot> _active = [];
    private readonly List<(Slot, GenerationResult)> _finished = [];   // this step's, completed at its end
    private int _running;                   // _active's sequences not yet retired, for Metrics from other threads
    private readonly List<Generator> _idle = [];   // finished sequences' generators, kept for their cached prefixes
    private readonly List<BatchItem> _items = [];
    private readonly List<Slot> _stepped = [];

    /// <summary>Starts the engine's decoding thread.</summary>
    public BatchEngine(TransformerModel model, BatchEngineOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        _options = options ?? BatchEngineOptions.Default;
        _options.Validate();
        KvCache.CheckType(_options.KvCacheType, model.Config.KvHeadCount, model.Config.HeadDim, nameof(options));
        _model = model;
        _generatorOptions = new GeneratorOptions
        {
            ContextLength = _options.ContextLength, KvCacheType = _options.KvCacheType, Sampling = _options.Sampling,
        };
        _queue = Channel.CreateBounded<BatchRequest>(new BoundedChannelOptions(_options.MaxQueuedRequests)
        {
            FullMode = BoundedChannelFullMode.Wait, SingleReader = true,
        });
        _decoder = new BatchDecoder(model, _options.Threads);
        _telemetry = new EngineTelemetry("text_completion", model.Name, () => Volatile.Read(ref _queued), () => Volatile.Read(ref _running));
        _thread = new Thread(Loop) { IsBackground = true, Name = "ManagedLM batch engine" };
        _thread.Start();
    }

    /// <summary>The engine's limits and defaults.</summary>
    public BatchEngineOptions Options => _options;

    /// <summary>Context length of each sequence: the longest prompt plus generation a request can have.</summary>
    public int ContextLength => GeneratorOptions.ContextLengthFor(_model, _options.ContextLength);

    /// <summary>Counters of what the engine has done so far.</summary>
    public BatchEngineMetrics Metrics => _counters.Snapshot(Volatile.Read(ref _running), Volatile.Read(ref _queued));

    /// <summary>Submits a request, waiting while the queue is full.</summary>
    /// <exception cref="ArgumentException">The prompt is empty, too long for the context, or the options are invalid.</exception>
    public ValueTask<BatchRequest> SubmitAsync(string prompt, GenerationOptions? options = null, CancellationToken cancellationToken = default) =>
        SubmitAsync(Encode(prompt, options ?? GenerationOptions.Default), options, cancellationToken);

    /// <summary>As <see cref="SubmitAsync(string, GenerationOptions?, CancellationToken)"/>, for prompt token ids used as given.</summary>
    public async ValueTask<BatchRequest> SubmitAsync(IReadOnlyList<int> promptTokens, GenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        var request = Create(promptTokens, options, cancellationToken);
        Interlocked.Increment(ref _queued);
        try
        {
            await _queue.Writer.WriteAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            Interlocked.Decrement(ref _queued);
            var disposed = new ObjectDisposedException(nameof(BatchEngine));
            request.Abandon(disposed);
            throw disposed;
        }
        catch (Exception e)
        {
            Interlocked.Decrement(ref _queued);
            request.Abandon(e);
            throw;
        }
        _wake.Release();
        return request;
    }

    /// <summary>Submits a request unless the queue is full (then returns false: retry later, or reject it).</summary>
    public bool TrySubmit(string prompt, GenerationOptions? options, out BatchRequest? request, CancellationToken cancellationToken = default) =>
        TrySubmit(Encode(prompt, options ?? GenerationOptions.Default), options, out request, cancellationToken);

    /// <summary>As <see cref="TrySubmit(string, GenerationOptions?, out BatchRequest?, CancellationToken)"/>, for prompt token ids.</summary>
    public bool TrySubmit(IReadOnlyList<int> promptTokens, GenerationOptions? options, out BatchRequest? request, CancellationToken cancellationToken = default)
    {
        var r = Create(promptTokens, options, cancellationToken);
        Interlocked.Increment(ref _queued);
        if (!_queue.Writer.TryWrite(r))
        {
            Interlocked.Decrement(ref _queued);
            r.Abandon(_draining ? new ObjectDisposedException(nameof(BatchEngine)) : new InvalidOperationException("The queue is full."));
            ObjectDisposedException.ThrowIf(_draining, this);   // the queue was closed, not full
            _counters.Rejected();
            request = null;
            return false;
        }
        _wake.Release();
        request = r;
        return true;
    }

    /// <summary>Generates the continuation of <paramref name="prompt"/> in the batch and returns the result.</summary>
    public async Task<GenerationResult> GenerateAsync(string prompt, GenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        var request = await SubmitAsync(prompt, options, cancellationToken).ConfigureAwait(false);
        return await request.Completion.ConfigureAwait(false);
    }

    /// <summary>Streams the continuation of <paramref name="prompt"/> as the batch produces it; disposing the enumeration early cancels it.</summary>
    public async IAsyncEnumerable<TokenOutput> GenerateStreamingAsync(string prompt, GenerationOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var request = await SubmitAsync(prompt, options, cancellationToken).ConfigureAwait(false);
        await foreach (var t in request.Tokens.WithCancellation(cancellationToken).ConfigureAwait(false))
            yield return t;
    }

    private int[] Encode(string prompt, GenerationOptions options)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        return _model.Tokenizer.EncodePrompt(prompt, ContextLength, options.AddSpecialTokens, options.ParseSpecialTokens);
    }

    // Validates on the caller's thread, so a bad request fails at submission.
    private BatchRequest Create(IReadOnlyList<int> promptTokens, GenerationOptions? options, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_stopping.IsCancellationRequested || _draining, this);
        ArgumentNullException.ThrowIfNull(promptTokens);
        options ??= GenerationOptions.Default;
        options.Validate();
        int[] prompt = Generator.CheckPrompt(promptTokens, ContextLength, _model.Config.VocabSize);
        Generator.KeepFor(prompt, options, ContextLength, _model.Tokenizer.BosTokenId);
        return new BatchRequest(Interlocked.Increment(ref _nextId) - 1, prompt, options, cancellationToken)
        {
            Span = _telemetry.Begin(options.MaxTokens, options.Sampling?.Temperature),
        };
    }

    /// <summary>A running request: its generator, its sequence, and how much of the prompt is evaluated.</summary>
    private sealed class Slot(BatchRequest request, Generator generator, Sequence sequence)
    {
        public readonly BatchRequest Request = request;
        public readonly Generator Generator = generator;
        public readonly Sequence Sequence = sequence;
        public int Evaluated = sequence.Reused;  // prompt tokens in the cache
        public int Feeding;                      // tokens fed in the current step
        public readonly int[] Pending = new int[1];
        public bool Done;
        public bool Decoding => Evaluated == Sequence.Prompt.Length;
    }

    private void Loop()
    {
        try
        {
            while (!_stopping.IsCancellationRequested)
            {
                Admit();
                if (_active.Count == 0)
                {
                    if (_draining && _queue.Reader.Count == 0)
                        _drained.TrySetResult();   // nothing can join a closed queue: every request has finished
                    _wake.Wait(_stopping.Token);
                    continue;
                }
                Step();
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
        var stopped = new ObjectDisposedException(nameof(BatchEngine), "The engine was disposed.");
        foreach (var s in _active)
            Release(s, stopped);
        _active.Clear();
        while (_queue.Reader.TryRead(out var r))
        {
            Interlocked.Decrement(ref _queued);
            if (r.Start())
                r.Fail(stopped);
            r.Release();
        }
    }

    // Moves queued requests into the batch while there is room, oldest first.
    private void Admit()
    {
        while (_active.Count < _options.MaxActiveSequences && _queue.Reader.TryRead(out var request))
        {
            Interlocked.Decrement(ref _queued);
            if (!request.Start())
            {
                _counters.Cancelled();
                request.Release();
                continue;
            }
            var g = TakeGenerator(request.PromptTokens);
            g.Enter();
            try
            {
                var sequence = g.StartSequence(request.PromptTokens, request.Options);
                if (_options.SharePrefixes && request.Options.ReusePrefix)
                    ShareLongestPrefix(g, sequence);
                _active.Add(new Slot(request, g, sequence));
                Interlocked.Increment(ref _running);
                _counters.Admitted(sequence.Reused);
            }
            catch (Exception e)
            {
                g.Exit();
                _idle.Add(g);
                request.Fail(e);
                request.Release();
            }
        }
    }

    // An idle generator whose cache shares the longest prefix with the prompt, else a new one.
    private Generator TakeGenerator(int[] prompt)
    {
        int best = Generator.LongestCachedPrefix(_idle, prompt);
        if (best < 0)
            return _model.CreateGenerator(_generatorOptions);
        var g = _idle[best];
        _idle.RemoveAt(best);
        return g;
    }

    // Copies the longest prefix of the prompt that another sequence (running or idle) has cached, when it beats what
    // the generator kept of its own.
    private void ShareLongestPrefix(Generator g, Sequence run)
    {
        Generator? source = null;
        int length = run.Reused;
        foreach (var other in _active.Select(s => s.Generator).Concat(_idle))
        {
            int n = other.CommonPrefix(run.Prompt);
            if (n > length)
                (source, length) = (other, n);
        }
        if (source is null || length < _options.MinSharedPrefix)
            return;
        g.AdoptPrefix(source, length);
        run.Reused = length;
    }

    // One forward pass: a token for each decoding sequence, then prompt chunks up to the prefill budget, oldest first.
    private void Step()
    {
        _items.Clear();
        _stepped.Clear();
        for (int i = 0; i < _active.Count; i++)
        {
            var s = _active[i];
            if (s.Request.CancellationToken.IsCancellationRequested)
            {
                _counters.Cancelled();
                Release(s, new OperationCanceledException(s.Request.CancellationToken));
                _active.RemoveAt(i--);
                continue;
            }
            if (!s.Decoding)
                continue;
            try
            {
                s.Generator.MakeRoom(s.Sequence);   // a context shift of its own cache, as Generator.Advance does
            }
            catch (Exception e)
            {
                Release(s, e);
                _active.RemoveAt(i--);
                continue;
            }
            s.Feeding = 1;
            s.Pending[0] = s.Sequence.Pending!.Value;
            _items.Add(new BatchItem(s.Generator, s.Pending));
            _stepped.Add(s);
        }
        int budget = _options.PrefillChunk;
        foreach (var s in _active)
        {
            if (s.Decoding || budget == 0 || s.Request.CancellationToken.IsCancellationRequested)
                continue;
            int n = Math.Min(budget, s.Sequence.Prompt.Length - s.Evaluated);
            budget -= n;
            s.Feeding = n;
            _items.Add(new BatchItem(s.Generator, s.Sequence.Prompt.AsMemory(s.Evaluated, n)));
            _stepped.Add(s);
        }
        if (_items.Count == 0)
            return;

        var clock = Stopwatch.StartNew();
        try
        {
            _decoder.DecodeHeld(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_items));
        }
        catch (Exception e)
        {
            foreach (var s in _active)
                Release(s, e);
            _active.Clear();
            return;
        }
        int promptTokens = 0, generated = 0;
        foreach (var s in _stepped)
        {
            if (!s.Decoding)
                promptTokens += s.Feeding;
            if (s.Decoding)
                s.Sequence.Pending = null;
            else
            {
                s.Evaluated += s.Feeding;
                if (!s.Decoding)
                    continue;
                s.Sequence.PromptDone();
            }
            try
            {
                // As Generator.Advance: stop before sampling when no token may follow, else sample and emit one.
                var g = s.Generator;
                if (s.Sequence.Stopping(g.Position, g.ContextLength, out var final))
                {
                    Finish(s, final);
                    continue;
                }
                if (s.Sequence.Accept(g.Logits, g.History) is { } output)
                {
                    s.Request.Write(output);
                    if (output.Id != TokenOutput.NoToken)
                    {
                        generated++;
                        if (s.Request.FirstTokenAt == 0)
                            s.Request.FirstTokenAt = Stopwatch.GetTimestamp();
                    }
                }
                if (s.Sequence.Finished)
                    Finish(s, null);
                else if (s.Sequence.Stopping(g.Position, g.ContextLength, out final))
                    Finish(s, final);
            }
            catch (Exception e)
            {
                Release(s, e);
            }
        }
        _active.RemoveAll(s => s.Done);
        _counters.Stepped(_stepped.Count, promptTokens, generated, clock.Elapsed);
        _telemetry.Stepped(_stepped.Count);
        // Completed only now, so that an awaiter reading Metrics sees this step counted.
        foreach (var (s, result) in _finished)
        {
            s.Request.Complete(result);
            s.Request.Release();
        }
        _finished.Clear();
    }

    private void Finish(Slot s, TokenOutput? final)
    {
        if (final is { } f)
            s.Request.Write(f);
        var result = s.Sequence.Result!;
        _finished.Add((s, result));
        Retire(s);
        _counters.Completed();
        _telemetry.Finished(s.Request.SubmittedAt, s.Request.FirstTokenAt, result.PromptTokens.Length, result.GeneratedTokens.Length);
    }

    private void Release(Slot s, Exception error)
    {
        Retire(s);
        s.Request.Fail(error);
        s.Request.Release();
    }

    // The sequence leaves the batch; its generator stays idle with its cache for later prefixes.
    private void Retire(Slot s)
    {
        s.Done = true;
        Interlocked.Decrement(ref _running);   // before the request completes, so its awaiter sees it gone
        s.Generator.Exit();
        _idle.Add(s.Generator);
        TrimIdle();
    }

    // Keeps at most as many idle generators (and their caches) as there are batch places.
    private void TrimIdle()
    {
        while (_idle.Count > _options.MaxActiveSequences)
        {
            _idle[0].Dispose();
            _idle.RemoveAt(0);
        }
    }

    /// <summary>
    /// Stops the engine gracefully: from now on it admits no request (<see cref="SubmitAsync(IReadOnlyList{int}, GenerationOptions?, CancellationToken)"/>
    /// and <see cref="TrySubmit(IReadOnlyList{int}, GenerationOptions?, out BatchRequest?, CancellationToken)"/> throw
    /// <see cref="ObjectDisposedException"/>), waits for the queued and running requests to finish, then stops as
    /// <see cref="Dispose"/> does. When <paramref name="cancellationToken"/> fires first (a host's shutdown timeout), the
    /// requests still queued or running fail with <see cref="ObjectDisposedException"/>.
    /// </summary>
    /// <returns>True when every request finished; false when the token cut the wait short.</returns>
    public async Task<bool> DrainAsync(CancellationToken cancellationToken = default)
    {
        if (_stopping.IsCancellationRequested)
            return _drained.Task.IsCompletedSuccessfully;   // already stopped (disposed, or drained before)
        _draining = true;
        _queue.Writer.TryComplete();
        _wake.Release();   // an idle loop wakes to see that nothing is left
        bool drained;
        try
        {
            await _drained.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            drained = true;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            drained = false;
        }
        Dispose();
        return drained;
    }

    /// <summary>Stops the engine: queued and running requests fail with <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        if (_stopping.IsCancellationRequested)
            return;
        _queue.Writer.TryComplete();
        _stopping.Cancel();
        _thread.Join();
        _decoder.Dispose();
        _telemetry.Dispose();
        foreach (var g in _idle)
            g.Dispose();
        _idle.Clear();
    }

    /// <inheritdoc cref="Dispose"/>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}

using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using ManagedLM.Embeddings;
using ManagedLM.Model;

namespace ManagedLM.Batching;

/// <summary>Options of an <see cref="EmbeddingEngine"/>.</summary>
public sealed record EmbeddingEngineOptions
{
    public static EmbeddingEngineOptions Default { get; } = new();

    /// <summary>Threads that split each pass (the engine's own thread included); default one per core.</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>Most tokens in one pass over the weights (<see cref="EmbedderOptions.BatchTokens"/>); it also bounds a text's length.</summary>
    public int BatchTokens { get; init; } = EmbedderOptions.DefaultBatchTokens;

    /// <summary>How sequences are pooled; null: the model's.</summary>
    public PoolingType? Pooling { get; init; }

    /// <summary>Whether embeddings are L2-normalized (rank scores never are).</summary>
    public bool Normalize { get; init; } = true;

    /// <summary>Most sequences waiting at once; a submission beyond it is refused (<see cref="EmbeddingEngine.TrySubmit"/> returns false).</summary>
    public int MaxQueuedSequences { get; init; } = 65536;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> for a value that cannot work.</summary>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(Threads, 1, nameof(Threads));
        ArgumentOutOfRangeException.ThrowIfLessThan(BatchTokens, 1, nameof(BatchTokens));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxQueuedSequences, 1, nameof(MaxQueuedSequences));
    }
}

/// <summary>A snapshot of an <see cref="EmbeddingEngine"/>'s counters.</summary>
/// <param name="Queued">Sequences waiting now.</param>
/// <param name="Requests">Requests embedded.</param>
/// <param name="Sequences">Sequences embedded.</param>
/// <param name="Tokens">Tokens evaluated.</param>
/// <param name="Runs">Calls into the embedder (each one or more passes over the weights).</param>
/// <param name="Rejected">Submissions refused because the queue was full.</param>
/// <param name="RunTime">Time spent embedding.</param>
public sealed record EmbeddingEngineMetrics(int Queued, long Requests, long Sequences, long Tokens, long Runs, long Rejected, TimeSpan RunTime)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"Queued={Queued}; {Requests} requests, {Sequences} sequences, {Tokens} tokens in {Runs} runs ({RunTime.TotalSeconds:F2} s), {Rejected} rejected");
}

/// <summary>
/// Embeds the token sequences of many concurrent requests on one thread and one <see cref="Embedder"/>: whatever is
/// queued when a run starts goes into it together (up to four passes' worth of tokens), so concurrent requests share
/// passes over the weights as a <see cref="BatchEngine"/>'s sequences share decode steps. A sequence's vector is the same
/// bits whichever requests it runs with. Thread-safe; dispose to stop (waiting requests are cancelled).
/// </summary>
public sealed class EmbeddingEngine : IDisposable
{
    private sealed record Request(IReadOnlyList<int[]> Sequences, TaskCompletionSource<float[][]> Result, CancellationToken Cancellation)
    {
        public readonly int Tokens = Sequences.Sum(s => s.Length);
        public readonly long SubmittedAt = Stopwatch.GetTimestamp();
    }

    private readonly Embedder _embedder;
    private readonly ConcurrentQueue<Request> _queue = new();
    private readonly SemaphoreSlim _signal = new(0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _thread;
    private readonly EngineTelemetry _telemetry;
    private int _queued, _running;
    private long _requests, _sequences, _tokens, _runs, _rejected, _runTicks;

    /// <param name="model">The model (shared; it must outlive the engine).</param>
    /// <param name="options">Threads, token budget, pooling.</param>
    /// <exception cref="ArgumentException">Rank pooling on a model without a classifier head.</exception>
    public EmbeddingEngine(TransformerModel model, EmbeddingEngineOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= EmbeddingEngineOptions.Default;
        options.Validate();
        Options = options;
        _embedder = model.CreateEmbedder(new EmbedderOptions
        {
            Pooling = options.Pooling, Normalize = options.Normalize, BatchTokens = options.BatchTokens, Threads = options.Threads,
        });
        _telemetry = new EngineTelemetry("embeddings", model.Name, () => Volatile.Read(ref _queued), () => Volatile.Read(ref _running));
        _thread = new Thread(Loop) { IsBackground = true, Name = "ManagedLM embedding engine" };
        _thread.Start();
    }

    public EmbeddingEngineOptions Options { get; }
    /// <summary>The model's tokenizer and limits, as the engine's embedder applies them.</summary>
    public TransformerModel Model => _embedder.Model;
    /// <summary>How sequences are pooled.</summary>
    public PoolingType Pooling => _embedder.Pooling;
    /// <summary>Length of one embedding (with rank pooling, of one score vector).</summary>
    public int Dimensions => _embedder.Dimensions;
    /// <summary>Most tokens of one sequence.</summary>
    public int MaxTokens => _embedder.MaxTokens;

    /// <summary>The tokens a text is embedded as (with the model's special tokens). Thread-safe.</summary>
    /// <exception cref="ArgumentException">The text has no tokens or more than <see cref="MaxTokens"/>.</exception>
    public int[] Tokenize(string text) => _embedder.Tokenize(text);

    /// <summary>The tokens a reranker reads for a query and a document. Thread-safe.</summary>
    /// <exception cref="ArgumentException">The pair has no tokens or more than <see cref="MaxTokens"/>.</exception>
    public int[] TokenizePair(string query, string document) => _embedder.TokenizePair(query, document);

    /// <summary>Counters now.</summary>
    public EmbeddingEngineMetrics Metrics => new(Volatile.Read(ref _queued), Interlocked.Read(ref _requests), Interlocked.Read(ref _sequences),
        Interlocked.Read(ref _tokens), Interlocked.Read(ref _runs), Interlocked.Read(ref _rejected), TimeSpan.FromTicks(Interlocked.Read(ref _runTicks)));

    /// <summary>
    /// The vectors of <paramref name="sequences"/> (token ids, e.g. from <see cref="Tokenize"/>), in order: pooled
    /// embeddings, or with rank pooling the classifier's scores.
    /// </summary>
    /// <exception cref="ArgumentException">No sequences, an empty or too long one, or an id outside the vocabulary.</exception>
    /// <exception cref="InvalidOperationException">The pooling is <see cref="PoolingType.None"/>, or the queue is full.</exception>
    /// <exception cref="ObjectDisposedException">The engine was disposed.</exception>
    public Task<float[][]> EmbedAsync(IReadOnlyList<int[]> sequences, CancellationToken cancellationToken = default) =>
        TrySubmit(sequences, out var result, cancellationToken)
            ? result
            : throw new InvalidOperationException($"{Options.MaxQueuedSequences} sequences are waiting to be embedded; try again later.");

    /// <summary>
    /// Queues <paramref name="sequences"/> as <see cref="EmbedAsync"/> does, unless more than
    /// <see cref="EmbeddingEngineOptions.MaxQueuedSequences"/> would then wait: then returns false (retry later, or reject).
    /// </summary>
    /// <exception cref="ArgumentException">No sequences, an empty or too long one, or an id outside the vocabulary.</exception>
    /// <exception cref="InvalidOperationException">The pooling is <see cref="PoolingType.None"/>.</exception>
    /// <exception cref="ObjectDisposedException">The engine was disposed.</exception>
    public bool TrySubmit(IReadOnlyList<int[]> sequences, out Task<float[][]> result, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        ObjectDisposedException.ThrowIf(_stop.IsCancellationRequested, this);
        if (Pooling == PoolingType.None)
            throw new InvalidOperationException("This engine's pooling is None: one vector per token, which an engine does not serve.");
        if (sequences.Count == 0)
            throw new ArgumentException("There is nothing to embed.", nameof(sequences));
        for (int i = 0; i < sequences.Count; i++)
            _embedder.Check(sequences[i] ?? throw new ArgumentException($"Sequence {i} is null.", nameof(sequences)), i);
        if (Interlocked.Add(ref _queued, sequences.Count) > Options.MaxQueuedSequences)
        {
            Interlocked.Add(ref _queued, -sequences.Count);
            Interlocked.Increment(ref _rejected);
            result = Task.FromResult<float[][]>([]);
            return false;
        }
        var request = new Request(sequences, new TaskCompletionSource<float[][]>(TaskCreationOptions.RunContinuationsAsynchronously), cancellationToken);
        _queue.Enqueue(request);
        _signal.Release();
        result = request.Result.Task;
        return true;
    }

    private void Loop()
    {
        var taken = new List<Request>();
        var batch = new List<int[]>();
        while (true)
        {
            try
            {
                _signal.Wait(_stop.Token);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            // Whatever waits now, up to four passes' worth of tokens (and always the first request).
            long tokens = 0;
            while (_queue.TryPeek(out var next) && (taken.Count == 0 || tokens + next.Tokens <= 4L * Options.BatchTokens) && _queue.TryDequeue(out next))
            {
                if (taken.Count > 0)
                    _signal.Wait(0); // each request released the semaphore once
                Interlocked.Add(ref _queued, -next.Sequences.Count);
                if (next.Cancellation.IsCancellationRequested)
                {
                    next.Result.TrySetCanceled(next.Cancellation);
                    continue;
                }
                taken.Add(next);
                tokens += next.Tokens;
            }
            if (taken.Count == 0)
                continue;
            foreach (var r in taken)
                batch.AddRange(r.Sequences);
            long start = Stopwatch.GetTimestamp();
            Volatile.Write(ref _running, batch.Count);
            try
            {
                var vectors = _embedder.EmbedTokens(batch);
                _telemetry.Stepped(batch.Count);
                foreach (var r in taken)
                    _telemetry.Finished(r.SubmittedAt, 0, r.Tokens, 0);
                int at = 0;
                foreach (var r in taken)
                {
                    r.Result.TrySetResult(vectors[at..(at + r.Sequences.Count)]);
                    at += r.Sequences.Count;
                }
                Interlocked.Add(ref _requests, taken.Count);
                Interlocked.Add(ref _sequences, batch.Count);
                Interlocked.Add(ref _tokens, tokens);
            }
            catch (Exception e)
            {
                foreach (var r in taken)
                    r.Result.TrySetException(e);
            }
            Volatile.Write(ref _running, 0);
            Interlocked.Increment(ref _runs);
            Interlocked.Add(ref _runTicks, Stopwatch.GetElapsedTime(start).Ticks);
            taken.Clear();
            batch.Clear();
        }
        while (_queue.TryDequeue(out var left))
            left.Result.TrySetCanceled();
    }

    /// <summary>Stops the engine: the run in progress finishes, waiting requests are cancelled.</summary>
    public void Dispose()
    {
        if (_stop.IsCancellationRequested)
            return;
        _stop.Cancel();
        _thread.Join();
        _embedder.Dispose();
        _telemetry.Dispose();
        _stop.Dispose();
        _signal.Dispose();
    }
}

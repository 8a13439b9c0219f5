using ManagedLM.Model;

namespace ManagedLM.Generation;

/// <summary>
/// A bounded set of reusable generators of one model. <see cref="Rent"/> hands out a free generator
/// (creating one while fewer than <see cref="MaxSize"/> exist, else waiting for a return); disposing
/// the lease resets the generator (tokens, sampler) and returns it. KV-cache memory stays allocated
/// for the next request. Thread-safe.
/// </summary>
/// <remarks>
/// With <c>keepCaches</c>, returned generators keep their tokens and KV caches instead, and
/// <see cref="RentAsync(IReadOnlyList{int}, CancellationToken)"/> hands out the free one whose cache holds the longest
/// prefix of the prompt: a conversation's next turn, or a request sharing a system prompt, evaluates only what is new.
/// </remarks>
public sealed class GeneratorPool : IDisposable
{
    private readonly TransformerModel _model;
    private readonly GeneratorOptions _options;
    private readonly SemaphoreSlim _slots;
    private readonly List<Generator> _free = [];
    private readonly List<Generator> _all = [];
    private readonly Lock _lock = new();
    private bool _disposed;

    public int MaxSize { get; }

    /// <summary>Generators created so far (at most <see cref="MaxSize"/>).</summary>
    public int Created { get { lock (_lock) return _all.Count; } }

    /// <summary>Leases that could be granted now without waiting.</summary>
    public int Available => _slots.CurrentCount;

    /// <summary>Whether returned generators keep their caches (see the remarks).</summary>
    public bool KeepsCaches { get; }

    public GeneratorPool(TransformerModel model, GeneratorOptions? options = null, int maxSize = 0, bool keepCaches = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = model;
        _options = options ?? GeneratorOptions.Default;
        KeepsCaches = keepCaches;
        MaxSize = maxSize == 0 ? Environment.ProcessorCount : maxSize;
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxSize, nameof(maxSize));
        _slots = new SemaphoreSlim(MaxSize, MaxSize);
    }

    /// <summary>Rents a generator, waiting while all <see cref="MaxSize"/> are out.</summary>
    public GeneratorLease Rent(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _slots.Wait(cancellationToken);
        return Take(null);
    }

    /// <summary>Rents a generator, awaiting while all <see cref="MaxSize"/> are out.</summary>
    public async ValueTask<GeneratorLease> RentAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
        return Take(null);
    }

    /// <summary>As <see cref="RentAsync(CancellationToken)"/>, preferring the free generator whose cache holds the longest prefix of <paramref name="promptTokens"/>.</summary>
    public async ValueTask<GeneratorLease> RentAsync(IReadOnlyList<int> promptTokens, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(promptTokens);
        ObjectDisposedException.ThrowIf(_disposed, this);
        await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
        return Take(promptTokens as int[] ?? [.. promptTokens]);
    }

    // The most recently returned free generator, or the one sharing the longest prefix with the prompt; else a new one.
    private GeneratorLease Take(int[]? prompt)
    {
        try
        {
            lock (_lock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                int i = prompt is null ? _free.Count - 1 : Generator.LongestCachedPrefix(_free, prompt);
                if (i >= 0)
                {
                    var g = _free[i];
                    _free.RemoveAt(i);
                    return new GeneratorLease(this, g);
                }
            }
            var created = _model.CreateGenerator(_options);
            lock (_lock)
                _all.Add(created);
            return new GeneratorLease(this, created);
        }
        catch
        {
            _slots.Release();
            throw;
        }
    }

    internal void Return(Generator generator)
    {
        bool keep, dispose = false;
        try
        {
            if (KeepsCaches)
            {
                generator.Enter();   // throws while still busy; the cache stays as it is
                generator.Exit();
            }
            else
                generator.Reset();
            keep = true;
        }
        catch (InvalidOperationException)
        {
            keep = false; // still busy (an enumeration never disposed): not safe to hand out again
        }
        lock (_lock)
        {
            if (keep && !_disposed)
                _free.Add(generator);
            else
            {
                _all.Remove(generator);
                dispose = keep;
            }
        }
        if (dispose)
            generator.Dispose();
        _slots.Release();
    }

    /// <summary>Disposes the free generators now, and leased ones when they are returned (a running request is not cut off).</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
                return;
            _disposed = true;
            foreach (var g in _free)
            {
                g.Dispose();
                _all.Remove(g);
            }
            _free.Clear();
        }
    }
}

/// <summary>A rented generator; dispose to return it to its <see cref="GeneratorPool"/>.</summary>
public sealed class GeneratorLease : IDisposable
{
    private GeneratorPool? _pool;
    private readonly Generator _generator;

    internal GeneratorLease(GeneratorPool pool, Generator generator)
    {
        _pool = pool;
        _generator = generator;
    }

    /// <summary>The rented generator (valid until the lease is disposed).</summary>
    public Generator Generator => _pool is not null ? _generator : throw new ObjectDisposedException(nameof(GeneratorLease));

    public void Dispose() => Interlocked.Exchange(ref _pool, null)?.Return(_generator);
}

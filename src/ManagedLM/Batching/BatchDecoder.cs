using ManagedLM.Generation;
using ManagedLM.Inference;
using ManagedLM.Kernels.Threading;
using ManagedLM.Model;

namespace ManagedLM.Batching;

/// <summary>One generator's part of a batch step: the tokens to evaluate after what it has cached.</summary>
/// <param name="Generator">The sequence: its KV cache, position and history.</param>
/// <param name="Tokens">One token (a decode step) or a prompt chunk.</param>
public readonly record struct BatchItem(Generator Generator, ReadOnlyMemory<int> Tokens);

/// <summary>
/// Advances several generators of one model in one forward pass: every weight matrix is read once for all their tokens,
/// while each generator keeps its own KV cache, position and history (their lengths may differ, and a step may mix
/// prompt chunks with single decode tokens). Each generator ends the step with the logits after its last token, exactly
/// the logits it would have computed alone. Owns its scratch and worker threads: use one per decoding thread.
/// </summary>
public sealed class BatchDecoder : IDisposable
{
    private readonly TransformerModel _model;
    private readonly WorkerPool? _pool;
    private readonly ForwardState _state;

    /// <summary>Threads that split each matmul (the calling thread included).</summary>
    public int Threads { get; }

    /// <param name="model">The model whose generators this decoder steps.</param>
    /// <param name="threads">Threads per step (default: one per core).</param>
    public BatchDecoder(TransformerModel model, int? threads = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        int t = threads ?? Environment.ProcessorCount;
        ArgumentOutOfRangeException.ThrowIfLessThan(t, 1, nameof(threads));
        _model = model;
        Threads = t;
        _pool = t > 1 ? new WorkerPool(t) : null;
        _state = new ForwardState(model.Config, _pool);
    }

    /// <summary>
    /// Evaluates each item's tokens after its generator's cached ones, in one pass over the weights. Afterwards each
    /// generator's <see cref="Generator.Logits"/> are those after its last token.
    /// </summary>
    /// <exception cref="ArgumentException">A generator of another model, one listed twice, an empty token list, a token outside the vocabulary, or tokens past a generator's context.</exception>
    /// <exception cref="InvalidOperationException">A generator is in use elsewhere.</exception>
    public void Decode(ReadOnlySpan<BatchItem> items)
    {
        for (int i = 0; i < items.Length; i++)
            for (int j = 0; j < i; j++)
                if (ReferenceEquals(items[j].Generator, items[i].Generator))
                    throw new ArgumentException("A generator is listed twice in one step.", nameof(items));
        int entered = 0;
        try
        {
            for (; entered < items.Length; entered++)
                items[entered].Generator.Enter();
            DecodeHeld(items);
        }
        finally
        {
            for (int i = 0; i < entered; i++)
                items[i].Generator.Exit();
        }
    }

    /// <summary><see cref="Decode"/> for generators the caller already holds.</summary>
    internal void DecodeHeld(ReadOnlySpan<BatchItem> items)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        int rows = 0, vocab = _model.Config.VocabSize;
        for (int i = 0; i < items.Length; i++)
        {
            var (g, tokens) = items[i];
            ArgumentNullException.ThrowIfNull(g);
            if (g.Model != _model)
                throw new ArgumentException("A generator belongs to another model.", nameof(items));
            if (tokens.IsEmpty)
                throw new ArgumentException("Each item needs at least one token.", nameof(items));
            if (g.Position + tokens.Length > g.ContextLength)
                throw new ArgumentException($"{tokens.Length} tokens after {g.Position} exceed the context length {g.ContextLength}.", nameof(items));
            foreach (int t in tokens.Span)
            {
                if ((uint)t >= (uint)vocab)
                    throw new ArgumentException($"Token id {t} is outside the vocabulary [0, {vocab}).", nameof(items));
            }
            rows += tokens.Length;
        }
        if (items.IsEmpty)
            return;

        _state.EnsureCapacity(rows, items.Length);
        int r = 0;
        foreach (var (g, tokens) in items)
        {
            g.Cache.EnsureCapacity(g.Position + tokens.Length);
            var span = tokens.Span;
            for (int i = 0; i < span.Length; i++)
                _state.Rows[r++] = new ForwardRow(g.Cache, span[i], g.Position + i, Logits: i == span.Length - 1);
        }
        Transformer.Forward(_model, _state, rows);
        for (int i = 0; i < items.Length; i++)
            items[i].Generator.Accept(items[i].Tokens.Span, _state.Logits.AsSpan(i * vocab, vocab));
    }

    private bool _disposed;

    /// <summary>Stops the worker threads.</summary>
    public void Dispose()
    {
        _disposed = true;
        _pool?.Dispose();
    }
}

using System.Runtime.CompilerServices;
using System.Threading.Channels;
using ManagedLM.Generation;

namespace ManagedLM.Batching;

/// <summary>
/// A request submitted to a <see cref="BatchEngine"/>: its tokens stream through <see cref="Tokens"/> as the engine
/// produces them, and <see cref="Completion"/> gives the whole result (text, ids, stop reason, timings).
/// </summary>
public sealed class BatchRequest
{
    private readonly Channel<TokenOutput> _tokens = Channel.CreateUnbounded<TokenOutput>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly TaskCompletionSource<GenerationResult> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _cancellation;
    private readonly CancellationTokenRegistration _failWhenCancelled;
    private int _reading;
    private int _state; // Queued, Running or Ended

    internal BatchRequest(long id, int[] prompt, GenerationOptions options, CancellationToken cancellationToken)
    {
        Id = id;
        SubmittedAt = System.Diagnostics.Stopwatch.GetTimestamp();
        PromptTokens = prompt;
        Options = options;
        _cancellation = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        CancellationToken = _cancellation.Token;
        // A request cancelled while it waits in the queue ends at once; a running one leaves at the next step.
        _failWhenCancelled = CancellationToken.Register(() =>
        {
            if (Interlocked.CompareExchange(ref _state, Ended, Queued) == Queued)
                Fail(new OperationCanceledException(CancellationToken));
        });
    }

    private const int Queued = 0, Running = 1, Ended = 2;

    /// <summary>Moves the request from the queue into the batch; false when it was cancelled (and has failed) meanwhile.</summary>
    internal bool Start() => Interlocked.CompareExchange(ref _state, Running, Queued) == Queued;

    /// <summary>When the request was made, and when its first token came (0 before): <see cref="System.Diagnostics.Stopwatch"/> timestamps.</summary>
    internal long SubmittedAt { get; }
    internal long FirstTokenAt { get; set; }

    /// <summary>The request's span (<see cref="EngineTelemetry.Begin"/>), ended when it completes or fails.</summary>
    internal System.Diagnostics.Activity? Span { get => _span; set => _span = value; }
    private System.Diagnostics.Activity? _span;

    /// <summary>Order of submission (0, 1, 2, ...).</summary>
    public long Id { get; }

    /// <summary>The prompt's token ids.</summary>
    public IReadOnlyList<int> Prompt => PromptTokens;

    internal int[] PromptTokens { get; }

    internal GenerationOptions Options { get; }

    /// <summary>The result once the request has finished; cancelled or faulted when it did not.</summary>
    public Task<GenerationResult> Completion => _completion.Task;

    /// <summary>Set when the request is to leave the batch (the caller's token, <see cref="Cancel"/>, or a stream disposed early).</summary>
    internal CancellationToken CancellationToken { get; }

    /// <summary>Asks the engine to drop the request at its next step.</summary>
    public void Cancel()
    {
        try
        {
            _cancellation.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Already finished.
        }
    }

    /// <summary>
    /// The generated tokens as they come (read once). Ends when the request finishes; throws
    /// <see cref="OperationCanceledException"/> if it was cancelled. Disposing the enumeration early cancels the request.
    /// </summary>
    public IAsyncEnumerable<TokenOutput> Tokens => Interlocked.Exchange(ref _reading, 1) == 0
        ? Read(CancellationToken.None)
        : throw new InvalidOperationException("The tokens of a request can be read once.");

    private async IAsyncEnumerable<TokenOutput> Read([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        bool completed = false;
        try
        {
            await foreach (var t in _tokens.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
                yield return t;
            completed = true;
        }
        finally
        {
            if (!completed)
                Cancel();
        }
    }

    internal void Write(TokenOutput output) => _tokens.Writer.TryWrite(output);

    internal void Complete(GenerationResult result)
    {
        EngineTelemetry.End(Interlocked.Exchange(ref _span, null), result.PromptTokens.Length, result.GeneratedTokens.Length, result.StopReason.ToString());
        _tokens.Writer.TryComplete();
        _completion.TrySetResult(result);
    }

    /// <summary>The request never entered the queue (full, closed, or the caller gave up waiting): its span ends with the error.</summary>
    internal void Abandon(Exception error) => EngineTelemetry.End(Interlocked.Exchange(ref _span, null), PromptTokens.Length, 0, null, error);

    internal void Fail(Exception error)
    {
        EngineTelemetry.End(Interlocked.Exchange(ref _span, null), PromptTokens.Length, 0, null, error);
        _tokens.Writer.TryComplete(error);
        if (error is OperationCanceledException canceled)
            _completion.TrySetCanceled(canceled.CancellationToken);
        else
            _completion.TrySetException(error);
    }

    /// <summary>Called by the engine once it no longer looks at the request.</summary>
    internal void Release()
    {
        _failWhenCancelled.Dispose();
        _cancellation.Dispose();
    }
}

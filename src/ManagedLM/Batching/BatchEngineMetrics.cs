using System.Collections.Immutable;
using System.Globalization;

namespace ManagedLM.Batching;

/// <summary>A snapshot of a <see cref="BatchEngine"/>'s counters.</summary>
/// <param name="Active">Sequences in the batch now.</param>
/// <param name="Queued">Requests waiting for a place now.</param>
/// <param name="Admitted">Requests that entered the batch.</param>
/// <param name="Completed">Requests that finished (end of generation, a stop string, max tokens or a full context).</param>
/// <param name="Cancelled">Requests cancelled before they finished.</param>
/// <param name="Rejected">Submissions refused because the queue was full.</param>
/// <param name="Steps">Forward passes run.</param>
/// <param name="PromptTokens">Prompt tokens evaluated.</param>
/// <param name="SharedPromptTokens">Prompt tokens not evaluated because a cached prefix (own or shared) held them.</param>
/// <param name="GeneratedTokens">Tokens generated.</param>
/// <param name="StepTime">Time spent in forward passes.</param>
/// <param name="BatchSizes">Steps by how many sequences they advanced: counts for 1, 2, 3–4, 5–8, 9–16, 17–32, 33–64 and more.</param>
public sealed record BatchEngineMetrics(
    int Active, int Queued, long Admitted, long Completed, long Cancelled, long Rejected, long Steps,
    long PromptTokens, long SharedPromptTokens, long GeneratedTokens, TimeSpan StepTime, ImmutableArray<long> BatchSizes)
{
    /// <summary>Upper bounds of the <see cref="BatchSizes"/> buckets (the last is open).</summary>
    public static ImmutableArray<int> BatchSizeBounds { get; } = [1, 2, 4, 8, 16, 32, 64, int.MaxValue];

    /// <summary>Generated tokens per second of step time (all sequences together).</summary>
    public double GeneratedTokensPerSecond => GeneratedTokens / Math.Max(StepTime.TotalSeconds, 1e-9);

    /// <summary>Mean sequences advanced per step.</summary>
    public double MeanBatchSize { get; init; }

    /// <summary>
    /// One line: the requests now and so far, the steps and the tokens, e.g. <c>Active=2, Queued=0; requests: 9 admitted,
    /// 7 completed, 0 cancelled, 0 rejected; 120 steps (mean batch 1.8); prompt 45 tokens (shared 10), generated 210 tokens,
    /// 812.3 tokens/s</c>.
    /// </summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"Active={Active}, Queued={Queued}; requests: {Admitted} admitted, {Completed} completed, {Cancelled} cancelled, {Rejected} rejected; {Steps} steps (mean batch {MeanBatchSize:F1}); prompt {PromptTokens} tokens (shared {SharedPromptTokens}), generated {GeneratedTokens} tokens, {GeneratedTokensPerSecond:F1} tokens/s");
}

/// <summary>The engine's counters: written by the decoding thread, read by any thread.</summary>
internal sealed class EngineCounters
{
    private long _admitted, _completed, _cancelled, _rejected, _steps, _promptTokens, _sharedTokens, _generated, _stepTicks, _sequences;
    private readonly long[] _sizes = new long[BatchEngineMetrics.BatchSizeBounds.Length];

    public void Admitted(int sharedTokens)
    {
        Interlocked.Increment(ref _admitted);
        Interlocked.Add(ref _sharedTokens, sharedTokens);
    }

    public void Completed() => Interlocked.Increment(ref _completed);
    public void Cancelled() => Interlocked.Increment(ref _cancelled);
    public void Rejected() => Interlocked.Increment(ref _rejected);

    public void Stepped(int sequences, int promptTokens, int generated, TimeSpan time)
    {
        Interlocked.Increment(ref _steps);
        Interlocked.Add(ref _sequences, sequences);
        Interlocked.Add(ref _promptTokens, promptTokens);
        Interlocked.Add(ref _generated, generated);
        Interlocked.Add(ref _stepTicks, time.Ticks);
        int bucket = 0;
        while (sequences > BatchEngineMetrics.BatchSizeBounds[bucket])
            bucket++;
        Interlocked.Increment(ref _sizes[bucket]);
    }

    public BatchEngineMetrics Snapshot(int active, int queued)
    {
        long steps = Interlocked.Read(ref _steps);
        return new BatchEngineMetrics(active, queued, Interlocked.Read(ref _admitted), Interlocked.Read(ref _completed),
            Interlocked.Read(ref _cancelled), Interlocked.Read(ref _rejected), steps, Interlocked.Read(ref _promptTokens),
            Interlocked.Read(ref _sharedTokens), Interlocked.Read(ref _generated), TimeSpan.FromTicks(Interlocked.Read(ref _stepTicks)),
            [.. _sizes.Select(v => Interlocked.Read(ref v))])
        {
            MeanBatchSize = steps == 0 ? 0 : Interlocked.Read(ref _sequences) / (double)steps,
        };
    }
}

using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Globalization;
using System.Text;
using ManagedLM.Batching;

namespace ManagedLM.Server;

/// <summary>The server's counters and histograms, written by request handlers and rendered as Prometheus text.</summary>
internal sealed class ServerMetrics
{
    private static readonly ImmutableArray<double> s_latencyBounds = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

    private readonly ConcurrentDictionary<(string Endpoint, int Status), RequestCounter> _requests = new();
    private long _inFlight, _promptTokens, _completionTokens;

    /// <summary>Whole-request time of completion requests (received to last byte).</summary>
    public Histogram Latency { get; } = new(s_latencyBounds);

    /// <summary>Time from receiving a completion request to its first generated token.</summary>
    public Histogram TimeToFirstToken { get; } = new(s_latencyBounds);

    public void Started() => Interlocked.Increment(ref _inFlight);

    public void Finished(string endpoint, int status)
    {
        Interlocked.Decrement(ref _inFlight);
        _requests.GetOrAdd((endpoint, status), _ => new RequestCounter()).Increment();
    }

    public void Usage(int promptTokens, int completionTokens)
    {
        Interlocked.Add(ref _promptTokens, promptTokens);
        Interlocked.Add(ref _completionTokens, completionTokens);
    }

    private static readonly BatchEngineMetrics NoBatches = new(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, TimeSpan.Zero, [.. BatchEngineMetrics.BatchSizeBounds.Select(_ => 0L)]);
    private static readonly EmbeddingEngineMetrics NoEmbeddings = new(0, 0, 0, 0, 0, 0, TimeSpan.Zero);

    /// <summary>
    /// The Prometheus text exposition (version 0.0.4) of these metrics and the engines' (null: an engine the server has not
    /// started, all zeros).
    /// </summary>
    public string Render(BatchEngineMetrics? batches, EmbeddingEngineMetrics? embeddings = null)
    {
        var engine = batches ?? NoBatches;
        var e = embeddings ?? NoEmbeddings;
        var o = new StringBuilder();
        Header(o, "managedlm_http_requests_total", "counter", "HTTP requests by endpoint and status (499: the client went away).");
        foreach (var ((endpoint, status), count) in _requests.OrderBy(p => p.Key.Endpoint, StringComparer.Ordinal).ThenBy(p => p.Key.Status))
            o.Append(CultureInfo.InvariantCulture, $"managedlm_http_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {count.Value}\n");
        Gauge(o, "managedlm_http_requests_in_flight", "HTTP requests being handled now.", Interlocked.Read(ref _inFlight));
        Counter(o, "managedlm_prompt_tokens_total", "Prompt tokens of completed completion requests.", Interlocked.Read(ref _promptTokens));
        Counter(o, "managedlm_completion_tokens_total", "Tokens generated for completed completion requests.", Interlocked.Read(ref _completionTokens));
        Latency.Render(o, "managedlm_request_duration_seconds", "Completion request time, received to last byte.");
        TimeToFirstToken.Render(o, "managedlm_time_to_first_token_seconds", "Completion request time, received to first generated token.");

        Gauge(o, "managedlm_queue_depth", "Requests waiting for a place in the batch.", engine.Queued);
        Gauge(o, "managedlm_active_sequences", "Sequences in the batch.", engine.Active);
        Counter(o, "managedlm_engine_requests_admitted_total", "Requests that entered the batch.", engine.Admitted);
        Counter(o, "managedlm_engine_requests_completed_total", "Requests that finished.", engine.Completed);
        Counter(o, "managedlm_engine_requests_cancelled_total", "Requests cancelled before they finished.", engine.Cancelled);
        Counter(o, "managedlm_engine_requests_rejected_total", "Requests refused because the queue was full.", engine.Rejected);
        Counter(o, "managedlm_engine_prompt_tokens_total", "Prompt tokens evaluated.", engine.PromptTokens);
        Counter(o, "managedlm_engine_shared_prompt_tokens_total", "Prompt tokens taken from a cached prefix instead of evaluated.", engine.SharedPromptTokens);
        Counter(o, "managedlm_engine_generated_tokens_total", "Tokens generated.", engine.GeneratedTokens);
        Seconds(o, "managedlm_engine_step_seconds_total", "Time spent in forward passes.", engine.StepTime);

        Header(o, "managedlm_batch_size", "histogram", "Sequences advanced per forward pass.");
        long cumulative = 0;
        for (int i = 0; i < engine.BatchSizes.Length; i++)
        {
            cumulative += engine.BatchSizes[i];
            int bound = BatchEngineMetrics.BatchSizeBounds[i];
            string le = bound == int.MaxValue ? "+Inf" : bound.ToString(CultureInfo.InvariantCulture);
            o.Append(CultureInfo.InvariantCulture, $"managedlm_batch_size_bucket{{le=\"{le}\"}} {cumulative}\n");
        }
        o.Append(CultureInfo.InvariantCulture, $"managedlm_batch_size_sum {Math.Round(engine.MeanBatchSize * engine.Steps)}\n");
        o.Append(CultureInfo.InvariantCulture, $"managedlm_batch_size_count {engine.Steps}\n");

        Gauge(o, "managedlm_embedding_queue_depth", "Sequences waiting to be embedded.", e.Queued);
        Counter(o, "managedlm_embedding_requests_total", "Embedding and rerank requests embedded.", e.Requests);
        Counter(o, "managedlm_embedding_sequences_total", "Sequences embedded (texts, or query/document pairs).", e.Sequences);
        Counter(o, "managedlm_embedding_tokens_total", "Tokens evaluated for embeddings.", e.Tokens);
        Counter(o, "managedlm_embedding_runs_total", "Runs of the embedding engine (each one or more passes over the weights).", e.Runs);
        Counter(o, "managedlm_embedding_requests_rejected_total", "Embedding requests refused because the queue was full.", e.Rejected);
        Seconds(o, "managedlm_embedding_seconds_total", "Time spent embedding.", e.RunTime);
        return o.ToString();
    }

    private static void Header(StringBuilder o, string name, string type, string help) =>
        o.Append("# HELP ").Append(name).Append(' ').Append(help).Append("\n# TYPE ").Append(name).Append(' ').Append(type).Append('\n');

    private static void Counter(StringBuilder o, string name, string help, long value)
    {
        Header(o, name, "counter", help);
        o.Append(name).Append(' ').Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');
    }

    private static void Seconds(StringBuilder o, string name, string help, TimeSpan value)
    {
        Header(o, name, "counter", help);
        o.Append(CultureInfo.InvariantCulture, $"{name} {value.TotalSeconds}\n");
    }

    private static void Gauge(StringBuilder o, string name, string help, long value)
    {
        Header(o, name, "gauge", help);
        o.Append(name).Append(' ').Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');
    }

    private sealed class RequestCounter
    {
        private long _value;
        public long Value => Interlocked.Read(ref _value);
        public void Increment() => Interlocked.Increment(ref _value);
    }

    /// <summary>A Prometheus histogram over fixed upper bounds (seconds).</summary>
    internal sealed class Histogram(ImmutableArray<double> bounds)
    {
        private readonly Lock _lock = new();
        private readonly long[] _counts = new long[bounds.Length + 1];
        private double _sum;
        private long _count;

        public void Observe(double value)
        {
            int i = 0;
            while (i < bounds.Length && value > bounds[i])
                i++;
            lock (_lock)
            {
                _counts[i]++;
                _sum += value;
                _count++;
            }
        }

        /// <summary>Observations so far.</summary>
        public long Count
        {
            get
            {
                lock (_lock)
                    return _count;
            }
        }

        public void Render(StringBuilder o, string name, string help)
        {
            Header(o, name, "histogram", help);
            lock (_lock)
            {
                long cumulative = 0;
                for (int i = 0; i <= bounds.Length; i++)
                {
                    cumulative += _counts[i];
                    string le = i == bounds.Length ? "+Inf" : bounds[i].ToString(CultureInfo.InvariantCulture);
                    o.Append(CultureInfo.InvariantCulture, $"{name}_bucket{{le=\"{le}\"}} {cumulative}\n");
                }
                o.Append(CultureInfo.InvariantCulture, $"{name}_sum {_sum}\n{name}_count {_count}\n");
            }
        }
    }
}

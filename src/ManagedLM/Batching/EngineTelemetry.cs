using System.Collections.Immutable;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using ManagedLM.Kernels;

namespace ManagedLM.Batching;

/// <summary>
/// One engine's instruments on a <see cref="Meter"/> named <see cref="MeterName"/> (collect them with OpenTelemetry's
/// <c>AddMeter("ManagedLM")</c> or a <see cref="MeterListener"/>), named after OpenTelemetry's GenAI semantic conventions
/// where they have one: <c>gen_ai.client.token.usage</c> (tokens per request, <c>gen_ai.token.type</c> input or output),
/// <c>gen_ai.server.request.duration</c>, <c>gen_ai.server.time_to_first_token</c> and
/// <c>gen_ai.server.time_per_output_token</c> (seconds), tagged with <c>gen_ai.operation.name</c>,
/// <c>gen_ai.provider.name</c> = managedlm and <c>gen_ai.request.model</c>; and the engine's own:
/// <c>managedlm.engine.queue_depth</c>, <c>managedlm.engine.active_sequences</c> (gauges) and
/// <c>managedlm.engine.batch_size</c> (sequences per forward pass). Each request is also a span of the
/// <see cref="ActivitySource"/> of the same name (<c>"{operation} {model}"</c>, a child of the caller's span when it was
/// submitted), ended when the request ends, with <c>gen_ai.usage.input_tokens</c>/<c>output_tokens</c> and
/// <c>gen_ai.response.finish_reasons</c>, or an error status.
/// </summary>
internal sealed class EngineTelemetry : IDisposable
{
    /// <summary>The name of the meters and of the activity source the engines record on.</summary>
    public const string MeterName = "ManagedLM";

    [ThreadSafeStatic("an ActivitySource is thread-safe: it holds only the listeners that subscribe to it")]
    private static readonly ActivitySource Source = new(MeterName, typeof(EngineTelemetry).Assembly.GetName().Version?.ToString());

    private static readonly ImmutableArray<double> SecondBounds = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
    private static readonly ImmutableArray<long> TokenBounds = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304];

    private readonly Meter _meter;
    private readonly Histogram<long> _tokens;
    private readonly Histogram<double> _duration, _firstToken, _perOutputToken;
    private readonly Histogram<int> _batchSize;
    private readonly KeyValuePair<string, object?>[] _tags;
    private readonly KeyValuePair<string, object?>[] _input, _output;
    private readonly string _spanName;

    public EngineTelemetry(string operation, string model, Func<int> queued, Func<int> active)
    {
        _spanName = $"{operation} {model}";
        _meter = new Meter(MeterName, typeof(EngineTelemetry).Assembly.GetName().Version?.ToString());
        _tags = [new("gen_ai.operation.name", operation), new("gen_ai.provider.name", "managedlm"), new("gen_ai.request.model", model)];
        _input = [.. _tags, new("gen_ai.token.type", "input")];
        _output = [.. _tags, new("gen_ai.token.type", "output")];
        _tokens = _meter.CreateHistogram("gen_ai.client.token.usage", "{token}", "Tokens per request, input (prompt) and output (generated).",
            advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = TokenBounds });
        _duration = Seconds("gen_ai.server.request.duration", "Time from submission to the request's end.");
        _firstToken = Seconds("gen_ai.server.time_to_first_token", "Time from submission to the first generated token.");
        _perOutputToken = Seconds("gen_ai.server.time_per_output_token", "Time per generated token after the first.");
        _batchSize = _meter.CreateHistogram("managedlm.engine.batch_size", "{sequence}", "Sequences advanced per forward pass (embeddings: per run of the engine).",
            advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64] });
        _meter.CreateObservableGauge("managedlm.engine.queue_depth", () => new Measurement<int>(queued(), _tags), "{request}", "Requests waiting for a place.");
        _meter.CreateObservableGauge("managedlm.engine.active_sequences", () => new Measurement<int>(active(), _tags), "{sequence}", "Sequences being evaluated now.");
    }

    /// <summary>
    /// A request's span, started as a child of the caller's current span (null when nothing listens); the caller's
    /// <see cref="Activity.Current"/> stays as it was, since the span ends on the engine's thread.
    /// </summary>
    public Activity? Begin(int maxTokens = 0, float? temperature = null)
    {
        if (!Source.HasListeners())
            return null;
        var caller = Activity.Current;
        var span = Source.StartActivity(_spanName, ActivityKind.Internal);
        Activity.Current = caller;
        if (span is null)
            return null;
        foreach (var (key, value) in _tags)
            span.SetTag(key, value);
        if (maxTokens > 0)
            span.SetTag("gen_ai.request.max_tokens", maxTokens);
        if (temperature is { } t)
            span.SetTag("gen_ai.request.temperature", t);
        return span;
    }

    /// <summary>Ends a request's span: its usage and finish reason, or the error it failed with.</summary>
    public static void End(Activity? span, int inputTokens, int outputTokens, string? finishReason, Exception? error = null)
    {
        if (span is null)
            return;
        span.SetTag("gen_ai.usage.input_tokens", inputTokens);
        if (error is null)
        {
            span.SetTag("gen_ai.usage.output_tokens", outputTokens);
            if (finishReason is not null)
                span.SetTag("gen_ai.response.finish_reasons", new[] { finishReason });
        }
        else
        {
            span.SetTag("error.type", error.GetType().FullName);
            span.SetStatus(ActivityStatusCode.Error, error.Message);
        }
        span.Stop();
    }

    private Histogram<double> Seconds(string name, string description) =>
        _meter.CreateHistogram(name, "s", description, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondBounds });

    /// <summary>A forward pass over <paramref name="sequences"/> sequences.</summary>
    public void Stepped(int sequences)
    {
        if (_batchSize.Enabled)
            _batchSize.Record(sequences, _tags);
    }

    /// <summary>
    /// A finished request: submitted at <paramref name="submitted"/>, first token at <paramref name="firstToken"/> (0 for
    /// none), ended now (<see cref="Stopwatch"/> timestamps).
    /// </summary>
    public void Finished(long submitted, long firstToken, int inputTokens, int outputTokens)
    {
        long now = Stopwatch.GetTimestamp();
        if (_tokens.Enabled)
        {
            _tokens.Record(inputTokens, _input);
            if (outputTokens > 0)
                _tokens.Record(outputTokens, _output);
        }
        if (_duration.Enabled)
            _duration.Record(Stopwatch.GetElapsedTime(submitted, now).TotalSeconds, _tags);
        if (firstToken != 0)
        {
            if (_firstToken.Enabled)
                _firstToken.Record(Stopwatch.GetElapsedTime(submitted, firstToken).TotalSeconds, _tags);
            if (outputTokens > 1 && _perOutputToken.Enabled)
                _perOutputToken.Record(Stopwatch.GetElapsedTime(firstToken, now).TotalSeconds / (outputTokens - 1), _tags);
        }
    }

    public void Dispose() => _meter.Dispose();
}

using Microsoft.Extensions.Logging;

namespace ManagedLM.Server;

/// <summary>The messages ManagedLM's hosting and server write through <see cref="ILogger"/>.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "{Method} {Path} {StatusCode} {ElapsedMilliseconds} ms")]
    public static partial void Request(ILogger logger, string method, string path, int statusCode, double elapsedMilliseconds);

    [LoggerMessage(2, LogLevel.Error, "{Method} {Path} failed")]
    public static partial void RequestFailed(ILogger logger, string method, string path, Exception exception);

    [LoggerMessage(3, LogLevel.Information, "Loading the model {Path}")]
    public static partial void Loading(ILogger logger, string path);

    [LoggerMessage(4, LogLevel.Information, "Loaded {Model} ({Architecture}, {Layers} layers, {Embedding} wide, vocabulary {Vocabulary}, context {Context}) in {ElapsedMilliseconds} ms")]
    public static partial void Loaded(ILogger logger, string model, string architecture, int layers, int embedding, int vocabulary, int context, long elapsedMilliseconds);

    [LoggerMessage(5, LogLevel.Information, "Batch engine started: {Parallel} sequences of {Context} tokens, {Queue} may wait")]
    public static partial void EngineStarted(ILogger logger, int parallel, int context, int queue);

    [LoggerMessage(6, LogLevel.Information, "Stopping: {Active} requests running and {Queued} queued; no new ones are admitted")]
    public static partial void Draining(ILogger logger, int active, int queued);

    [LoggerMessage(7, LogLevel.Information, "Stopped: every request finished")]
    public static partial void Drained(ILogger logger);

    [LoggerMessage(8, LogLevel.Warning, "Stopped at the host's shutdown timeout, before every request finished: the rest ended with an error")]
    public static partial void DrainCut(ILogger logger);
}

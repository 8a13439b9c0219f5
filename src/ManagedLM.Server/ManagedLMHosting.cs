using ManagedLM.Batching;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ManagedLM.Server;

/// <summary>
/// Where <c>AddManagedLM</c>'s options came from: the prefix of their keys in messages, the content root of relative paths,
/// and whether the app registered a model of its own (then no <see cref="ManagedLMOptions.ModelPath"/> is needed).
/// </summary>
internal sealed class ManagedLMServices(string keyPrefix, string? contentRoot, bool ownModel)
{
    /// <summary>Whether the app registered its own <see cref="Model.TransformerModel"/> before <c>AddManagedLM</c>.</summary>
    public bool OwnModel => ownModel;

    /// <summary>An option's key as the user wrote it: ManagedLM:ModelPath, or ManagedLMOptions.ModelPath.</summary>
    public string Key(string option) => keyPrefix + option;

    /// <summary>A path of the options, relative ones taken from the content root.</summary>
    public string Resolve(string path) => Path.GetFullPath(path, contentRoot ?? Directory.GetCurrentDirectory());
}

/// <summary>The chat template of <see cref="ManagedLMOptions.ChatTemplatePath"/>; null: the model's own.</summary>
internal sealed record ManagedLMTemplate(Chat.ChatTemplate? Template);

/// <summary>Checks <see cref="ManagedLMOptions"/> when the host starts, naming each bad key.</summary>
internal sealed class ManagedLMOptionsValidator(ManagedLMServices keys) : IValidateOptions<ManagedLMOptions>
{
    public ValidateOptionsResult Validate(string? name, ManagedLMOptions options)
    {
        var failures = new List<string>();
        if (keys.OwnModel)
        {
            // The app's model serves; ModelPath is not read.
        }
        else if (string.IsNullOrWhiteSpace(options.ModelPath))
            failures.Add($"{keys.Key(nameof(options.ModelPath))} is required: the path of a GGUF model file.");
        else if (!File.Exists(keys.Resolve(options.ModelPath)))
            failures.Add($"{keys.Key(nameof(options.ModelPath))}: there is no file {keys.Resolve(options.ModelPath)}.");
        if (options.ChatTemplatePath is { } template && !File.Exists(keys.Resolve(template)))
            failures.Add($"{keys.Key(nameof(options.ChatTemplatePath))}: there is no file {keys.Resolve(template)}.");
        if (options.MaxConcurrentCalls < 0)
            failures.Add($"{keys.Key(nameof(options.MaxConcurrentCalls))} must be 0 (one per core) or more; it is {options.MaxConcurrentCalls}.");
        if (!Enum.IsDefined(options.KvCacheType))
            failures.Add($"{keys.Key(nameof(options.KvCacheType))}: {options.KvCacheType} is not a KV cache type.");
        if (options.Pooling is { } pooling && !Enum.IsDefined(pooling))
            failures.Add($"{keys.Key(nameof(options.Pooling))}: {pooling} is not a pooling type.");
        try
        {
            // The API's, the batch engine's and the embedding engine's own checks; their parameter names are the options'.
            options.ServerOptions(null).Validate();
        }
        catch (ArgumentException e)
        {
            string reason = e.ParamName is { } p ? e.Message.Replace($" (Parameter '{p}')", "", StringComparison.Ordinal) : e.Message;
            reason = reason.Split('\n')[0].TrimEnd();
            failures.Add(e.ParamName is { } param ? $"{keys.Key(param)}: {reason}" : reason);
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}

/// <summary>
/// Starts what <c>AddManagedLM</c> registered with the host (the model loads, the batch engine starts, or an
/// embeddings-only model's engine warms up) and stops it gracefully: once the host begins to stop, the batch engine admits
/// no more requests (the API answers 503), and the host's stop waits for the running ones, up to its shutdown timeout.
/// </summary>
internal sealed class ManagedLMHostedService(IServiceProvider services) : IHostedLifecycleService
{
    private readonly ILogger _logger = ManagedLMServiceCollectionExtensions.Logger(services, "ManagedLM");
    private BatchEngine? _engine;
    private Task<bool>? _drain;

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var api = services.GetRequiredService<OpenAiApi>();
        _engine = api.Engine;
        if (api.EmbeddingsOnly)
            _ = api.Embeddings.Value; // an embedding server warms up before it listens, as a chat server's batch engine does
        return Task.CompletedTask;
    }

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    // Before the server and the other services stop: no request joins the batch from now on.
    public Task StoppingAsync(CancellationToken cancellationToken)
    {
        if (_engine is { } engine)
        {
            var m = engine.Metrics;
            Log.Draining(_logger, m.Active, m.Queued);
            _drain = engine.DrainAsync(cancellationToken);
        }
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_drain is null && _engine is not null)
            await StoppingAsync(cancellationToken).ConfigureAwait(false);
        if (_drain is null)
            return;
        if (await _drain.ConfigureAwait(false))
            Log.Drained(_logger);
        else
            Log.DrainCut(_logger);
    }

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

using System.Net;
using ManagedLM.Batching;
using ManagedLM.Model;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ManagedLM.Server;

/// <summary>
/// An OpenAI-compatible HTTP server over one model, on an app of its own: the endpoints of
/// <see cref="OpenAiEndpointRouteBuilderExtensions.MapOpenAiEndpoints"/> (/v1/chat/completions, /v1/completions streamed
/// as server-sent events or whole, /v1/embeddings, /v1/rerank, /v1/models, /tokenize, /detokenize, /health, /metrics
/// and a chat page at /), and OpenAI-shaped 404s for every other path. Every completion request runs on one shared
/// <see cref="BatchEngine"/>, so concurrent requests decode together; embedding and rerank requests on one shared
/// <see cref="EmbeddingEngine"/> (started on first use), so concurrent ones share passes. An encoder model, or
/// <see cref="ServerOptions.EmbeddingsOnly"/>, serves embeddings only. To serve the API from an app of your own, with
/// dependency injection and configuration, see <c>AddManagedLM</c> and <c>MapOpenAiEndpoints</c>.
/// </summary>
/// <example>
/// <code>
/// using var model = TransformerModel.Load("model.gguf");
/// await using var server = await OpenAiServer.StartAsync(model, new ServerOptions { Port = 8080 });
/// await server.WaitForShutdownAsync();
/// </code>
/// </example>
public sealed class OpenAiServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ServerOptions _options;
    private readonly BatchEngine? _engine;
    private readonly Lazy<EmbeddingEngine> _embeddings;

    private OpenAiServer(TransformerModel model, ServerOptions options)
    {
        _options = options;
        EmbeddingsOnly = options.EmbeddingsOnly || model.Config.Family.Encoder;
        _embeddings = new Lazy<EmbeddingEngine>(() => new EmbeddingEngine(model, options.Embeddings));
        try
        {
            if (EmbeddingsOnly)
                _ = _embeddings.Value; // an embedding server warms up before it listens, as a chat server's batch engine does
            else
                _engine = new BatchEngine(model, options.Engine);
            _app = Build(new OpenAiApi(model, options, _engine, _embeddings));
        }
        catch
        {
            StopEngines();
            throw;
        }
    }

    /// <summary>Starts a server for <paramref name="model"/> (which must outlive it) and returns once it listens.</summary>
    /// <exception cref="IOException">The address is in use.</exception>
    public static async Task<OpenAiServer> StartAsync(TransformerModel model, ServerOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new ServerOptions();
        options.Validate();
        var server = new OpenAiServer(model, options);
        try
        {
            await server._app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await server.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return server;
    }

    /// <summary>The engine every completion request runs on.</summary>
    /// <exception cref="InvalidOperationException">The server serves embeddings only.</exception>
    public BatchEngine Engine => _engine ?? throw new InvalidOperationException("This server serves embeddings only: it has no batch engine.");

    /// <summary>The engine embedding and rerank requests run on (started by the first such request unless <see cref="EmbeddingsOnly"/>).</summary>
    public EmbeddingEngine Embeddings => _embeddings.Value;

    /// <summary>Whether the server serves embeddings only (<see cref="ServerOptions.EmbeddingsOnly"/>, or an encoder model).</summary>
    public bool EmbeddingsOnly { get; }

    private void StopEngines()
    {
        _engine?.Dispose();
        if (_embeddings.IsValueCreated)
            _embeddings.Value.Dispose();
    }

    /// <summary>The addresses the server listens on (with the port chosen when <see cref="ServerOptions.Port"/> was 0).</summary>
    public IReadOnlyList<Uri> Urls =>
        [.. (_app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? []).Select(a => new Uri(a))];

    /// <summary>The first of <see cref="Urls"/>, e.g. http://127.0.0.1:8080/.</summary>
    public Uri BaseAddress => Urls[0];

    /// <summary>Completes when the server is stopped (Ctrl+C or SIGTERM in a console, or <see cref="StopAsync"/>).</summary>
    public Task WaitForShutdownAsync(CancellationToken cancellationToken = default) => _app.WaitForShutdownAsync(cancellationToken);

    /// <summary>Stops listening; running requests end with an error.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        StopEngines();
        await _app.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        StopEngines();
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }

    // The app: Kestrel on the options' address, the API's endpoints, and a 404 in OpenAI's shape for any other path.
    private WebApplication Build(OpenAiApi api)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "ManagedLM.Server", ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
        builder.Services.AddSingleton(api);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = _options.MaxBodyBytes;
            switch (_options.Host)
            {
                case "localhost":
                    k.ListenLocalhost(_options.Port);
                    break;
                case "*" or "0.0.0.0":
                    k.ListenAnyIP(_options.Port);
                    break;
                default:
                    k.Listen(IPAddress.Parse(_options.Host), _options.Port);
                    break;
            }
        });
        var app = builder.Build();
        app.MapOpenAiEndpoints();
        app.MapFallback(ctx => api.Invoke(ctx, "other", open: false, OpenAiApi.NotFound));
        return app;
    }
}

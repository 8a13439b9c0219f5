using System.Diagnostics;
using System.Net;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using ManagedLM.Batching;
using ManagedLM.Chat;
using ManagedLM.Model;
using ManagedLM.Sampling;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ManagedLM.Server;

/// <summary>
/// An OpenAI-compatible HTTP server over one model: /v1/chat/completions, /v1/completions (streamed as server-sent events
/// or whole), /v1/embeddings, /v1/rerank, /v1/models, /tokenize, /detokenize, /health, /metrics (Prometheus) and a chat
/// page at /. Every completion request runs on one shared <see cref="BatchEngine"/>, so concurrent requests decode
/// together; embedding and rerank requests on one shared <see cref="EmbeddingEngine"/> (started on first use), so
/// concurrent ones share passes. An encoder model, or <see cref="ServerOptions.EmbeddingsOnly"/>, serves embeddings only.
/// </summary>
/// <example>
/// <code>
/// using var model = TransformerModel.Load("model.gguf");
/// await using var server = await OpenAiServer.StartAsync(model, new ServerOptions { Port = 8080 });
/// await server.WaitForShutdownAsync();
/// </code>
/// </example>
public sealed partial class OpenAiServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly TransformerModel _model;
    private readonly ServerOptions _options;
    private readonly ServerMetrics _metrics = new();
    private readonly string _modelId;
    private readonly ChatTemplate _template;
    private readonly Chat.Tools.ToolCallFormat _toolFormat;
    private readonly BatchEngine? _engine;
    private readonly Lazy<EmbeddingEngine> _embeddings;
    private readonly long _created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
    private readonly byte[]? _apiKeyHash;
    private readonly byte[] _page;
    private readonly TextWriter? _log;

    private OpenAiServer(TransformerModel model, ServerOptions options)
    {
        _model = model;
        EmbeddingsOnly = options.EmbeddingsOnly || model.Config.Family.Encoder;
        _template = options.ChatTemplate?.WithTokens(model.ChatTemplate.BosToken, model.ChatTemplate.EosToken) ?? model.ChatTemplate;
        _toolFormat = Chat.Tools.ToolCallFormat.Detect(_template);
        _options = options;
        _modelId = options.ModelId ?? model.Name;
        _apiKeyHash = string.IsNullOrEmpty(options.ApiKey) ? null : SHA256.HashData(Encoding.UTF8.GetBytes(options.ApiKey));
        _page = ReadPage();
        _log = options.Log is null ? null : TextWriter.Synchronized(options.Log);
        _embeddings = new Lazy<EmbeddingEngine>(() => new EmbeddingEngine(model, options.Embeddings));
        try
        {
            if (EmbeddingsOnly)
                _ = _embeddings.Value; // an embedding server warms up before it listens, as a chat server's batch engine does
            else
                _engine = new BatchEngine(model, options.Engine);
            _app = Build();
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

    private WebApplication Build()
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "ManagedLM.Server", ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
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
        app.Use(Handle);
        app.MapGet("/", ctx => Write(ctx, "text/html; charset=utf-8", _page));
        app.MapGet("/health", ctx => WriteJson(ctx, w =>
        {
            var m = _engine?.Metrics;
            w.WriteStartObject();
            w.WriteString("status", "ok");
            w.WriteNumber("active", m?.Active ?? 0);
            w.WriteNumber("queued", (m?.Queued ?? 0) + (_embeddings.IsValueCreated ? _embeddings.Value.Metrics.Queued : 0));
            w.WriteEndObject();
        }));
        app.MapGet("/metrics", ctx => Write(ctx, "text/plain; version=0.0.4; charset=utf-8",
            Encoding.UTF8.GetBytes(_metrics.Render(_engine?.Metrics, _embeddings.IsValueCreated ? _embeddings.Value.Metrics : null))));
        app.MapGet("/v1/models", ctx => WriteJson(ctx, w =>
        {
            w.WriteStartObject();
            w.WriteString("object", "list");
            w.WriteStartArray("data");
            ModelEntry(w);
            w.WriteEndArray();
            w.WriteEndObject();
        }));
        app.MapGet("/v1/models/{id}", (HttpContext ctx, string id) => id == _modelId
            ? WriteJson(ctx, ModelEntry)
            : throw new ApiException(404, $"The model '{id}' does not exist; this server has '{_modelId}'.", "model", code: "model_not_found"));
        foreach (string prefix in new[] { "/v1", "" })
        {
            app.MapPost(prefix + "/chat/completions", ctx => Complete(ctx, chat: true));
            app.MapPost(prefix + "/completions", ctx => Complete(ctx, chat: false));
        }
        foreach (string path in new[] { "/v1/embeddings", "/embeddings" })
            app.MapPost(path, Embed);
        foreach (string path in new[] { "/v1/rerank", "/rerank", "/v1/reranking", "/reranking" })
            app.MapPost(path, Rerank);
        app.MapPost("/tokenize", Tokenize);
        app.MapPost("/detokenize", Detokenize);
        app.MapFallback(ctx => throw (EndpointLabel(ctx.Request.Path) == "other"
            ? new ApiException(404, $"There is no endpoint {ctx.Request.Method} {ctx.Request.Path}.", code: "not_found")
            : new ApiException(405, $"{ctx.Request.Path} does not take {ctx.Request.Method}.", code: "method_not_allowed")));
        return app;
    }

    // Authorization, errors in OpenAI's shape, metrics and the request log, around every endpoint.
    private async Task Handle(HttpContext ctx, RequestDelegate next)
    {
        string endpoint = EndpointLabel(ctx.Request.Path);
        long start = Stopwatch.GetTimestamp();
        _metrics.Started();
        try
        {
            if (_apiKeyHash is not null && endpoint is not ("/" or "/health") && !Authorized(ctx.Request.Headers.Authorization.ToString()))
            {
                ctx.Response.Headers.WWWAuthenticate = "Bearer";
                throw new ApiException(401, "Missing or incorrect API key: send Authorization: Bearer <key>.", code: "invalid_api_key");
            }
            await next(ctx).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            // The client went away; its request has left the batch.
        }
        catch (ApiException e) when (!ctx.Response.HasStarted)
        {
            await WriteError(ctx, e).ConfigureAwait(false);
        }
        catch (BadHttpRequestException e) when (!ctx.Response.HasStarted)
        {
            await WriteError(ctx, new ApiException(e.StatusCode, e.StatusCode == 413
                ? $"The request body is larger than the server's limit of {_options.MaxBodyBytes} bytes."
                : e.Message, code: e.StatusCode == 413 ? "request_too_large" : null)).ConfigureAwait(false);
        }
        catch (Exception e) when (!ctx.Response.HasStarted)
        {
            _log?.WriteLine($"error: {ctx.Request.Method} {ctx.Request.Path}: {e}");
            await WriteError(ctx, InternalError(e)).ConfigureAwait(false);
        }
        finally
        {
            int status = ctx.RequestAborted.IsCancellationRequested ? 499 : ctx.Response.StatusCode;
            _metrics.Finished(endpoint, status);
            _log?.WriteLine($"{DateTime.Now:HH:mm:ss} {ctx.Request.Method} {ctx.Request.Path} {status} {Stopwatch.GetElapsedTime(start).TotalMilliseconds:F0} ms");
        }
    }

    // Metric label of a path: the known endpoints, else "other" (so unknown paths cannot grow the label set).
    private static string EndpointLabel(PathString path) => path.Value switch
    {
        "/" or "/health" or "/metrics" or "/v1/models" or "/tokenize" or "/detokenize" => path.Value,
        "/v1/chat/completions" or "/chat/completions" => "/v1/chat/completions",
        "/v1/completions" or "/completions" => "/v1/completions",
        "/v1/embeddings" or "/embeddings" => "/v1/embeddings",
        "/v1/rerank" or "/rerank" or "/v1/reranking" or "/reranking" => "/v1/rerank",
        { } p when p.StartsWith("/v1/models/", StringComparison.Ordinal) => "/v1/models",
        _ => "other",
    };

    // Constant-time: both sides are hashed first, so neither the key's bytes nor its length leak through timing.
    private bool Authorized(string header)
    {
        const string scheme = "Bearer ";
        if (!header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
            return false;
        var given = SHA256.HashData(Encoding.UTF8.GetBytes(header[scheme.Length..].Trim()));
        return CryptographicOperations.FixedTimeEquals(given, _apiKeyHash);
    }

    private void ModelEntry(Utf8JsonWriter w)
    {
        var c = _model.Config;
        w.WriteStartObject();
        w.WriteString("id", _modelId);
        w.WriteString("object", "model");
        w.WriteNumber("created", _created);
        w.WriteString("owned_by", "managedlm");
        w.WriteStartObject("meta");
        w.WriteString("architecture", c.Architecture);
        w.WriteNumber("context_length", _engine?.ContextLength ?? _embeddings.Value.MaxTokens);
        w.WriteNumber("n_ctx_train", c.ContextLength);
        w.WriteNumber("n_vocab", c.VocabSize);
        w.WriteNumber("n_embd", c.EmbeddingLength);
        w.WriteNumber("n_layer", c.BlockCount);
        w.WriteNumber("n_parallel", _engine?.Options.MaxActiveSequences ?? 1);
        if (EmbeddingsOnly || _embeddings.IsValueCreated)
        {
            w.WriteString("pooling", _embeddings.Value.Pooling.ToString().ToLowerInvariant());
            w.WriteNumber("n_embd_out", _embeddings.Value.Dimensions);
        }
        w.WriteEndObject();
        w.WriteEndObject();
    }

    // {"content": "text", "add_special": false, "parse_special": true, "with_pieces": false} → {"tokens": [...]}.
    private async Task Tokenize(HttpContext ctx)
    {
        using var body = await ReadJson(ctx).ConfigureAwait(false);
        var root = Object(body);
        string content = ApiRequest.String(root, "content") ?? throw new ApiException(400, "'content' is required.", "content");
        bool addSpecial = ApiRequest.Bool(root, "add_special") ?? false;
        bool parseSpecial = ApiRequest.Bool(root, "parse_special") ?? true;
        bool withPieces = ApiRequest.Bool(root, "with_pieces") ?? false;
        int[] ids = _model.Tokenizer.Encode(content, addSpecial, parseSpecial);
        await WriteJson(ctx, w =>
        {
            w.WriteStartObject();
            w.WriteStartArray("tokens");
            foreach (int id in ids)
            {
                if (!withPieces)
                {
                    w.WriteNumberValue(id);
                    continue;
                }
                w.WriteStartObject();
                w.WriteNumber("id", id);
                w.WriteString("piece", _model.Tokenizer.TokenToPiece(id));
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    // {"tokens": [ids]} → {"content": "text"}.
    private async Task Detokenize(HttpContext ctx)
    {
        using var body = await ReadJson(ctx).ConfigureAwait(false);
        var root = Object(body);
        if (!root.TryGetProperty("tokens", out var tokens) || tokens.ValueKind != JsonValueKind.Array)
            throw new ApiException(400, "'tokens' must be an array of token ids.", "tokens");
        var ids = new List<int>();
        foreach (var t in tokens.EnumerateArray())
        {
            if (t.ValueKind != JsonValueKind.Number || !t.TryGetInt32(out int id) || (uint)id >= (uint)_model.Config.VocabSize)
                throw new ApiException(400, $"Token {t.GetRawText()} is not an id in [0, {_model.Config.VocabSize}).", "tokens");
            ids.Add(id);
        }
        string text = _model.Tokenizer.Decode(ids.ToArray(), skipSpecialTokens: false);
        await WriteJson(ctx, w =>
        {
            w.WriteStartObject();
            w.WriteString("content", text);
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    private async Task<JsonDocument> ReadJson(HttpContext ctx)
    {
        if (ctx.Request.ContentLength > _options.MaxBodyBytes)
            throw new ApiException(413, $"The request body is larger than the server's limit of {_options.MaxBodyBytes} bytes.", code: "request_too_large");
        JsonDocument body;
        try
        {
            body = await JsonDocument.ParseAsync(ctx.Request.Body, new JsonDocumentOptions { MaxDepth = 64 }, ctx.RequestAborted).ConfigureAwait(false);
        }
        catch (JsonException e)
        {
            throw new ApiException(400, $"The request body is not valid JSON: {e.Message}", code: "invalid_json");
        }
        try
        {
            ApiRequest.CheckBody(body.RootElement);
        }
        catch
        {
            body.Dispose();
            throw;
        }
        return body;
    }

    private static JsonElement Object(JsonDocument body) => body.RootElement.ValueKind == JsonValueKind.Object
        ? body.RootElement
        : throw new ApiException(400, "The request body must be a JSON object.");

    // The 500 for an exception no endpoint turned into an ApiException; a model that produces NaN/∞ logits gets its own code.
    // A grammar that cannot be followed is the request's fault: 400.
    private static ApiException InternalError(Exception e) => e switch
    {
        NonFiniteLogitsException => new ApiException(500, e.Message, type: "server_error", code: "non_finite_logits"),
        Grammars.GrammarConstraintException => new ApiException(400, e.Message, code: "grammar_error"),
        _ => new ApiException(500, $"Internal error: {e.Message}", type: "server_error"),
    };

    private static async Task WriteError(HttpContext ctx, ApiException e)
    {
        if (e.Status == 429)
            ctx.Response.Headers.RetryAfter = "1";
        await WriteJson(ctx, w => ResponseJson.Error(w, e.Message, e.Type, e.Param, e.Code), e.Status).ConfigureAwait(false);
    }

    private static async Task WriteJson(HttpContext ctx, Action<Utf8JsonWriter> write, int status = 200)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        using (var w = new Utf8JsonWriter(ctx.Response.BodyWriter, ResponseJson.WriterOptions))
            write(w);
        await ctx.Response.BodyWriter.FlushAsync(ctx.RequestAborted).ConfigureAwait(false);
    }

    private static async Task Write(HttpContext ctx, string contentType, byte[] body)
    {
        ctx.Response.ContentType = contentType;
        ctx.Response.ContentLength = body.Length;
        await ctx.Response.Body.WriteAsync(body, ctx.RequestAborted).ConfigureAwait(false);
    }

    private static byte[] ReadPage()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("ManagedLM.Server.index.html")
            ?? throw new InvalidOperationException("The chat page is missing from the assembly.");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}

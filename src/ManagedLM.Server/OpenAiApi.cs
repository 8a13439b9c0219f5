using System.Diagnostics;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using ManagedLM.Batching;
using ManagedLM.Chat;
using ManagedLM.Model;
using ManagedLM.Sampling;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ManagedLM.Server;

/// <summary>
/// The OpenAI-compatible API over one model, behind the endpoints <c>MapOpenAiEndpoints</c> maps:
/// /v1/chat/completions, /v1/completions (streamed as server-sent events or whole), /v1/embeddings, /v1/rerank,
/// /v1/models, /tokenize, /detokenize, /health, /metrics (Prometheus) and a chat page. Every completion request runs on
/// one shared <see cref="BatchEngine"/>, so concurrent requests decode together; embedding and rerank requests on one
/// shared <see cref="EmbeddingEngine"/> (started on first use), so concurrent ones share passes. Without a batch engine
/// (an encoder model, or <see cref="ServerOptions.EmbeddingsOnly"/>) it serves embeddings only. The engines belong to
/// whoever made this: <see cref="OpenAiServer"/>, or the service provider of <see cref="ManagedLMServiceCollectionExtensions.AddManagedLM(IServiceCollection, Action{ManagedLMOptions})"/>.
/// </summary>
internal sealed partial class OpenAiApi
{
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
    private readonly ILogger _logger;

    /// <summary>The API of <paramref name="model"/> on <paramref name="engine"/> (null: embeddings only) and <paramref name="embeddings"/>.</summary>
    public OpenAiApi(TransformerModel model, ServerOptions options, BatchEngine? engine, Lazy<EmbeddingEngine> embeddings, ILogger? logger = null)
    {
        _model = model;
        _engine = engine;
        _embeddings = embeddings;
        _template = options.ChatTemplate?.WithTokens(model.ChatTemplate.BosToken, model.ChatTemplate.EosToken) ?? model.ChatTemplate;
        _toolFormat = Chat.Tools.ToolCallFormat.Detect(_template);
        _options = options;
        _modelId = options.ModelId ?? model.Name;
        _apiKeyHash = string.IsNullOrEmpty(options.ApiKey) ? null : SHA256.HashData(Encoding.UTF8.GetBytes(options.ApiKey));
        _page = ReadPage();
        _log = options.Log is null ? null : TextWriter.Synchronized(options.Log);
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>Whether completions are refused: there is no batch engine.</summary>
    public bool EmbeddingsOnly => _engine is null;

    /// <summary>The engine completion requests run on (null: embeddings only).</summary>
    public BatchEngine? Engine => _engine;

    /// <summary>The engine embedding and rerank requests run on.</summary>
    public Lazy<EmbeddingEngine> Embeddings => _embeddings;

    /// <summary>The options the API was made with.</summary>
    public ServerOptions Options => _options;

    // GET / (the chat page).
    public Task Page(HttpContext ctx) => Write(ctx, "text/html; charset=utf-8", _page);

    // GET /health: {"status": "ok", "active": n, "queued": n}.
    public Task Health(HttpContext ctx) => WriteJson(ctx, w =>
    {
        var m = _engine?.Metrics;
        w.WriteStartObject();
        w.WriteString("status", "ok");
        w.WriteNumber("active", m?.Active ?? 0);
        w.WriteNumber("queued", (m?.Queued ?? 0) + (_embeddings.IsValueCreated ? _embeddings.Value.Metrics.Queued : 0));
        w.WriteEndObject();
    });

    // GET /metrics: Prometheus text.
    public Task Metrics(HttpContext ctx) => Write(ctx, "text/plain; version=0.0.4; charset=utf-8",
        Encoding.UTF8.GetBytes(_metrics.Render(_engine?.Metrics, _embeddings.IsValueCreated ? _embeddings.Value.Metrics : null)));

    // GET /v1/models.
    public Task Models(HttpContext ctx) => WriteJson(ctx, w =>
    {
        w.WriteStartObject();
        w.WriteString("object", "list");
        w.WriteStartArray("data");
        ModelEntry(w);
        w.WriteEndArray();
        w.WriteEndObject();
    });

    // GET /v1/models/{id}.
    public Task Model(HttpContext ctx)
    {
        string id = ctx.Request.RouteValues["id"] as string ?? "";
        return id == _modelId
            ? WriteJson(ctx, ModelEntry)
            : throw new ApiException(404, $"The model '{id}' does not exist; this server has '{_modelId}'.", "model", code: "model_not_found");
    }

    public Task ChatCompletions(HttpContext ctx) => Complete(ctx, chat: true);

    public Task Completions(HttpContext ctx) => Complete(ctx, chat: false);

    // Any path of no endpoint.
    public static Task NotFound(HttpContext ctx) =>
        throw new ApiException(404, $"There is no endpoint {ctx.Request.Method} {ctx.Request.Path}.", code: "not_found");

    // An endpoint's path with a method it does not take.
    public static Task MethodNotAllowed(HttpContext ctx) =>
        throw new ApiException(405, $"{ctx.Request.Path} does not take {ctx.Request.Method}.", code: "method_not_allowed");

    /// <summary>
    /// Runs an endpoint's handler with what every endpoint of the API has around it: the API key (unless
    /// <paramref name="open"/>), the body size limit, errors in OpenAI's shape, metrics (under <paramref name="endpoint"/>)
    /// and the request log.
    /// </summary>
    public async Task Invoke(HttpContext ctx, string endpoint, bool open, RequestDelegate handler)
    {
        long start = Stopwatch.GetTimestamp();
        _metrics.Started();
        try
        {
            if (_apiKeyHash is not null && !open && !Authorized(ctx.Request.Headers.Authorization.ToString()))
            {
                ctx.Response.Headers.WWWAuthenticate = "Bearer";
                throw new ApiException(401, "Missing or incorrect API key: send Authorization: Bearer <key>.", code: "invalid_api_key");
            }
            if (ctx.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
                limit.MaxRequestBodySize = _options.MaxBodyBytes;
            await handler(ctx).ConfigureAwait(false);
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
            Log.RequestFailed(_logger, ctx.Request.Method, ctx.Request.Path, e);
            await WriteError(ctx, InternalError(e)).ConfigureAwait(false);
        }
        finally
        {
            int status = ctx.RequestAborted.IsCancellationRequested ? 499 : ctx.Response.StatusCode;
            _metrics.Finished(endpoint, status);
            double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            _log?.WriteLine($"{DateTime.Now:HH:mm:ss} {ctx.Request.Method} {ctx.Request.Path} {status} {ms:F0} ms");
            Log.Request(_logger, ctx.Request.Method, ctx.Request.Path, status, Math.Round(ms));
        }
    }

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
    public async Task Tokenize(HttpContext ctx)
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
    public async Task Detokenize(HttpContext ctx)
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

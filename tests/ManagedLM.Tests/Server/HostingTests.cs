using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Claims;
using System.Text.Encodings.Web;
using System.Text.Json;
using ManagedLM.Batching;
using ManagedLM.Chat;
using ManagedLM.Embeddings;
using ManagedLM.Generation;
using ManagedLM.Model;
using ManagedLM.Sampling;
using ManagedLM.Server;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ManagedLM.Tests.Server;

/// <summary>
/// <c>AddManagedLM</c> and <c>MapOpenAiEndpoints</c> in apps of the tests' own, on stories260K: what is registered, the
/// options from configuration and their checks, the endpoints beside the app's others, and the drain when the host stops.
/// </summary>
public sealed class HostingTests
{
    private static readonly string Stories = TestData.Model("stories260K.gguf");

    // An app on a free loopback port with ManagedLM's services configured by `settings` (keys under ManagedLM:).
    private static WebApplicationBuilder Builder(IEnumerable<KeyValuePair<string, string?>> settings, LogList? logs = null)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        if (logs is not null)
            builder.Logging.AddProvider(logs);
        builder.Configuration.AddInMemoryCollection(settings.Select(s => KeyValuePair.Create("ManagedLM:" + s.Key, s.Value)));
        builder.Services.AddManagedLM(builder.Configuration.GetSection("ManagedLM"));
        return builder;
    }

    private static Dictionary<string, string?> Settings(params (string Key, string? Value)[] more)
    {
        var settings = new Dictionary<string, string?> { ["ModelPath"] = Stories, ["Threads"] = "2", ["MaxActiveSequences"] = "4" };
        foreach (var (key, value) in more)
            settings[key] = value;
        return settings;
    }

    private static HttpClient Client(WebApplication app) => new() { BaseAddress = new Uri(app.Urls.First()), Timeout = TimeSpan.FromSeconds(60) };

    [Fact]
    public async Task The_API_maps_under_a_prefix_beside_the_apps_own_endpoints_which_keep_their_paths_and_errors()
    {
        var logs = new LogList();
        var builder = Builder(Settings(("ApiKey", "secret"), ("ModelId", "tiny"), ("MaxBodyBytes", "65536")), logs);
        await using var app = builder.Build();
        app.MapGet("/", () => "the app's page");
        app.MapGet("/health", () => "the app's health");
        app.MapGet("/mine", () => "mine");
        app.MapGet("/boom", (HttpContext _) => throw new InvalidOperationException("the app's own error"));
        app.MapOpenAiEndpoints("/ai");
        app.MapGet("/ai/extra", () => "the app's, under the API's prefix");
        await app.StartAsync();
        using var http = Client(app);

        // The app's endpoints: no API key, their own answers, ASP.NET Core's own errors.
        Assert.Equal("the app's page", await http.GetStringAsync("/"));
        Assert.Equal("the app's health", await http.GetStringAsync("/health"));
        Assert.Equal("mine", await http.GetStringAsync("/mine"));
        Assert.Equal("the app's, under the API's prefix", await http.GetStringAsync("/ai/extra"));
        using (var boom = await http.GetAsync("/boom"))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, boom.StatusCode);
            Assert.NotEqual("application/json", boom.Content.Headers.ContentType?.MediaType);
        }
        using (var missing = await http.GetAsync("/v1/models"))
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);   // the API is under /ai only

        // The API's: the key, OpenAI-shaped errors, its health and page open.
        var refused = await Api.Get(http, "/ai/v1/models");
        Assert.Equal(HttpStatusCode.Unauthorized, refused.Status);
        Assert.Equal("invalid_api_key", refused.Body.GetProperty("error").GetProperty("code").GetString());
        var models = await Api.Get(http, "/ai/v1/models", apiKey: "secret");
        Assert.Equal(HttpStatusCode.OK, models.Status);
        Assert.Equal("tiny", models.Body.GetProperty("data")[0].GetProperty("id").GetString());
        Assert.Equal(4, models.Body.GetProperty("data")[0].GetProperty("meta").GetProperty("n_parallel").GetInt32());
        Assert.Equal("ok", (await Api.Get(http, "/ai/health")).Body.GetProperty("status").GetString());
        Assert.Contains("<html", await http.GetStringAsync("/ai/"), StringComparison.OrdinalIgnoreCase);
        var wrongMethod = await Api.Get(http, "/ai/v1/chat/completions", apiKey: "secret");
        Assert.Equal(HttpStatusCode.MethodNotAllowed, wrongMethod.Status);
        Assert.Equal("method_not_allowed", wrongMethod.Body.GetProperty("error").GetProperty("code").GetString());
        // The body limit (64 KiB here, under Kestrel's 30 MB) holds while a body without a length is read.
        using (var chunked = new HttpRequestMessage(HttpMethod.Post, "/ai/tokenize")
        {
            Content = new ChunkedContent(JsonSerializer.SerializeToUtf8Bytes(new { content = new string('a', 100_000) })),
            Headers = { Authorization = new AuthenticationHeaderValue("Bearer", "secret") },
        })
        using (var tooBig = await http.SendAsync(chunked))
        {
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooBig.StatusCode);
            Assert.Contains("request_too_large", await tooBig.Content.ReadAsStringAsync());
        }
        var chat = await Api.Post(http, "/ai/v1/chat/completions",
            """{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8, "temperature": 0}""", apiKey: "secret");
        Assert.Equal(HttpStatusCode.OK, chat.Status);
        Assert.Equal(8, chat.Body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());

        // Metrics and the request log count the API's requests only.
        string metrics = await Authorized(http, "/ai/metrics", "secret");
        Assert.Contains("managedlm_http_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"} 1", metrics);
        Assert.Contains("managedlm_http_requests_total{endpoint=\"/v1/models\",status=\"401\"} 1", metrics);
        Assert.DoesNotContain("mine", metrics);
        Assert.DoesNotContain("endpoint=\"other\"", metrics);
        await app.StopAsync();
        var requests = logs.Messages("ManagedLM.Server");
        Assert.Contains("POST /ai/v1/chat/completions 200", requests.Select(m => string.Join(' ', m.Split(' ').Take(3))));
        Assert.DoesNotContain(requests, m => m.Contains("/mine", StringComparison.Ordinal) || m.Contains("/boom", StringComparison.Ordinal));
        Assert.Contains(logs.Messages("ManagedLM"), m => m.StartsWith("Loaded stories260K (llama", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_group_takes_the_apps_conventions_such_as_an_authorization_policy()
    {
        var builder = Builder(Settings());
        builder.Services.AddAuthentication("header").AddScheme<AuthenticationSchemeOptions, HeaderAuthentication>("header", null);
        builder.Services.AddAuthorization();
        await using var app = builder.Build();
        app.MapOpenAiEndpoints().RequireAuthorization();
        app.MapGet("/mine", () => "mine");
        await app.StartAsync();
        using var http = Client(app);
        using (var anonymous = await http.GetAsync("/v1/models"))
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Equal("mine", await http.GetStringAsync("/mine"));
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models") { Headers = { { HeaderAuthentication.Header, "ann" } } };
        using var signedIn = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, signedIn.StatusCode);
    }

    [Fact]
    public async Task The_services_share_one_model_and_the_chat_client_pipeline_replaces_the_plain_client()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true, ContentRootPath = AppContext.BaseDirectory });
        builder.Services.AddManagedLM(o =>
            {
                o.ModelPath = Stories;
                o.ModelId = "tiny";
                o.MaxConcurrentCalls = 2;
            })
            .AddChatClient()
            .UseFunctionInvocation();
        using var host = builder.Build();
        await host.StartAsync();
        var services = host.Services;
        var model = services.GetRequiredService<TransformerModel>();
        var chat = services.GetRequiredService<IChatClient>();
        Assert.IsType<FunctionInvokingChatClient>(chat);
        Assert.Single(services.GetServices<IChatClient>());
        var plain = services.GetRequiredService<ModelChatClient>();
        Assert.Same(plain, chat.GetService<ModelChatClient>());
        Assert.Same(model, plain.GetService<TransformerModel>());
        Assert.Equal("tiny", plain.Metadata.DefaultModelId);
        Assert.IsType<ModelEmbeddingGenerator>(services.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>());
        Assert.Equal(2, services.GetRequiredService<GeneratorPool>().MaxSize);
        Assert.Equal(ModelDefault(model), services.GetRequiredService<BatchEngine>().ContextLength);

        var options = new ChatOptions { MaxOutputTokens = 12, Temperature = 0 };
        using var alone = new ModelChatClient(model);
        Assert.Equal((await alone.GetResponseAsync("Tell me a story.", options)).Text, (await chat.GetResponseAsync("Tell me a story.", options)).Text);
        var vectors = await services.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>().GenerateAsync(["a cat"]);
        Assert.Equal(model.Config.EmbeddingLength, vectors[0].Vector.Length);

        var engine = services.GetRequiredService<BatchEngine>();
        await host.StopAsync();
        Assert.Throws<ObjectDisposedException>(() => engine.TrySubmit("Once", null, out _));
    }

    private static int ModelDefault(TransformerModel model) => Math.Min(model.MaxContextLength, GeneratorOptions.DefaultContextLength);

    [Fact]
    public async Task Services_registered_before_win_and_an_apps_own_model_needs_no_path_and_outlives_the_host()
    {
        using var model = TransformerModel.Load(Stories);
        using var mine = new ModelChatClient(model);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddSingleton(model);
        builder.Services.AddSingleton<IChatClient>(mine);
        builder.Services.AddManagedLM(o => o.ModelId = "mine");
        Assert.Throws<InvalidOperationException>(() => builder.Services.AddManagedLM(o => o.ModelPath = Stories));
        using (var host = builder.Build())
        {
            await host.StartAsync();
            Assert.Same(mine, host.Services.GetRequiredService<IChatClient>());
            Assert.Same(model, host.Services.GetRequiredService<ModelEmbeddingGenerator>().GetService<TransformerModel>());
            var request = await host.Services.GetRequiredService<BatchEngine>().SubmitAsync("Once upon a time", new GenerationOptions { MaxTokens = 4 });
            Assert.Equal(4, (await request.Completion).GeneratedTokens.Length);
            await host.StopAsync();
        }
        using var generator = model.CreateGenerator();   // not disposed with the container: the app's
        Assert.Equal(4, generator.Complete("Once", new GenerationOptions { MaxTokens = 4 }).GeneratedTokens.Length);
    }

    [Theory]
    [InlineData(null, "x", "ManagedLM:ModelPath is required")]
    [InlineData("ModelPath", "no-such-model.gguf", "ManagedLM:ModelPath: there is no file ")]
    [InlineData("MaxActiveSequences", "0", "ManagedLM:MaxActiveSequences: MaxActiveSequences must be at least 1.")]
    [InlineData("MaxTokensLimit", "0", "ManagedLM:MaxTokensLimit: MaxTokensLimit must be at least 1.")]
    [InlineData("MaxConcurrentCalls", "-1", "ManagedLM:MaxConcurrentCalls must be 0")]
    [InlineData("ContextLength", "100000", "ManagedLM:ContextLength: 100000 is longer than the model's context length, 2048.")]
    [InlineData("ChatTemplatePath", "missing.jinja", "ManagedLM:ChatTemplatePath: there is no file ")]
    public async Task Bad_options_stop_the_host_at_start_naming_the_key(string? key, string value, string message)
    {
        var settings = Settings();
        if (key is null)
            settings.Remove("ModelPath");
        else
            settings[key] = value;
        await using var app = Builder(settings).Build();
        app.MapOpenAiEndpoints();
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync());
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("ModelPth", "x.gguf", "'ModelPth'")]
    [InlineData("MaxActiveSequences", "many", "ManagedLM:MaxActiveSequences")]
    [InlineData("KvCacheType", "Q9", "ManagedLM:KvCacheType")]
    public async Task Keys_that_are_not_options_and_values_that_do_not_convert_stop_the_host_naming_them(string key, string value, string named)
    {
        await using var app = Builder(Settings((key, value))).Build();
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => app.StartAsync());
        Assert.Contains(named, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Mapping_the_endpoints_without_the_services_says_what_to_call()
    {
        await using var app = WebApplication.CreateSlimBuilder().Build();
        var e = Assert.Throws<InvalidOperationException>(() => app.MapOpenAiEndpoints());
        Assert.Contains("AddManagedLM", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stopping_the_host_refuses_new_requests_and_lets_a_running_stream_finish()
    {
        var logs = new LogList();
        await using var app = Builder(Settings(("MaxTokensLimit", "2048")), logs).Build();
        app.MapOpenAiEndpoints();
        await app.StartAsync();
        using var http = Client(app);
        var engine = app.Services.GetRequiredService<BatchEngine>();

        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions")
        {
            Content = new StringContent("""{"prompt": "Once upon a time", "max_tokens": 1500, "ignore_eos": true, "stream": true, "temperature": 0}""",
                System.Text.Encoding.UTF8, "application/json"),
        };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var events = Api.Events(reader).GetAsyncEnumerator();
        Assert.True(await events.MoveNextAsync());   // generating
        var stop = app.StopAsync();
        await Until(() => logs.Messages("ManagedLM").Any(m => m.StartsWith("Stopping:", StringComparison.Ordinal)));
        Assert.Throws<ObjectDisposedException>(() => engine.TrySubmit("Once", null, out _));   // admits no more
        Assert.Contains("Stopping: 1 requests running and 0 queued; no new ones are admitted", logs.Messages("ManagedLM"));

        var data = new List<string> { events.Current };
        while (await events.MoveNextAsync())
            data.Add(events.Current);
        await events.DisposeAsync();
        await stop;
        Assert.Equal("[DONE]", data[^1]);
        using (var last = JsonDocument.Parse(data[^2]))
            Assert.Equal("length", last.RootElement.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        var all = new List<string>(data);
        using var solo = TransformerModel.Load(Stories);
        using var generator = solo.CreateGenerator();
        string expected = generator.Generate("Once upon a time", new GenerationOptions { MaxTokens = 1500, IgnoreEndOfGeneration = true, Sampling = SamplingOptions.Greedy });
        Assert.Equal(expected, Api.StreamedText(all));
        Assert.Contains("Stopped: every request finished", logs.Messages("ManagedLM"));
    }

    private static async Task Until(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "Timed out.");
            await Task.Delay(5);
        }
    }

    private static async Task<string> Authorized(HttpClient http, string path, string key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path) { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", key) } };
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }

    /// <summary>A body sent without a Content-Length (chunked).</summary>
    private sealed class ChunkedContent(byte[] bytes) : HttpContent
    {
        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => stream.WriteAsync(bytes).AsTask();

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }

    /// <summary>Signs in whoever sends an X-User header.</summary>
    private sealed class HeaderAuthentication(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder)
        : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
    {
        public const string Header = "X-User";

        protected override Task<AuthenticateResult> HandleAuthenticateAsync() => Task.FromResult(Request.Headers.TryGetValue(Header, out var user)
            ? AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.Name, user.ToString())], Scheme.Name)), Scheme.Name))
            : AuthenticateResult.NoResult());
    }
}

/// <summary>Keeps what is logged, by category.</summary>
public sealed class LogList : ILoggerProvider
{
    private readonly ConcurrentQueue<(string Category, string Message)> _entries = new();

    public IReadOnlyList<string> Messages(string category) => [.. _entries.Where(e => e.Category == category).Select(e => e.Message)];

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(LogList list, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            list._entries.Enqueue((category, formatter(state, exception)));
    }
}

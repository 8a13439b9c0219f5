using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using ManagedLM.Batching;
using ManagedLM.Model;
using ManagedLM.Server;

namespace ManagedLM.Tests.Server;

/// <summary>A server on a free loopback port over stories260K (context 512, 8 parallel), shared by a test class.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public const int Context = 512;
    public const int MaxTokensLimit = 1000;

    public TransformerModel Model { get; } = TransformerModel.Load(TestData.Model("stories260K.gguf"));
    public OpenAiServer Server { get; private set; } = null!;
    public HttpClient Http { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Server = await OpenAiServer.StartAsync(Model, new ServerOptions
        {
            Port = 0, MaxTokensLimit = MaxTokensLimit, MaxBodyBytes = 64 << 10,
            Engine = new BatchEngineOptions { MaxActiveSequences = 8, Threads = 2, ContextLength = Context },
        });
        Http = Client(Server);
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
        Model.Dispose();
    }

    public static HttpClient Client(OpenAiServer server) => new() { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
}

/// <summary>A response read whole: status, headers and the body parsed as JSON.</summary>
public sealed record JsonReply(HttpStatusCode Status, HttpResponseHeaders Headers, JsonElement Body)
{
    public string ErrorParam => Body.GetProperty("error").GetProperty("param").ToString();
    public string ErrorMessage => Body.GetProperty("error").GetProperty("message").GetString()!;
}

/// <summary>Small HTTP helpers for the server tests.</summary>
public static class Api
{
    public static Task<JsonReply> Post(HttpClient http, string path, string json, string? apiKey = null) =>
        Post(http, path, new StringContent(json, Encoding.UTF8, "application/json"), apiKey);

    /// <summary>Posts a body as given, bytes that are not UTF-8 included.</summary>
    public static Task<JsonReply> Post(HttpClient http, string path, byte[] body) =>
        Post(http, path, new ByteArrayContent(body) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } });

    private static async Task<JsonReply> Post(HttpClient http, string path, HttpContent content, string? apiKey = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = content };
        if (apiKey is not null)
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        using var response = await http.SendAsync(request);
        return await Read(response);
    }

    public static async Task<JsonReply> Get(HttpClient http, string path, string? apiKey = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (apiKey is not null)
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        using var response = await http.SendAsync(request);
        return await Read(response);
    }

    private static async Task<JsonReply> Read(HttpResponseMessage response)
    {
        string text = await response.Content.ReadAsStringAsync();
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var doc = JsonDocument.Parse(text);
        return new JsonReply(response.StatusCode, response.Headers, doc.RootElement.Clone());
    }

    /// <summary>Posts a streaming request and returns the data of each server-sent event, "[DONE]" included.</summary>
    public static async Task<List<string>> Stream(HttpClient http, string path, string json)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        return await Events(reader).ToListAsync();
    }

    /// <summary>The data of the server-sent events on <paramref name="reader"/>, checking each is followed by a blank line.</summary>
    public static async IAsyncEnumerable<string> Events(StreamReader reader)
    {
        while (await reader.ReadLineAsync() is { } line)
        {
            Assert.StartsWith("data: ", line);
            Assert.Equal("", await reader.ReadLineAsync());
            yield return line["data: ".Length..];
        }
    }

    /// <summary>The text a stream's chunks carry (chat deltas or completion texts), in order.</summary>
    public static string StreamedText(IEnumerable<string> events) => string.Concat(events.Where(e => e != "[DONE]").Select(e =>
    {
        using var doc = JsonDocument.Parse(e);
        var choices = doc.RootElement.GetProperty("choices");
        if (choices.GetArrayLength() == 0)
            return "";
        var c = choices[0];
        return c.TryGetProperty("delta", out var d) ? d.TryGetProperty("content", out var t) ? t.GetString() : "" : c.GetProperty("text").GetString();
    }));
}

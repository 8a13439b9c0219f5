using System.Net;
using System.Text;
using System.Text.Json;

namespace ManagedLM.Tests.Server;

/// <summary>Bad requests get a 4xx with OpenAI's error object naming what is wrong, and the server keeps serving.</summary>
public class ServerErrorTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private HttpClient Http => fixture.Http;

    [Theory]
    [InlineData("""{"messages": [{"role": "user", "content": "Hi"}], "temperature": "hot"}""", "temperature")]
    [InlineData("""{"messages": [{"role": "user", "content": "Hi"}], "temperature": 2.5}""", "temperature")]
    [InlineData("""{"messages": [{"role": "user", "content": "Hi"}], "top_p": 0}""", "top_p")]
    [InlineData("""{"messages": [{"role": "user", "content": "Hi"}], "top_p": 1.5}""", "top_p")]
    [InlineData("""{"messages": [{"role": "user", "content": "Hi"}], "presence_penalty": 3}""", "presence_penalty")]
    [InlineData("""{"messages": [{"role": "user", "content": "Hi"}], "frequency_penalty": -2.5}""", "frequency_penalty")]
    [InlineData("""{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1.5}""", "max_tokens")]
    [InlineData("""{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": -1}""", "max_tokens")]
    [InlineData("""{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5000}""", "max_tokens")]
    [InlineData("""{"messages": [{"role": "user", "content": "Hi"}], "stream": "yes"}""", "stream")]
    [InlineData("""{"messages": [{"role": "user", "content": "Hi"}], "stop": 5}""", "stop")]
    [InlineData("""{"messages": [{"role": "user", "content": "Hi"}], "stop": ["a", "b", "c", "d", "e"]}""", "stop")]
    [InlineData("""{"messages": [{"role": "user", "content": "Hi"}], "seed": "x"}""", "seed")]
    [InlineData("""{"messages": [{"role": "user", "content": "Hi"}], "n": 2}""", "n")]
    [InlineData("""{"messages": [{"role": "user", "content": "Hi"}], "logit_bias": [1]}""", "logit_bias")]
    [InlineData("""{"messages": [{"role": "user", "content": "Hi"}], "logit_bias": {"99999": 1}}""", "logit_bias")]
    [InlineData("""{"messages": [{"role": "user", "content": "Hi"}], "logit_bias": {"5": 200}}""", "logit_bias")]
    [InlineData("""{"messages": [{"role": "user", "content": "Hi"}], "logprobs": true, "top_logprobs": 30}""", "top_logprobs")]
    [InlineData("""{"messages": [{"role": "user", "content": "Hi"}], "top_logprobs": 2}""", "top_logprobs")]
    [InlineData("""{"messages": "Hi"}""", "messages")]
    [InlineData("""{"messages": []}""", "messages")]
    [InlineData("""{"model": "x"}""", "messages")]
    [InlineData("""{"messages": [{"content": "Hi"}]}""", "messages[0].role")]
    [InlineData("""{"messages": [{"role": "user", "content": 5}]}""", "messages[0].content")]
    [InlineData("""{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}""", "messages[0].content")]
    public async Task Invalid_chat_fields_are_a_400_naming_the_field(string body, string param)
    {
        var r = await Api.Post(Http, "/v1/chat/completions", body);
        Assert.Equal(HttpStatusCode.BadRequest, r.Status);
        Assert.Equal("invalid_request_error", r.Body.GetProperty("error").GetProperty("type").GetString());
        Assert.Equal(param, r.ErrorParam);
        Assert.False(string.IsNullOrWhiteSpace(r.ErrorMessage));
    }

    [Theory]
    [InlineData("""{"prompt": 5}""", "prompt")]
    [InlineData("""{"prompt": [1, 2, 100000]}""", "prompt")]
    [InlineData("""{"prompt": [1, "a"]}""", "prompt")]
    [InlineData("""{"prompt": "x", "logprobs": 25}""", "logprobs")]
    [InlineData("""{"prompt": "x", "temperature": -1}""", "temperature")]
    public async Task Invalid_completion_fields_are_a_400_naming_the_field(string body, string param)
    {
        var r = await Api.Post(Http, "/v1/completions", body);
        Assert.Equal(HttpStatusCode.BadRequest, r.Status);
        Assert.Equal(param, r.ErrorParam);
    }

    [Theory]
    [InlineData("{bad json")]
    [InlineData("")]
    [InlineData("[1, 2]")]
    [InlineData("\"text\"")]
    public async Task A_body_that_is_not_a_JSON_object_is_a_400(string body)
    {
        var r = await Api.Post(Http, "/v1/chat/completions", body);
        Assert.Equal(HttpStatusCode.BadRequest, r.Status);
        Assert.Contains("JSON", r.ErrorMessage);
    }

    [Fact]
    public async Task A_prompt_longer_than_the_context_is_a_400_context_length_exceeded()
    {
        string longText = string.Join(" ", Enumerable.Repeat("Once upon a time there was a cat.", 100));
        var r = await Api.Post(Http, "/v1/completions", JsonSerializer.Serialize(new { prompt = longText }));
        Assert.Equal(HttpStatusCode.BadRequest, r.Status);
        Assert.Equal("context_length_exceeded", r.Body.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains(ServerFixture.Context.ToString(), r.ErrorMessage);

        var chat = await Api.Post(Http, "/v1/chat/completions", JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = longText } } }));
        Assert.Equal("context_length_exceeded", chat.Body.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("messages", chat.ErrorParam);
    }

    [Fact]
    public async Task A_body_over_the_limit_is_a_413()
    {
        string big = JsonSerializer.Serialize(new { prompt = new string('a', 100_000) });
        // With Expect: 100-continue the server refuses before the body is sent, as a well-behaved uploader asks.
        using var declared = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(big) };
        declared.Headers.ExpectContinue = true;
        using (var refused = await Http.SendAsync(declared))
        {
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, refused.StatusCode);
            Assert.Contains("request_too_large", await refused.Content.ReadAsStringAsync());
        }

        // Without a Content-Length the limit holds while reading.
        using var chunked = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new PushStreamContent(Encoding.UTF8.GetBytes(big)) };
        using var response = await Http.SendAsync(chunked);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Api.Get(Http, "/health")).Status);
    }

    [Fact]
    public async Task Unknown_endpoints_are_404_and_wrong_methods_405()
    {
        var r = await Api.Get(Http, "/v1/embeddings");
        Assert.Equal(HttpStatusCode.NotFound, r.Status);
        Assert.Equal("not_found", r.Body.GetProperty("error").GetProperty("code").GetString());
        using var get = await Http.GetAsync("/v1/chat/completions");
        Assert.Equal(HttpStatusCode.MethodNotAllowed, get.StatusCode);
    }

    [Fact]
    public async Task Tokenize_and_detokenize_check_their_fields()
    {
        Assert.Equal("content", (await Api.Post(Http, "/tokenize", """{"text": "x"}""")).ErrorParam);
        Assert.Equal("add_special", (await Api.Post(Http, "/tokenize", """{"content": "x", "add_special": 1}""")).ErrorParam);
        Assert.Equal("tokens", (await Api.Post(Http, "/detokenize", """{"tokens": [1, 99999]}""")).ErrorParam);
        Assert.Equal("tokens", (await Api.Post(Http, "/detokenize", """{"tokens": "1"}""")).ErrorParam);
    }

    /// <summary>A body sent without a Content-Length (chunked).</summary>
    private sealed class PushStreamContent(byte[] bytes) : HttpContent
    {
        protected override Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context) => stream.WriteAsync(bytes).AsTask();

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}

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
        var r = await Api.Get(Http, "/v1/audio/speech");
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

    // Text that System.Text.Json parses but cannot read as a string: \u escapes of unpaired surrogates, and bytes that
    // are not UTF-8 (a stray continuation byte, 0xFF, an overlong '/', an encoded surrogate, a truncated sequence).
    public static readonly byte[][] BadText =
    [
        "\\ud800"u8.ToArray(), "\\udc00\\ud800"u8.ToArray(), "\\udc00"u8.ToArray(), "a\\ud800b"u8.ToArray(), "\\ud800\\n"u8.ToArray(),
        [0x80], [0xFF], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xE2, 0x82],
    ];

    [Theory]
    [InlineData("/v1/chat/completions", """{"messages": [{"role": "user", "content": "a☠b"}]}""", "messages[0].content")]
    [InlineData("/v1/chat/completions", """{"messages": [{"role": "user", "content": [{"type": "text", "text": "☠"}]}]}""", "messages[0].content[0].text")]
    [InlineData("/v1/chat/completions", """{"messages": [{"role": "☠", "content": "Hi"}]}""", "messages[0].role")]
    [InlineData("/v1/chat/completions", """{"messages": [{"role": "user", "content": "Hi"}], "stop": "☠"}""", "stop")]
    [InlineData("/v1/chat/completions", """{"messages": [{"role": "user", "content": "Hi"}], "stop": ["x", "☠"]}""", "stop[1]")]
    [InlineData("/v1/chat/completions", """{"messages": [{"role": "user", "content": "Hi"}], "logit_bias": {"5": 1, "☠": 1}}""", "logit_bias")]
    [InlineData("/v1/chat/completions", """{"messages": [{"role": "user", "content": "Hi"}], "user": "☠"}""", "user")]
    [InlineData("/v1/chat/completions", """{"model": "☠", "messages": [{"role": "user", "content": "Hi"}]}""", "model")]
    [InlineData("/v1/chat/completions", """{"messages": [{"role": "user", "content": "Hi"}], "tools": [{"type": "function", "function": {"name": "☠"}}]}""", "tools[0].function.name")]
    [InlineData("/v1/chat/completions", """{"messages": [{"role": "assistant", "tool_calls": [{"id": "1", "function": {"name": "f", "arguments": "☠"}}]}]}""", "messages[0].tool_calls[0].function.arguments")]
    [InlineData("/v1/chat/completions", """{"messages": [{"role": "user", "content": "Hi"}], "☠": 1}""", null)]
    [InlineData("/v1/completions", """{"prompt": "☠"}""", "prompt")]
    [InlineData("/v1/completions", """{"prompt": ["☠"]}""", "prompt[0]")]
    [InlineData("/tokenize", """{"content": "☠"}""", "content")]
    [InlineData("/detokenize", """{"tokens": [1], "note": "☠"}""", "note")]
    public async Task Text_that_is_not_Unicode_is_a_400_naming_the_field(string path, string template, string? param)
    {
        byte[] marker = "☠"u8.ToArray();
        byte[] body = Encoding.UTF8.GetBytes(template);
        int at = body.AsSpan().IndexOf(marker);
        foreach (byte[] bad in BadText)
        {
            var r = await Api.Post(Http, path, [.. body[..at], .. bad, .. body[(at + marker.Length)..]]);
            Assert.Equal(HttpStatusCode.BadRequest, r.Status);
            Assert.Equal("invalid_text", r.Body.GetProperty("error").GetProperty("code").GetString());
            Assert.Equal(param ?? "", r.ErrorParam);
            Assert.Contains("not valid text", r.ErrorMessage);
        }
    }

    [Fact]
    public async Task Surrogate_pairs_and_escapes_are_text()
    {
        var tokens = await Api.Post(Http, "/tokenize", """{"content": "\ud83d\ude00 caf\u00e9\n", "with_pieces": false}""");
        Assert.Equal(HttpStatusCode.OK, tokens.Status);
        var text = await Api.Post(Http, "/detokenize", JsonSerializer.Serialize(new { tokens = tokens.Body.GetProperty("tokens") }));
        Assert.Equal("😀 café\n", text.Body.GetProperty("content").GetString());
    }

    [Fact]
    public async Task A_key_given_twice_is_a_400_naming_its_object()
    {
        var r = await Api.Post(Http, "/v1/completions", """{"prompt": "a", "prompt": 5}""");
        Assert.Equal(HttpStatusCode.BadRequest, r.Status);
        Assert.Equal("duplicate_key", r.Body.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("The request body has the key \"prompt\" twice.", r.ErrorMessage);
        // Escapes are read: "\u0072ole" is "role".
        var nested = await Api.Post(Http, "/v1/chat/completions", """{"messages": [{"role": "user", "\u0072ole": "user", "content": "Hi"}]}""");
        Assert.Equal("messages[0]", nested.ErrorParam);
    }

    [Theory]
    [InlineData("", "messages[0].role is empty.")]
    [InlineData("wizard", "messages[0].role \"wizard\" is not a role of OpenAI's API or of the model's chat template.")]
    [InlineData("ipython", "messages[0].role \"ipython\" is not a role of OpenAI's API or of the model's chat template.")]
    public async Task A_role_the_template_does_not_know_is_a_400(string role, string message)
    {
        var r = await Api.Post(Http, "/v1/chat/completions", JsonSerializer.Serialize(new { messages = new[] { new { role = "system", content = "Hi" }, new { role, content = "Hi" } } }));
        Assert.Equal(HttpStatusCode.BadRequest, r.Status);
        Assert.Equal("messages[1].role", r.ErrorParam);
        Assert.Equal(message.Replace("[0]", "[1]"), r.ErrorMessage);
    }

    [Theory]
    [InlineData("developer")]
    [InlineData("tool")]
    [InlineData("function")]
    public async Task OpenAI_roles_are_accepted(string role)
    {
        var r = await Api.Post(Http, "/v1/chat/completions", JsonSerializer.Serialize(new { messages = new[] { new { role, content = "Hi" } }, max_tokens = 2 }));
        Assert.Equal(HttpStatusCode.OK, r.Status);
    }

    [Theory]
    [InlineData("""{"messages": [{"role": "user", "content": "Hi"}], "tools": [5]}""", "tools[0]")]
    [InlineData("""{"messages": [{"role": "user", "content": "Hi"}], "tools": [{"type": "retrieval"}]}""", "tools[0]")]
    [InlineData("""{"messages": [{"role": "user", "content": "Hi"}], "tools": [{"type": "function"}]}""", "tools[0].function")]
    [InlineData("""{"messages": [{"role": "user", "content": "Hi"}], "tools": [{"type": "function", "function": {"name": ""}}]}""", "tools[0].function.name")]
    [InlineData("""{"messages": [{"role": "user", "content": "Hi"}], "stream_options": true}""", "stream_options")]
    [InlineData("""{"messages": [{"role": "user", "content": "Hi"}], "model": 5}""", "model")]
    [InlineData("""{"messages": [{"role": "user", "content": "Hi"}], "user": ["x"]}""", "user")]
    [InlineData("""{"messages": [{"role": "user", "content": "Hi"}], "temperature": 1e400}""", "temperature")]
    [InlineData("""{"messages": [{"role": "user", "content": "Hi"}], "logit_bias": {"5": -1e400}}""", "logit_bias")]
    public async Task Fields_read_only_for_their_shape_are_checked(string body, string param)
    {
        var r = await Api.Post(Http, "/v1/chat/completions", body);
        Assert.Equal(HttpStatusCode.BadRequest, r.Status);
        Assert.Equal(param, r.ErrorParam);
    }

    [Fact]
    public async Task A_valid_tool_list_is_accepted()
    {
        var r = await Api.Post(Http, "/v1/chat/completions",
            """{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "tools": [{"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}}]}""");
        Assert.Equal(HttpStatusCode.OK, r.Status);
    }

    [Fact]
    public async Task A_prompt_too_long_for_any_tokenization_is_rejected_before_it_is_tokenized()
    {
        var tokenizer = fixture.Model.Tokenizer;
        int bytes = ServerFixture.Context * tokenizer.MaxBytesPerToken + 1;
        string expected = $"The prompt needs at least {ServerFixture.Context + 1} tokens ({bytes} bytes of UTF-8, at most {tokenizer.MaxBytesPerToken} per token); the context length is {ServerFixture.Context}.";
        var completion = await Api.Post(Http, "/v1/completions", JsonSerializer.Serialize(new { prompt = new string('a', bytes) }));
        Assert.Equal(HttpStatusCode.BadRequest, completion.Status);
        Assert.Equal("context_length_exceeded", completion.Body.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(expected, completion.ErrorMessage);

        // The rendered conversation is what must fit.
        var chat = await Api.Post(Http, "/v1/chat/completions", JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = new string('a', bytes) } } }));
        Assert.Equal("context_length_exceeded", chat.Body.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("messages", chat.ErrorParam);
        Assert.StartsWith("The prompt needs at least ", chat.ErrorMessage);
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

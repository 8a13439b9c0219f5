using System.Net;
using System.Text.Json;
using ManagedLM.Chat;
using ManagedLM.Generation;
using ManagedLM.Sampling;

namespace ManagedLM.Tests.Server;

/// <summary>The OpenAI endpoints answer in OpenAI's shapes, and what they generate is what the library generates.</summary>
public class ServerEndpointTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private HttpClient Http => fixture.Http;

    private GenerationResult Solo(int[] prompt, GenerationOptions options)
    {
        using var g = fixture.Model.CreateGenerator(new GeneratorOptions { ContextLength = ServerFixture.Context });
        return g.Complete(prompt, options);
    }

    private int[] ChatPrompt(params ChatMessage[] messages)
    {
        var template = fixture.Model.ChatTemplate;
        return template.Tokenize(fixture.Model.Tokenizer, template.Render(messages));
    }

    [Fact]
    public async Task Health_models_and_the_chat_page()
    {
        var health = await Api.Get(Http, "/health");
        Assert.Equal(HttpStatusCode.OK, health.Status);
        Assert.Equal("ok", health.Body.GetProperty("status").GetString());

        var models = await Api.Get(Http, "/v1/models");
        Assert.Equal("list", models.Body.GetProperty("object").GetString());
        var model = Assert.Single(models.Body.GetProperty("data").EnumerateArray());
        Assert.Equal("stories260K", model.GetProperty("id").GetString());
        Assert.Equal(ServerFixture.Context, model.GetProperty("meta").GetProperty("context_length").GetInt32());
        Assert.Equal(HttpStatusCode.OK, (await Api.Get(Http, "/v1/models/stories260K")).Status);
        var missing = await Api.Get(Http, "/v1/models/gpt-4");
        Assert.Equal(HttpStatusCode.NotFound, missing.Status);
        Assert.Equal("model_not_found", missing.Body.GetProperty("error").GetProperty("code").GetString());

        using var page = await Http.GetAsync("/");
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        string html = await page.Content.ReadAsStringAsync();
        Assert.Contains("<title>ManagedLM</title>", html);
        Assert.Contains("/v1/chat/completions", html);
    }

    [Fact]
    public async Task A_greedy_completion_equals_the_library_run_with_its_usage()
    {
        var r = await Api.Post(Http, "/v1/completions", """{"model": "any", "prompt": "Once upon a time", "max_tokens": 20, "temperature": 0}""");
        Assert.Equal(HttpStatusCode.OK, r.Status);
        var solo = Solo(fixture.Model.Tokenizer.Encode("Once upon a time", true, true), new GenerationOptions { MaxTokens = 20, Sampling = SamplingOptions.Greedy });
        Assert.Equal("text_completion", r.Body.GetProperty("object").GetString());
        Assert.StartsWith("cmpl-", r.Body.GetProperty("id").GetString());
        Assert.Equal("stories260K", r.Body.GetProperty("model").GetString());
        var choice = r.Body.GetProperty("choices")[0];
        Assert.Equal(solo.Text, choice.GetProperty("text").GetString());
        Assert.Equal("length", choice.GetProperty("finish_reason").GetString());
        var usage = r.Body.GetProperty("usage");
        Assert.Equal(solo.PromptTokens.Length, usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(20, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(solo.PromptTokens.Length + 20, usage.GetProperty("total_tokens").GetInt32());
    }

    [Fact]
    public async Task A_greedy_chat_completion_renders_the_template_and_equals_the_library_run()
    {
        var r = await Api.Post(Http, "/v1/chat/completions", """
            {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "Tell me "}, {"type": "text", "text": "a story."}]}],
             "max_tokens": 16, "temperature": 0}
            """);
        Assert.Equal(HttpStatusCode.OK, r.Status);
        int[] prompt = ChatPrompt(ChatMessage.System("Be brief."), ChatMessage.User("Tell me a story."));
        // The model has no template of its own: ChatML, whose end-of-turn marker also stops the reply.
        var solo = Solo(prompt, new GenerationOptions { MaxTokens = 16, Sampling = SamplingOptions.Greedy, StopStrings = ["<|im_end|>"] });
        Assert.Equal("chat.completion", r.Body.GetProperty("object").GetString());
        var message = r.Body.GetProperty("choices")[0].GetProperty("message");
        Assert.Equal("assistant", message.GetProperty("role").GetString());
        Assert.Equal(solo.Text, message.GetProperty("content").GetString());
        Assert.Equal(prompt.Length, r.Body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(solo.GeneratedTokens.Length, r.Body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task A_stream_carries_the_same_text_as_the_whole_response_then_usage_and_DONE()
    {
        const string body = """{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 24, "temperature": 0 STREAM}""";
        var whole = await Api.Post(Http, "/v1/chat/completions", body.Replace(" STREAM", ""));
        var events = await Api.Stream(Http, "/v1/chat/completions", body.Replace(" STREAM", """, "stream": true, "stream_options": {"include_usage": true}"""));

        Assert.Equal("[DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonDocument.Parse(e).RootElement).ToList();
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        Assert.Single(chunks.Select(c => c.GetProperty("id").GetString()).Distinct());
        Assert.Equal("assistant", chunks[0].GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString());
        Assert.Equal(whole.Body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString(), Api.StreamedText(events));

        var finish = chunks[^2].GetProperty("choices")[0];
        Assert.Equal(whole.Body.GetProperty("choices")[0].GetProperty("finish_reason").GetString(), finish.GetProperty("finish_reason").GetString());
        Assert.All(chunks[..^2], c => Assert.Equal(JsonValueKind.Null, c.GetProperty("choices")[0].GetProperty("finish_reason").ValueKind));
        var usage = chunks[^1];
        Assert.Equal(0, usage.GetProperty("choices").GetArrayLength());
        Assert.Equal(whole.Body.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), usage.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task A_completion_stream_without_usage_ends_with_the_finish_reason()
    {
        var events = await Api.Stream(Http, "/v1/completions", """{"prompt": "The little dog", "max_tokens": 12, "temperature": 0, "stream": true}""");
        var whole = await Api.Post(Http, "/v1/completions", """{"prompt": "The little dog", "max_tokens": 12, "temperature": 0}""");
        Assert.Equal("[DONE]", events[^1]);
        Assert.Equal(whole.Body.GetProperty("choices")[0].GetProperty("text").GetString(), Api.StreamedText(events));
        var last = JsonDocument.Parse(events[^2]).RootElement;
        Assert.Equal("length", last.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.False(last.TryGetProperty("usage", out _));
    }

    [Fact]
    public async Task Stop_strings_end_the_text_before_them()
    {
        var free = await Api.Post(Http, "/v1/completions", """{"prompt": "Once upon a time", "max_tokens": 30, "temperature": 0}""");
        string text = free.Body.GetProperty("choices")[0].GetProperty("text").GetString()!;
        string stop = text.Substring(text.IndexOf("Lily", StringComparison.Ordinal), 4);
        var r = await Api.Post(Http, "/v1/completions", $$"""{"prompt": "Once upon a time", "max_tokens": 30, "temperature": 0, "stop": ["{{stop}}", "zzz"]}""");
        var choice = r.Body.GetProperty("choices")[0];
        Assert.Equal(text[..text.IndexOf(stop, StringComparison.Ordinal)], choice.GetProperty("text").GetString());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task The_same_seed_gives_the_same_sampled_text_and_logit_bias_bans_a_token()
    {
        const string body = """{"prompt": "Once upon a time", "max_tokens": 24, "temperature": 1.0, "top_p": 0.95, "seed": 1234, "presence_penalty": 0.5, "frequency_penalty": 0.3}""";
        var a = await Api.Post(Http, "/v1/completions", body);
        var b = await Api.Post(Http, "/v1/completions", body);
        Assert.Equal(HttpStatusCode.OK, a.Status);
        Assert.Equal(a.Body.GetProperty("choices")[0].GetProperty("text").GetString(), b.Body.GetProperty("choices")[0].GetProperty("text").GetString());

        var greedy = await Api.Post(Http, "/v1/completions", """{"prompt": "Once upon a time", "max_tokens": 1, "temperature": 0}""");
        string first = greedy.Body.GetProperty("choices")[0].GetProperty("text").GetString()!;
        int id = Solo(fixture.Model.Tokenizer.Encode("Once upon a time", true, true), new GenerationOptions { MaxTokens = 1, Sampling = SamplingOptions.Greedy }).GeneratedTokens[0];
        var banned = await Api.Post(Http, "/v1/completions", $$$"""{"prompt": "Once upon a time", "max_tokens": 1, "temperature": 0, "logit_bias": {"{{{id}}}": -100}}""");
        Assert.NotEqual(first, banned.Body.GetProperty("choices")[0].GetProperty("text").GetString());
    }

    [Fact]
    public async Task Logprobs_come_per_token_in_both_shapes()
    {
        var chat = await Api.Post(Http, "/v1/chat/completions", """{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 6, "temperature": 0, "logprobs": true, "top_logprobs": 3}""");
        var content = chat.Body.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("content");
        Assert.Equal(chat.Body.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), content.GetArrayLength());
        foreach (var t in content.EnumerateArray())
        {
            var top = t.GetProperty("top_logprobs");
            Assert.Equal(3, top.GetArrayLength());
            // Greedy: the chosen token is the most likely one.
            Assert.Equal(top[0].GetProperty("token").GetString(), t.GetProperty("token").GetString());
            Assert.True(t.GetProperty("logprob").GetSingle() <= 0);
            Assert.True(top[0].GetProperty("logprob").GetSingle() >= top[1].GetProperty("logprob").GetSingle());
            Assert.NotEqual(0, t.GetProperty("bytes").GetArrayLength());
        }

        var completion = await Api.Post(Http, "/v1/completions", """{"prompt": "Once upon a time", "max_tokens": 5, "temperature": 0, "logprobs": 2}""");
        var lp = completion.Body.GetProperty("choices")[0].GetProperty("logprobs");
        Assert.Equal(5, lp.GetProperty("tokens").GetArrayLength());
        Assert.Equal(5, lp.GetProperty("token_logprobs").GetArrayLength());
        Assert.All(lp.GetProperty("top_logprobs").EnumerateArray(), t => Assert.InRange(t.EnumerateObject().Count(), 1, 2));
        Assert.Equal(string.Concat(lp.GetProperty("tokens").EnumerateArray().Select(t => t.GetString())),
            completion.Body.GetProperty("choices")[0].GetProperty("text").GetString());
    }

    [Fact]
    public async Task Token_id_prompts_and_tokenize_detokenize_round_trip()
    {
        var tokens = await Api.Post(Http, "/tokenize", """{"content": "Once upon a time", "add_special": true}""");
        int[] ids = tokens.Body.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32()).ToArray();
        Assert.Equal(fixture.Model.Tokenizer.Encode("Once upon a time", true, true), ids);
        var pieces = await Api.Post(Http, "/tokenize", """{"content": "Once upon", "with_pieces": true}""");
        Assert.Equal("Once upon", string.Concat(pieces.Body.GetProperty("tokens").EnumerateArray().Select(t => t.GetProperty("piece").GetString())).TrimStart());

        var text = await Api.Post(Http, "/detokenize", $$"""{"tokens": [{{string.Join(",", ids.Skip(1))}}]}""");
        Assert.Equal("Once upon a time", text.Body.GetProperty("content").GetString()!.TrimStart());

        var byIds = await Api.Post(Http, "/v1/completions", $$"""{"prompt": [{{string.Join(",", ids)}}], "max_tokens": 10, "temperature": 0}""");
        var byText = await Api.Post(Http, "/v1/completions", """{"prompt": "Once upon a time", "max_tokens": 10, "temperature": 0}""");
        Assert.Equal(byText.Body.GetProperty("choices")[0].GetProperty("text").GetString(), byIds.Body.GetProperty("choices")[0].GetProperty("text").GetString());
    }

    [Fact]
    public async Task Metrics_are_prometheus_text_counting_requests_tokens_and_batches()
    {
        await Api.Post(Http, "/v1/completions", """{"prompt": "Mom said", "max_tokens": 4, "temperature": 0}""");
        using var response = await Http.GetAsync("/metrics");
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        string text = await response.Content.ReadAsStringAsync();
        foreach (string name in new[]
        {
            "managedlm_http_requests_total", "managedlm_request_duration_seconds_bucket", "managedlm_time_to_first_token_seconds_count",
            "managedlm_queue_depth", "managedlm_active_sequences", "managedlm_batch_size_bucket", "managedlm_completion_tokens_total",
            "managedlm_engine_generated_tokens_total",
        })
            Assert.Contains(name, text);
        Assert.Contains("managedlm_http_requests_total{endpoint=\"/v1/completions\",status=\"200\"}", text);
        // Every sample line is "name{labels} value" with a numeric value.
        foreach (string line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith('#')))
            Assert.True(double.TryParse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture, out _), line);
        long completions = long.Parse(text.Split('\n').Single(l => l.StartsWith("managedlm_completion_tokens_total ", StringComparison.Ordinal)).Split(' ')[1]);
        Assert.True(completions >= 4);
    }
}

using System.Net;
using ManagedLM.Batching;
using ManagedLM.Chat;
using ManagedLM.Server;

namespace ManagedLM.Tests.Server;

/// <summary>ServerOptions.ChatTemplate (serve --chat-template-file) renders conversations instead of the model's template.</summary>
public class ServerTemplateOverrideTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task Chat_requests_render_with_the_given_template()
    {
        var template = ChatTemplate.Parse("{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}");
        await using var server = await OpenAiServer.StartAsync(fixture.Model, new ServerOptions
        {
            Port = 0, ChatTemplate = template, Engine = new BatchEngineOptions { MaxActiveSequences = 2, Threads = 1, ContextLength = 256 },
        });
        using var http = ServerFixture.Client(server);
        var chat = await Api.Post(http, "/v1/chat/completions", """{"messages": [{"role": "user", "content": "Once upon a time"}], "max_tokens": 8, "temperature": 0}""");
        var plain = await Api.Post(http, "/v1/completions", """{"prompt": "Once upon a time", "max_tokens": 8, "temperature": 0}""");
        Assert.Equal(HttpStatusCode.OK, chat.Status);
        Assert.Equal(plain.Body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32(), chat.Body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(plain.Body.GetProperty("choices")[0].GetProperty("text").GetString(),
            chat.Body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public void Serve_reports_an_unreadable_template_file_under_its_flag()
    {
        var (code, _, error) = ManagedLM.Tests.Cli.CliRun.Invoke("serve", "-m", TestData.Model("stories260K.gguf"), "--chat-template-file", "/nonexistent/t.jinja");
        Assert.NotEqual(0, code);
        Assert.Contains("--chat-template-file", error);
    }
}

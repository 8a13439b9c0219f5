using System.Text.Json;
using ManagedLM.Chat;
using ManagedLM.Generation;
using ManagedLM.Sampling;

namespace ManagedLM.Tests.Server;

/// <summary>The official openai npm package (pinned in tests/node/package.json) against the server: what it reads is what the library generates.</summary>
public class OpenAiClientTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task The_openai_package_lists_models_chats_streams_completes_and_raises_errors()
    {
        var run = await ClientTools.NodeAsync("openai-client.mjs", new Uri(fixture.Server.BaseAddress, "v1").ToString());
        Assert.True(run.ExitCode == 0, run.ToString());
        using var report = JsonDocument.Parse(run.Stdout);
        var r = report.RootElement;
        Assert.Equal("stories260K", r.GetProperty("models")[0].GetString());

        var template = fixture.Model.ChatTemplate;
        int[] prompt = template.Tokenize(fixture.Model.Tokenizer, template.Render([ChatMessage.System("You tell short stories."), ChatMessage.User("Tell me about a cat.")]));
        using var g = fixture.Model.CreateGenerator(new GeneratorOptions { ContextLength = ServerFixture.Context });
        var solo = g.Complete(prompt, new GenerationOptions { MaxTokens = 24, Sampling = SamplingOptions.Greedy, StopStrings = ["<|im_end|>"] });
        Assert.Equal(solo.Text, r.GetProperty("chat").GetProperty("text").GetString());
        Assert.Equal(solo.Text, r.GetProperty("chatStream").GetProperty("text").GetString());
        Assert.Equal(prompt.Length, r.GetProperty("chat").GetProperty("usage").GetProperty("prompt_tokens").GetInt32());

        Assert.Equal(400, r.GetProperty("error").GetProperty("status").GetInt32());
        Assert.Equal("temperature", r.GetProperty("error").GetProperty("param").GetString());
    }

    [Fact]
    public async Task The_openai_package_gets_structured_output_and_tool_calls()
    {
        var run = await ClientTools.NodeAsync("openai-structured.mjs", new Uri(fixture.Server.BaseAddress, "v1").ToString());
        Assert.True(run.ExitCode == 0, run.ToString());
        using var report = JsonDocument.Parse(run.Stdout);
        var r = report.RootElement;
        const string Schema = """
            {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12}, "celsius": {"type": "integer", "minimum": -40, "maximum": 50}},
             "required": ["city", "celsius"], "additionalProperties": false}
            """;
        string structured = r.GetProperty("jsonSchema").GetProperty("content").GetString()!;
        Assert.True(ManagedLM.Tests.Grammars.JsonSchemaTestValidator.IsValid(Schema, structured), structured);
        string jsonObject = r.GetProperty("jsonObject").GetProperty("content").GetString()!;
        Assert.True(ManagedLM.Grammars.Grammar.JsonObject.CreateMatcher().TryAccept(jsonObject), jsonObject);
        foreach (var call in r.GetProperty("toolCall").GetProperty("tool_calls").EnumerateArray())
        {
            string arguments = call.GetProperty("function").GetProperty("arguments").GetString()!;
            Assert.True(ManagedLM.Tests.Grammars.JsonSchemaTestValidator.IsValid(Schema, arguments), arguments);
        }
        Assert.Equal(400, r.GetProperty("error").GetProperty("status").GetInt32());
        Assert.Equal("tool_choice", r.GetProperty("error").GetProperty("param").GetString());
        Assert.Equal(JsonValueKind.String, r.GetProperty("followUp").GetProperty("content").ValueKind);
    }
}

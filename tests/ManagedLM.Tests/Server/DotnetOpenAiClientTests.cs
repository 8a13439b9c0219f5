#pragma warning disable OPENAI001 // ChatCompletionOptions.Seed: a seeded sample cannot run out of tokens inside a random string on one run and not another
using System.ClientModel;
using System.Text.Json;
using ManagedLM.Tests.Grammars;
using Microsoft.Extensions.AI;
using OpenAI;
using OpenAI.Chat;

namespace ManagedLM.Tests.Server;

/// <summary>
/// The official OpenAI .NET package (2.15.0) and Microsoft.Extensions.AI.OpenAI pointed at our server: structured output
/// requests reach the grammar and come back valid.
/// </summary>
public class DotnetOpenAiClientTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const string Schema = """
        {"type": "object", "properties": {"city": {"type": "string", "maxLength": 10}, "rainy": {"type": "boolean"}},
         "required": ["city", "rainy"], "additionalProperties": false}
        """;

    public sealed record Weather(string City, bool Rainy);

    private ChatClient Client() => new("stories260K", new ApiKeyCredential("unused"),
        new OpenAIClientOptions { Endpoint = new Uri(fixture.Server.BaseAddress, "v1") });

    [Fact]
    public async Task Json_schema_response_format_from_the_openai_package_is_honoured()
    {
        var options = new ChatCompletionOptions
        {
            ResponseFormat = OpenAI.Chat.ChatResponseFormat.CreateJsonSchemaFormat("weather", BinaryData.FromString(Schema), jsonSchemaIsStrict: true),
            Temperature = 1, Seed = 7, MaxOutputTokenCount = 300,
        };
        ChatCompletion completion = await Client().CompleteChatAsync([new UserChatMessage("Weather?")], options);
        Assert.Equal(OpenAI.Chat.ChatFinishReason.Stop, completion.FinishReason);
        string text = completion.Content[0].Text;
        Assert.True(JsonSchemaTestValidator.IsValid(Schema, text), text);
    }

    [Fact]
    public async Task Json_object_mode_streams_json()
    {
        var options = new ChatCompletionOptions { ResponseFormat = OpenAI.Chat.ChatResponseFormat.CreateJsonObjectFormat(), Temperature = 1, MaxOutputTokenCount = 60 };
        var text = new System.Text.StringBuilder();
        await foreach (var update in Client().CompleteChatStreamingAsync([new UserChatMessage("Hi")], options))
        {
            foreach (var part in update.ContentUpdate)
                text.Append(part.Text);
        }
        Assert.True(ManagedLM.Grammars.Grammar.JsonObject.CreateMatcher().TryAccept(text.ToString()), text.ToString());
    }

    [Fact]
    public async Task Typed_responses_through_the_extensions_adapter()
    {
        IChatClient client = Client().AsIChatClient();
        // Seeded: an unseeded sample may run out of tokens inside a long random string.
        var response = await client.GetResponseAsync<Weather>("What is the weather?", new ChatOptions { Temperature = 1, Seed = 7, MaxOutputTokens = 300 });
        Assert.True(response.TryGetResult(out var weather), response.Text);
        Assert.NotNull(weather!.City);
    }

    [Fact]
    public async Task An_unsupported_schema_is_a_client_error_naming_the_keyword()
    {
        var options = new ChatCompletionOptions
        {
            ResponseFormat = OpenAI.Chat.ChatResponseFormat.CreateJsonSchemaFormat("x", BinaryData.FromString("""{"type": "array", "uniqueItems": true}""")),
        };
        var e = await Assert.ThrowsAsync<ClientResultException>(() => Client().CompleteChatAsync([new UserChatMessage("Hi")], options));
        Assert.Equal(400, e.Status);
        Assert.Contains("uniqueItems", e.Message);
    }

    [Fact]
    public async Task Tool_calls_reach_the_openai_package_whole_and_streamed()
    {
        var tool = ChatTool.CreateFunctionTool("get_weather", "Weather of a city", BinaryData.FromString(Schema), functionSchemaIsStrict: true);
        var options = new ChatCompletionOptions
        {
            Tools = { tool }, ToolChoice = ChatToolChoice.CreateRequiredChoice(), AllowParallelToolCalls = false, Temperature = 1, Seed = 7, MaxOutputTokenCount = 300,
        };
        ChatCompletion completion = await Client().CompleteChatAsync([new UserChatMessage("Weather in Paris?")], options);
        Assert.Equal(OpenAI.Chat.ChatFinishReason.ToolCalls, completion.FinishReason);
        var call = Assert.Single(completion.ToolCalls);
        Assert.Equal("get_weather", call.FunctionName);
        Assert.True(JsonSchemaTestValidator.IsValid(Schema, call.FunctionArguments.ToString()), call.FunctionArguments.ToString());

        var arguments = new System.Text.StringBuilder();
        string? name = null;
        OpenAI.Chat.ChatFinishReason? finish = null;
        await foreach (var update in Client().CompleteChatStreamingAsync([new UserChatMessage("Weather in Paris?")], options))
        {
            foreach (var part in update.ToolCallUpdates)
            {
                name ??= part.FunctionName;
                arguments.Append(part.FunctionArgumentsUpdate?.ToString());
            }
            finish ??= update.FinishReason;
        }
        Assert.Equal("get_weather", name);
        Assert.Equal(OpenAI.Chat.ChatFinishReason.ToolCalls, finish);
        Assert.True(JsonSchemaTestValidator.IsValid(Schema, arguments.ToString()), arguments.ToString());
    }
}

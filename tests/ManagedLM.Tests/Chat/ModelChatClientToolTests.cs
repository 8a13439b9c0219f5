using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using ManagedLM.Chat;
using ManagedLM.Generation;
using ManagedLM.Tests.Concurrency;
using Microsoft.Extensions.AI;

namespace ManagedLM.Tests.Chat;

/// <summary>
/// Tools through Microsoft.Extensions.AI: ChatOptions.Tools and ToolMode constrain the reply to calls of real
/// AIFunctionFactory functions, returned as FunctionCallContent, and UseFunctionInvocation runs them end to end.
/// stories260K renders with ChatML (the generic JSON call format), the qwen2 fixture with Qwen2.5's template (Hermes).
/// </summary>
public class ModelChatClientToolTests(SharedModels models) : IClassFixture<SharedModels>
{
    [Description("The weather of a city")]
    private static string GetWeather([MaxLength(12)] string city, [Range(1, 7)] int days) => $"{city}: sunny for {days} days";

    [Description("The local time")]
    private static string GetTime() => "12:00";

    private IChatClient Client(ManagedLM.Model.TransformerModel model) => new ModelChatClient(model, new ModelChatClientOptions
    {
        Generator = new GeneratorOptions { ContextLength = 1024 },
        Generation = new GenerationOptions { MaxTokens = 200 },
    });

    public static TheoryData<string, int> Cases => new() { { "stories", 1 }, { "stories", 2 }, { "qwen2", 1 }, { "qwen2", 2 } };

    private ManagedLM.Model.TransformerModel Model(string name) => name == "stories" ? models.Stories : models.Gpt2Vocab;

    private static void AssertWeatherArguments(FunctionCallContent call)
    {
        Assert.Equal("GetWeather", call.Name);
        Assert.False(string.IsNullOrEmpty(call.CallId));
        var city = ((JsonElement)call.Arguments!["city"]!).GetString()!;
        Assert.True(city.Length <= 12, city);
        Assert.InRange(((JsonElement)call.Arguments["days"]!).GetInt32(), 1, 7);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Required_tool_mode_returns_a_valid_function_call(string model, int seed)
    {
        using var client = Client(Model(model));
        var options = new ChatOptions
        {
            Tools = [AIFunctionFactory.Create(GetWeather, "GetWeather"), AIFunctionFactory.Create(GetTime, "GetTime")],
            ToolMode = ChatToolMode.RequireSpecific("GetWeather"), AllowMultipleToolCalls = false, Temperature = 1, Seed = seed,
        };
        var response = await client.GetResponseAsync("What is the weather in Paris?", options);
        Assert.Equal(ChatFinishReason.ToolCalls, response.FinishReason);
        AssertWeatherArguments(Assert.Single(response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>()));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Streaming_returns_the_same_call(string model, int seed)
    {
        using var client = Client(Model(model));
        var options = new ChatOptions
        {
            Tools = [AIFunctionFactory.Create(GetWeather, "GetWeather")], ToolMode = ChatToolMode.RequireAny, AllowMultipleToolCalls = false,
            Temperature = 1, Seed = seed,
        };
        var whole = await client.GetResponseAsync("Weather?", options);
        var updates = await client.GetStreamingResponseAsync("Weather?", options).ToListAsync();
        var streamed = updates.ToChatResponse();
        Assert.Equal(ChatFinishReason.ToolCalls, streamed.FinishReason);
        var a = Assert.Single(whole.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>());
        var b = Assert.Single(streamed.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>());
        Assert.Equal(JsonSerializer.Serialize(a.Arguments), JsonSerializer.Serialize(b.Arguments));
        AssertWeatherArguments(b);
    }

    [Fact]
    public async Task Function_invocation_runs_the_csharp_function_and_answers()
    {
        var calls = new List<(string City, int Days)>();
        var tool = AIFunctionFactory.Create(([MaxLength(12)] string city, [Range(1, 7)] int days) =>
        {
            calls.Add((city, days));
            return $"{city}: sunny";
        }, "GetWeather", "The weather of a city");
        using var inner = Client(models.Gpt2Vocab);
        var client = new ChatClientBuilder(inner).UseFunctionInvocation().Build();
        var response = await client.GetResponseAsync("What is the weather in Paris?", new ChatOptions
        {
            Tools = [tool], ToolMode = ChatToolMode.RequireAny, AllowMultipleToolCalls = false, Temperature = 1, Seed = 3, MaxOutputTokens = 200,
        });
        var (city, days) = Assert.Single(calls);
        Assert.True(city.Length <= 12);
        Assert.InRange(days, 1, 7);
        // The conversation holds the call, its result, and the model's answer after it.
        var contents = response.Messages.SelectMany(m => m.Contents).ToList();
        Assert.Single(contents.OfType<FunctionCallContent>());
        Assert.Equal($"{city}: sunny", Assert.Single(contents.OfType<FunctionResultContent>()).Result?.ToString());
        Assert.Equal(ChatRole.Assistant, response.Messages[^1].Role);
    }

    [Fact]
    public async Task None_tool_mode_and_no_tools_reply_with_the_same_text()
    {
        using var client = Client(models.Stories);
        var plain = await client.GetResponseAsync("Hi", new ChatOptions { Temperature = 0, MaxOutputTokens = 16 });
        var none = await client.GetResponseAsync("Hi", new ChatOptions
        {
            Temperature = 0, MaxOutputTokens = 16, Tools = [AIFunctionFactory.Create(GetTime, "GetTime")], ToolMode = ChatToolMode.None,
        });
        Assert.Empty(none.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>());
        Assert.Equal(plain.Usage!.OutputTokenCount, none.Usage!.OutputTokenCount);
    }

    [Fact]
    public async Task Reasoning_comes_back_as_reasoning_content_or_inline()
    {
        var template = ChatTemplate.Parse("{% for m in messages %}{{ m.content }}{% endfor %}<think>\n");
        var options = new ChatOptions { Temperature = 1, Seed = 1 };
        var generation = new GenerationOptions { MaxTokens = 50, Grammar = ManagedLM.Grammars.Grammar.FromGbnf("root ::= \"hmm\" \"</think>\" \" ok.\"") };
        using var split = new ModelChatClient(models.Stories, new ModelChatClientOptions { Template = template, Generation = generation });
        var r = await split.GetResponseAsync("Hi", options);
        Assert.Equal("hmm", Assert.Single(r.Messages[0].Contents.OfType<TextReasoningContent>()).Text);
        Assert.Equal("ok.", r.Text);
        var streamed = (await split.GetStreamingResponseAsync("Hi", options).ToListAsync()).ToChatResponse();
        Assert.Equal("hmm", string.Concat(streamed.Messages.SelectMany(m => m.Contents).OfType<TextReasoningContent>().Select(c => c.Text)));
        Assert.Equal("ok.", streamed.Text);
        using var inline = new ModelChatClient(models.Stories, new ModelChatClientOptions { Template = template, Generation = generation, ExtractReasoning = false });
        Assert.Equal("hmm</think> ok.", (await inline.GetResponseAsync("Hi", options)).Text);
    }
}

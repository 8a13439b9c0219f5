using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using ManagedLM.Chat;
using ManagedLM.Model;
using Microsoft.Extensions.AI;

namespace ManagedLM.Samples;

/// <summary>The README's tool-calling sample: a C# function the model calls through UseFunctionInvocation.</summary>
public static class ToolsSample
{
    /// <summary>Prints each call the model made and the final answer, then a line of JSON with the calls.</summary>
    public static async Task RunAsync(TransformerModel model, CancellationToken ct)
    {
        var calls = new List<string>();

        #region readme: tools
        [Description("The current weather of a city")]
        string GetWeather([MaxLength(20)] string city, [Description("C or F")] string unit)
        {
            calls.Add($"GetWeather({city}, {unit})");
            return $"{{\"city\": \"{city}\", \"temperature\": 21, \"unit\": \"{unit}\"}}";
        }

        IChatClient client = new ChatClientBuilder(new ModelChatClient(model)).UseFunctionInvocation().Build();
        var options = new ChatOptions
        {
            Tools = [AIFunctionFactory.Create(GetWeather)],
            ToolMode = ChatToolMode.RequireAny,   // the first reply must call it; Auto lets the model choose
            Temperature = 0.7f, Seed = 5, MaxOutputTokens = 400,
        };
        ChatResponse answer = await client.GetResponseAsync("What is the weather in Paris?", options, ct);
        Console.WriteLine($"{string.Join(", ", calls)}\n{answer.Text}");
        #endregion

        Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?> { ["calls"] = calls, ["answer"] = answer.Text }));
    }
}

using ManagedLM.Chat;

namespace ManagedLM.Tests.Chat;

/// <summary>
/// A call's arguments reach each template in the form it prints: templates that apply tojson to them get the object
/// (no doubly escaped JSON in the prompt), templates that print them as they are get the text.
/// </summary>
public class ToolArgumentsRenderingTests
{
    private static readonly ChatMessage[] Conversation =
    [
        ChatMessage.User("Weather in Paris?"),
        new("assistant", null) { ToolCalls = [new ToolCall("call12345", "get_weather", """{"city":"Paris","days":3}""")] },
        new("tool", """{"celsius": 21}""") { ToolCallId = "call12345" },
    ];

    [Theory]
    [InlineData("Qwen-Qwen2.5-7B-Instruct")]
    [InlineData("NousResearch-Hermes-3-Llama-3.1-8B-tool_use")]
    [InlineData("NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use")]
    [InlineData("meta-llama-Llama-3.1-8B-Instruct")]
    [InlineData("mistralai-Mistral-Nemo-Instruct-2407")]
    [InlineData("meetkai-functionary-medium-v3.2")]
    [InlineData("CohereForAI-c4ai-command-r7b-12-2024-tool_use")]
    public void Arguments_are_never_escaped_twice(string name)
    {
        var template = ChatTemplate.Parse(File.ReadAllText(TestData.Model($"templates/{name}.jinja")), "<s>", "</s>");
        string prompt = template.Render(Conversation);
        Assert.DoesNotContain("\\\"city\\\"", prompt);
        Assert.Matches("\"city\": ?\"Paris\"", prompt);
    }
}

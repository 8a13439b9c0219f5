using System.Text.Json.Nodes;
using ManagedLM.Chat;
using ManagedLM.Chat.Tools;

namespace ManagedLM.Tests.Chat.Tools;

/// <summary>The shared chat templates and the tools of the shared tool-calls conversation.</summary>
internal static class ToolTemplates
{
    public static string Dir => Path.Combine(TestData.ModelsDir, "templates");

    public static JsonObject Conversation => (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(Dir, "conversations", "tool-calls.json")))!;

    public static JsonArray ToolsJson => (JsonArray)Conversation["tools"]!.DeepClone();

    /// <summary>get_current_weather(location, unit?: celsius|fahrenheit), get_forecast(location, days: integer).</summary>
    public static IReadOnlyList<ToolDefinition> Tools => ToolDefinition.FromOpenAi(ToolsJson);

    public static ChatTemplate Load(string stem)
    {
        var entry = JsonNode.Parse(File.ReadAllText(Path.Combine(Dir, "context.json")))!["templates"]![stem]!;
        return ChatTemplate.Parse(File.ReadAllText(Path.Combine(Dir, stem + ".jinja")), entry["bos_token"]!.GetValue<string>(), entry["eos_token"]!.GetValue<string>());
    }

    /// <summary>Renders the first <paramref name="count"/> messages of the tool-calls conversation with its tools.</summary>
    public static string Render(string stem, int count, bool addGenerationPrompt)
    {
        var messages = new JsonArray([.. Conversation["messages"]!.AsArray().Take(count).Select(m => m!.DeepClone())]);
        var variables = stem.StartsWith("meta-llama", StringComparison.Ordinal) ? new JsonObject { ["tools_in_user_message"] = false } : null;
        return Load(stem).Render(new JsonObject { ["messages"] = messages }, new ChatTemplateOptions
        {
            AddGenerationPrompt = addGenerationPrompt,
            Tools = ToolsJson,
            Variables = variables,
            Now = new DateTime(2024, 7, 26, 0, 0, 0, DateTimeKind.Utc),
        });
    }
}

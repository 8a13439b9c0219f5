using ManagedLM.Chat.Tools;

namespace ManagedLM.Tests.Chat.Tools;

/// <summary>A reply in some format and what it parses to; calls as "name arguments" (compact JSON), ids checked elsewhere.</summary>
public sealed record ReplyCase(string Format, string Reply, string Content, string? Reasoning, string[] Calls, bool WellFormed = true, bool StartsInReasoning = false, bool Inline = false)
{
    public ToolCallFormat ToolFormat => ToolCallFormat.FromName(Format)!;
    public ReplyParseOptions Options(long seed = 7) => new() { IdSeed = seed, StartsInReasoning = StartsInReasoning, ExtractReasoning = !Inline };
    public override string ToString() => $"{Format}: {Reply[..Math.Min(Reply.Length, 60)]}";
}

/// <summary>Replies written in each format: single and parallel calls, text around them, unicode, reasoning, malformed calls.</summary>
public static class ToolReplies
{
    const string Weather = "get_current_weather", Forecast = "get_forecast";

    public static readonly ReplyCase[] All =
    [
        // Hermes 2/3, Qwen 2.5/3.
        new("hermes", "<tool_call>\n{\"name\": \"get_current_weather\", \"arguments\": {\"location\": \"Paris, France\"}}\n</tool_call>", "", null, [$"{Weather} {{\"location\":\"Paris, France\"}}"]),
        new("hermes", "Let me check.\n<tool_call>\n{\"name\": \"get_current_weather\", \"arguments\": {\"location\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_forecast\", \"arguments\": {\"location\": \"Paris\", \"days\": 3}}\n</tool_call>",
            "Let me check.", null, [$"{Weather} {{\"location\":\"Paris\"}}", $"{Forecast} {{\"location\":\"Paris\",\"days\":3}}"]),
        new("hermes", "<tool_call>{\"name\": \"get_current_weather\", \"arguments\": {\"location\": \"Zürich, 日本 🌧 \\\"q\\\" \\u00e9\", \"unit\": \"celsius\"}}</tool_call> Done.",
            "Done.", null, [$"{Weather} {{\"location\":\"Zürich, 日本 🌧 \\\"q\\\" \\u00e9\",\"unit\":\"celsius\"}}"]),
        new("hermes", "<think>\nThe user wants the weather.\n</think>\n\n<tool_call>\n{\"name\": \"get_forecast\", \"arguments\": {\"days\": 2, \"location\": \"Oslo\"}}\n</tool_call>",
            "", "The user wants the weather.", [$"{Forecast} {{\"days\":2,\"location\":\"Oslo\"}}"]),
        new("hermes", "<tool_call>{\"name\":\"get_forecast\",\"arguments\":{\"days\":2,\"location\":\"Oslo\"}}", "", null, [$"{Forecast} {{\"days\":2,\"location\":\"Oslo\"}}"]),
        new("hermes", "Hello there! 1 < 2 and <tool_ is not a tag.", "Hello there! 1 < 2 and <tool_ is not a tag.", null, []),
        new("hermes", "<tool_call>\n{\"name\": \"get_current_weather\", \"arguments\": {\"location\": }}\n</tool_call>",
            "<tool_call>\n{\"name\": \"get_current_weather\", \"arguments\": {\"location\": }}\n</tool_call>", null, [], WellFormed: false),
        new("hermes", "<tool_call>\n{\"arguments\": {\"location\": \"Rome\"}}\n</tool_call>", "<tool_call>\n{\"arguments\": {\"location\": \"Rome\"}}\n</tool_call>", null, [], WellFormed: false),

        // Llama 3.1/3.2/3.3.
        new("llama3", "{\"name\": \"get_forecast\", \"parameters\": {\"location\": \"Paris, France\", \"days\": 3}}", "", null, [$"{Forecast} {{\"location\":\"Paris, France\",\"days\":3}}"]),
        new("llama3", "{\"type\": \"function\", \"name\": \"get_current_weather\", \"parameters\": {\"location\": \"Lyon\"}}", "", null, [$"{Weather} {{\"location\":\"Lyon\"}}"]),
        new("llama3", "<|python_tag|>brave_search.call(query=\"weather in Paris\", count=3)", "", null, ["brave_search {\"query\":\"weather in Paris\",\"count\":3}"]),
        new("llama3", "Let me compute.<|python_tag|>print(1 + 1)", "Let me compute.", null, ["python {\"code\":\"print(1 + 1)\"}"]),
        new("llama3", "The weather is {sunny}.", "The weather is {sunny}.", null, []),
        new("llama3", "Let me check. {\"name\": \"get_current_weather\", \"parameters\": {\"location\": \"Nice\"}}", "Let me check.", null, [$"{Weather} {{\"location\":\"Nice\"}}"]),
        new("llama3", "{\"note\": 1} then {\"name\": \"get_current_weather\", \"parameters\": {\"location\": \"Nice\"}}", "{\"note\": 1} then", null, [$"{Weather} {{\"location\":\"Nice\"}}"]),
        new("llama3", "{\"not\": \"a call\"}", "{\"not\": \"a call\"}", null, []),

        // Mistral Nemo.
        new("mistral-nemo", "[TOOL_CALLS][{\"name\": \"get_current_weather\", \"arguments\": {\"location\": \"Paris\"}, \"id\": \"abcDEF123\"}]", "", null, [$"{Weather} {{\"location\":\"Paris\"}}"]),
        new("mistral-nemo", "Sure. [TOOL_CALLS][{\"name\": \"get_current_weather\", \"arguments\": {\"location\": \"Paris\"}, \"id\": \"abcDEF123\"}, {\"name\": \"get_forecast\", \"arguments\": {\"location\": \"Kyiv, Україна\", \"days\": 7}}]",
            "Sure.", null, [$"{Weather} {{\"location\":\"Paris\"}}", $"{Forecast} {{\"location\":\"Kyiv, Україна\",\"days\":7}}"]),
        new("mistral-nemo", "[TOOL_CALLS][{\"name\": \"get_forecast\", \"arguments\": {\"days\": 1", "[TOOL_CALLS][{\"name\": \"get_forecast\", \"arguments\": {\"days\": 1", null, [], WellFormed: false),

        // Functionary v3.2 (the prompt ends with ">>>").
        new("functionary-v3.2", "get_current_weather\n{\"location\": \"Paris\"}", "", null, [$"{Weather} {{\"location\":\"Paris\"}}"]),
        new("functionary-v3.2", "all\nLet me look that up.>>>get_forecast\n{\"location\": \"Paris\", \"days\": 2}>>>get_current_weather\n{\"location\": \"Paris\"}",
            "Let me look that up.", null, [$"{Forecast} {{\"location\":\"Paris\",\"days\":2}}", $"{Weather} {{\"location\":\"Paris\"}}"]),
        new("functionary-v3.2", "all\nJust text, with > and >> inside.", "Just text, with > and >> inside.", null, []),
        new("functionary-v3.2", "python\nprint(\"hi\")", "", null, ["python {\"code\":\"print(\\\"hi\\\")\"}"]),

        // Command R7B.
        new("command-r7b", "<|START_THINKING|>I should call the tools.<|END_THINKING|><|START_ACTION|>[\n    {\"tool_call_id\": \"0\", \"tool_name\": \"get_current_weather\", \"parameters\": {\"location\": \"Paris\"}},\n    {\"tool_call_id\": \"1\", \"tool_name\": \"get_forecast\", \"parameters\": {\"location\": \"Paris\", \"days\": 2}}\n]<|END_ACTION|>",
            "", "I should call the tools.", [$"{Weather} {{\"location\":\"Paris\"}}", $"{Forecast} {{\"location\":\"Paris\",\"days\":2}}"]),
        new("command-r7b", "<|START_THINKING|>Easy.<|END_THINKING|><|START_RESPONSE|>It is sunny.<|END_RESPONSE|>", "It is sunny.", "Easy.", []),

        // DeepSeek R1.
        new("deepseek-r1", "<think>\nNeed the weather.\n</think>\n\n<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_current_weather\n```json\n{\"location\": \"Paris\"}\n```<｜tool▁call▁end｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_forecast\n```json\n{\"location\": \"Paris\", \"days\": 5}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
            "", "Need the weather.", [$"{Weather} {{\"location\":\"Paris\"}}", $"{Forecast} {{\"location\":\"Paris\",\"days\":5}}"]),
        new("deepseek-r1", "Hmm, the user asks.\n</think>\n\nIt is sunny in Paris.", "It is sunny in Paris.", "Hmm, the user asks.", [], StartsInReasoning: true),
        new("deepseek-r1", "Still thinking <", "", "Still thinking <", [], StartsInReasoning: true),
        new("deepseek-r1", "<think>x</think>Answer", "<think>x</think>Answer", null, [], Inline: true),
        new("deepseek-r1", "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_forecast\n```json\n{\"location\": \"Paris\", \"days\" 5}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
            "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_forecast\n```json\n{\"location\": \"Paris\", \"days\" 5}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>", null, [], WellFormed: false),

        // Generic.
        new("generic", "{\"tool_call\": {\"name\": \"get_forecast\", \"arguments\": {\"location\": \"Paris\", \"days\": 1}}}", "", null, [$"{Forecast} {{\"location\":\"Paris\",\"days\":1}}"]),
        new("generic", "{\"tool_calls\": [{\"name\": \"get_current_weather\", \"arguments\": {\"location\": \"Paris\"}}, {\"name\": \"get_forecast\", \"arguments\": {\"location\": \"Paris\", \"days\": 2}}]}",
            "", null, [$"{Weather} {{\"location\":\"Paris\"}}", $"{Forecast} {{\"location\":\"Paris\",\"days\":2}}"]),
        new("generic", "{\"response\": \"Hi \\\"there\\\" ☀\"}", "Hi \"there\" ☀", null, []),
        new("generic", "{\"something\": 1}", "{\"something\": 1}", null, []),
        new("generic", "plain text", "plain text", null, []),
    ];

    public static TheoryData<int> Indices()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < All.Length; i++) data.Add(i);
        return data;
    }

    public static TheoryData<int> WellFormedIndices()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < All.Length; i++)
        {
            if (All[i].WellFormed) data.Add(i);
        }
        return data;
    }
}

using ManagedLM.Chat.Tools;
using ManagedLM.Grammars;

namespace ManagedLM.Tests.Chat.Tools;

public class ToolCallGrammarTests
{
    /// <summary>The text of calls (name, arguments JSON) as each format writes them.</summary>
    static string Write(string format, params (string Name, string Arguments)[] calls) => format switch
    {
        "hermes" => string.Join("\n", calls.Select(c => $"<tool_call>\n{{\"name\": \"{c.Name}\", \"arguments\": {c.Arguments}}}\n</tool_call>")),
        "llama3" => $"{{\"name\": \"{calls[0].Name}\", \"parameters\": {calls[0].Arguments}}}",
        "mistral-nemo" => "[TOOL_CALLS][" + string.Join(", ", calls.Select(c => $"{{\"name\": \"{c.Name}\", \"arguments\": {c.Arguments}, \"id\": \"abcDEF123\"}}")) + "]",
        "functionary-v3.2" => string.Join(">>>", calls.Select(c => $"{c.Name}\n{c.Arguments}")),
        "command-r7b" => "<|START_ACTION|>[\n" + string.Join(",\n", calls.Select((c, i) => $"    {{\"tool_call_id\": \"{i}\", \"tool_name\": \"{c.Name}\", \"parameters\": {c.Arguments}}}")) + "\n]<|END_ACTION|>",
        "deepseek-r1" => "<｜tool▁calls▁begin｜>" + string.Join("\n", calls.Select(c => $"<｜tool▁call▁begin｜>function<｜tool▁sep｜>{c.Name}\n```json\n{c.Arguments}\n```<｜tool▁call▁end｜>")) + "<｜tool▁calls▁end｜>",
        "generic" => calls.Length == 1
            ? $"{{\"tool_call\": {{\"name\": \"{calls[0].Name}\", \"arguments\": {calls[0].Arguments}}}}}"
            : "{\"tool_calls\": [" + string.Join(", ", calls.Select(c => $"{{\"name\": \"{c.Name}\", \"arguments\": {c.Arguments}}}")) + "]}",
        _ => throw new ArgumentException(format),
    };

    public static TheoryData<string> Formats() => [.. ToolCallFormat.All.Select(f => f.Format.Name)];

    static bool Matches(ToolCallPlan plan, string text)
    {
        var matcher = Grammar.FromGbnf(plan.Gbnf!).CreateMatcher();
        return matcher.TryAccept(text) && matcher.IsComplete;
    }

    const string Forecast = """{"location": "Paris, France", "days": 3}""";
    const string Weather = """{"location": "Zürich 🌧", "unit": "celsius"}""";

    [Theory]
    [MemberData(nameof(Formats))]
    public void Required_accepts_valid_calls_that_parse_back(string name)
    {
        var format = ToolCallFormat.FromName(name)!;
        var plan = format.Plan(ToolTemplates.Tools, ToolChoice.Required, parallelToolCalls: false);
        Assert.False(plan.Lazy);
        foreach (var (tool, arguments) in new[] { ("get_forecast", Forecast), ("get_current_weather", Weather), ("get_current_weather", """{"location":"x"}""") })
        {
            string text = Write(name, (tool, arguments));
            Assert.True(Matches(plan, text), text);
            var call = Assert.Single(format.Parse(text).ToolCalls);
            Assert.Equal(tool, call.Name);
        }
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void Rejects_calls_whose_arguments_violate_the_schema(string name)
    {
        var plan = ToolCallFormat.FromName(name)!.Plan(ToolTemplates.Tools, ToolChoice.Required);
        Assert.False(Matches(plan, Write(name, ("get_forecast", """{"location": "Paris", "days": "three"}"""))));
        Assert.False(Matches(plan, Write(name, ("get_forecast", """{"days": 3}"""))));
        Assert.False(Matches(plan, Write(name, ("get_current_weather", """{"location": "Paris", "unit": "kelvin"}"""))));
        Assert.False(Matches(plan, Write(name, ("get_weather", """{"location": "Paris"}"""))));
        Assert.False(Matches(plan, "The weather is fine."));
    }

    [Theory]
    [InlineData("hermes")]
    [InlineData("mistral-nemo")]
    [InlineData("functionary-v3.2")]
    [InlineData("command-r7b")]
    [InlineData("deepseek-r1")]
    [InlineData("generic")]
    public void Parallel_calls_only_when_allowed(string name)
    {
        var format = ToolCallFormat.FromName(name)!;
        string two = Write(name, ("get_forecast", Forecast), ("get_current_weather", Weather));
        Assert.True(Matches(format.Plan(ToolTemplates.Tools, ToolChoice.Required, parallelToolCalls: true), two));
        Assert.False(Matches(format.Plan(ToolTemplates.Tools, ToolChoice.Required, parallelToolCalls: false), two));
        Assert.Equal(2, format.Parse(two).ToolCalls.Length);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void A_named_function_allows_only_that_function(string name)
    {
        var plan = ToolCallFormat.FromName(name)!.Plan(ToolTemplates.Tools, ToolChoice.Function("get_forecast"));
        Assert.True(Matches(plan, Write(name, ("get_forecast", Forecast))));
        Assert.False(Matches(plan, Write(name, ("get_current_weather", Weather))));
    }

    [Theory]
    [InlineData("hermes", "<tool_call>")]
    [InlineData("llama3", "{\"name\"")]
    [InlineData("mistral-nemo", "[TOOL_CALLS]")]
    [InlineData("command-r7b", "<|START_ACTION|>")]
    [InlineData("deepseek-r1", "<｜tool▁calls▁begin｜>")]
    public void Auto_is_lazy_and_the_grammar_starts_with_the_trigger(string name, string trigger)
    {
        var plan = ToolCallFormat.FromName(name)!.Plan(ToolTemplates.Tools, ToolChoice.Auto);
        Assert.Equal([trigger], plan.Triggers.AsEnumerable());
        string call = Write(name, ("get_forecast", Forecast));
        Assert.StartsWith(trigger, call, StringComparison.Ordinal);
        Assert.True(Matches(plan, call));
        Assert.False(Matches(plan, Write(name, ("get_forecast", """{"location": "Paris", "days": 3.5}"""))));
    }

    [Fact]
    public void Auto_in_whole_reply_formats_allows_text_or_calls()
    {
        var functionary = ToolCallFormat.FunctionaryV32.Plan(ToolTemplates.Tools, ToolChoice.Auto);
        Assert.False(functionary.Lazy);
        Assert.True(Matches(functionary, "all\nIt is sunny, > and >> are fine."));
        Assert.True(Matches(functionary, "all\nLet me look.>>>" + Write("functionary-v3.2", ("get_forecast", Forecast))));
        Assert.True(Matches(functionary, Write("functionary-v3.2", ("get_forecast", Forecast))));
        Assert.False(Matches(functionary, "all\nText >>> more text"));

        var generic = ToolCallFormat.Generic.Plan(ToolTemplates.Tools, ToolChoice.Auto);
        Assert.True(Matches(generic, """{"response": "It is sunny."}"""));
        Assert.False(Matches(generic, """<think>Sunny?</think>{"response": "It is sunny."}"""));
        var reasoning = ToolCallFormat.Generic.Plan(ToolTemplates.Tools, ToolChoice.Auto, reasoning: true);
        Assert.True(Matches(reasoning, """<think>Sunny?</think>{"response": "It is sunny."}"""));
        Assert.True(Matches(generic, Write("generic", ("get_forecast", Forecast), ("get_current_weather", Weather))));
    }

    [Fact]
    public void Required_lets_reasoning_come_first()
    {
        string call = Write("deepseek-r1", ("get_forecast", Forecast));
        Assert.False(Matches(ToolCallFormat.DeepSeekR1.Plan(ToolTemplates.Tools, ToolChoice.Required), "<think>a</think>" + call));
        var plan = ToolCallFormat.DeepSeekR1.Plan(ToolTemplates.Tools, ToolChoice.Required, reasoning: true);
        Assert.True(Matches(plan, "<think>\nI need </the forecast> <think.\n</think>\n\n" + call));
        Assert.True(Matches(plan, call));
        Assert.False(Matches(plan, "<think>a</think>b</think>" + call));
        var opened = ToolCallFormat.DeepSeekR1.Plan(ToolTemplates.Tools, ToolChoice.Required, startsInReasoning: true);
        Assert.True(Matches(opened, "Let me think </thin.\n" + new string('x', 5000) + "</think>\n" + call));
        Assert.False(Matches(opened, call));
    }

    [Fact]
    public void None_constrains_nothing()
    {
        var plan = ToolCallFormat.Hermes.Plan(ToolTemplates.Tools, ToolChoice.None);
        Assert.Null(plan.Gbnf);
        Assert.False(plan.Lazy);
    }

    [Fact]
    public void Llama3_stops_at_end_of_message()
    {
        Assert.Equal(["<|eom_id|>"], ToolCallFormat.Llama3.Plan(ToolTemplates.Tools, ToolChoice.Auto).StopStrings.AsEnumerable());
        Assert.Empty(ToolCallFormat.Hermes.Plan(ToolTemplates.Tools, ToolChoice.Auto).StopStrings);
    }

    [Fact]
    public void Bad_requests_name_the_problem()
    {
        var e = Assert.Throws<ArgumentException>(() => ToolCallFormat.Hermes.Plan(ToolTemplates.Tools, ToolChoice.Function("nope")));
        Assert.Contains("\"nope\"", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => ToolCallFormat.Hermes.Plan([], ToolChoice.Required));
        Assert.Contains("\"get weather\" is not 1 to 64", Assert.Throws<ArgumentException>(() =>
            ToolCallFormat.Hermes.Plan([new ToolDefinition("get weather", null, "{}")], ToolChoice.Auto)).Message, StringComparison.Ordinal);
        Assert.Contains("Two tools are named \"f\"", Assert.Throws<ArgumentException>(() =>
            ToolCallFormat.Hermes.Plan([new ToolDefinition("f", null, "{}"), new ToolDefinition("f", null, "{}")], ToolChoice.Auto)).Message, StringComparison.Ordinal);
        var schema = Assert.Throws<JsonSchemaException>(() => ToolCallFormat.Hermes.Plan([new ToolDefinition("f", null, """{"type":"object","not":{}}""")], ToolChoice.Auto));
        Assert.Contains("not", schema.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Reads_openai_tools()
    {
        var tools = ToolTemplates.Tools;
        Assert.Equal(["get_current_weather", "get_forecast"], tools.Select(t => t.Name));
        Assert.Equal("Get a daily weather forecast", tools[1].Description);
        var e = Assert.Throws<ArgumentException>(() => ToolDefinition.FromOpenAi([new System.Text.Json.Nodes.JsonObject { ["type"] = "function", ["function"] = new System.Text.Json.Nodes.JsonObject() }]));
        Assert.Contains("tools[0].function has no name", e.Message, StringComparison.Ordinal);
    }
}

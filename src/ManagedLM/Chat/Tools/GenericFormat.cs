using System.Collections.Immutable;
using System.Text.Json;

namespace ManagedLM.Chat.Tools;

/// <summary>
/// llama.cpp's generic format, for templates without a call syntax of their own: the whole reply is JSON,
/// <c>{"tool_call": {"name": "f", "arguments": {...}}}</c>, <c>{"tool_calls": [...]}</c> (parallel calls) or
/// <c>{"response": "text"}</c>. A reply that is not such JSON is content.
/// </summary>
internal sealed class GenericFormat : ToolCallFormat
{
    public override string Name => "generic";

    internal override ImmutableArray<string> Markers { get; } = [];

    private protected override ImmutableArray<string> Triggers { get; } = [];

    private protected override string CallBody(ToolDefinition tool, string arguments) =>
        JsonObjectRule(("name", JsonStringRule(tool.Name)), ("arguments", arguments));

    private protected override string Calls(ToolGrammarBuilder g, string call, bool parallel, bool required)
    {
        string calls = JsonObjectRule(("tool_call", call));
        if (parallel)
            calls += " | " + JsonObjectRule(("tool_calls", $"\"[\" ws {call} (\",\" ws {call})* ws \"]\""));
        if (required) return calls;
        return calls + " | " + JsonObjectRule(("response", g.Schema("""{"type":"string"}""")));
    }

    private protected override void ScanBody(ReplyScan scan, string text, int start)
    {
        int j = JsonScan.SkipWhitespace(text, start);
        if (j == text.Length || text[j] != '{')
        {
            scan.AddContentTail(text, start, []);
            return;
        }
        int end = JsonScan.ValueEnd(text, j);
        if (scan.Partial) return;
        if (end < 0 || JsonScan.SkipWhitespace(text, end) != text.Length || !JsonScan.IsValid(text, j, end) || !TryRead(scan, text[j..end]))
            scan.AddContent(text, start, text.Length);
    }

    static bool TryRead(ReplyScan scan, string json)
    {
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        if (root.GetPropertyCount() != 1) return false;
        if (root.TryGetProperty("response", out var response) && response.ValueKind == JsonValueKind.String)
        {
            scan.AddContent(response.GetString()!);
            return true;
        }
        var calls = new List<(string, string)>();
        if (root.TryGetProperty("tool_call", out var call))
        {
            if (Call(call) is not { } one) return false;
            calls.Add(one);
        }
        else if (root.TryGetProperty("tool_calls", out var array) && array.ValueKind == JsonValueKind.Array && array.GetArrayLength() > 0)
        {
            foreach (var item in array.EnumerateArray())
            {
                if (Call(item) is not { } c) return false;
                calls.Add(c);
            }
        }
        else return false;
        foreach (var (name, arguments) in calls) scan.AddCall(null, name, arguments, complete: true);
        return true;
    }

    static (string Name, string Arguments)? Call(JsonElement call)
    {
        if (call.ValueKind != JsonValueKind.Object || !call.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String
            || name.GetString() is not { Length: > 0 } n)
            return null;
        if (!call.TryGetProperty("arguments", out var arguments)) return (n, "{}");
        if (arguments.ValueKind != JsonValueKind.Object) return null;
        string raw = arguments.GetRawText();
        return (n, JsonScan.Compact(raw, 0, raw.Length));
    }
}

using System.Collections.Immutable;
using System.Text;
using System.Text.Json;

namespace ManagedLM.Chat.Tools;

/// <summary>
/// Llama 3.1/3.2/3.3: a reply that is one JSON call <c>{"name": "f", "parameters": {...}}</c>, or text and then
/// <c>&lt;|python_tag|&gt;</c> with a JSON call, a builtin call <c>brave_search.call(query="...")</c> or Python code
/// (a call of <c>python</c> with <c>{"code": ...}</c>); after text, a call starts as the lazy grammar's trigger
/// <c>{"name"</c> does. The grammar allows one call per reply, as the templates do.
/// </summary>
internal sealed class Llama3Format : ToolCallFormat
{
    const string PythonTag = "<|python_tag|>", CallStart = "{\"name\"";
    static readonly CallKeys Keys = new(["name"], ["parameters", "arguments"], null);

    public override string Name => "llama3";

    public override (string Open, string Close)? ReasoningMarkers => null;

    internal override ImmutableArray<string> Markers { get; } = [PythonTag, CallStart];

    private protected override ImmutableArray<string> Triggers { get; } = [CallStart];

    // Llama 3.1 ends a turn that waits for a tool's output with <|eom_id|>.
    private protected override ImmutableArray<string> StopStrings { get; } = ["<|eom_id|>"];

    private protected override string CallBody(ToolDefinition tool, string arguments) =>
        JsonObjectRule(("name", JsonStringRule(tool.Name)), ("parameters", arguments));

    private protected override string Calls(ToolGrammarBuilder g, string call, bool parallel, bool required) => call;

    private protected override void ScanBody(ReplyScan scan, string text, int start)
    {
        int pos = start;
        int first = JsonScan.SkipWhitespace(text, start);
        int at;
        if (first < text.Length && text[first] == '{')
        {
            // A reply that is a call may write it loosely ({ "type": "function", "name": ...}); JSON that is not a call is text.
            int end = ReadJsonCall(scan, text, first);
            if (end == JsonScan.Incomplete)
            {
                if (!scan.Partial) scan.AddContentTail(text, pos, Markers.AsSpan());
                return;
            }
            if (end >= 0) pos = end;
            at = NextCall(text, end >= 0 ? end : first + 1);
        }
        else at = NextCall(text, pos);
        // Later calls start as the lazy grammar's trigger does.
        while (true)
        {
            if (at < 0)
            {
                scan.AddContentTail(text, pos, Markers.AsSpan());
                return;
            }
            scan.AddContent(text, pos, at);
            int end = text[at] == '{' ? ReadJsonCall(scan, text, at) : ReadPythonTag(scan, text, at + PythonTag.Length);
            if (end == JsonScan.Incomplete && scan.Partial) return;
            if (end < 0)
            {
                scan.AddContentTail(text, at, Markers.AsSpan());
                return;
            }
            pos = end;
            at = NextCall(text, pos);
        }
    }

    static int NextCall(string text, int from)
    {
        int tag = text.IndexOf(PythonTag, from, StringComparison.Ordinal);
        int json = text.IndexOf(CallStart, from, StringComparison.Ordinal);
        return tag < 0 ? json : json < 0 ? tag : Math.Min(tag, json);
    }

    static int ReadJsonCall(ReplyScan scan, string text, int at)
    {
        var call = CallObject.Read(text, at, Keys);
        if (call.Status == CallStatus.Invalid) return JsonScan.Invalid;
        scan.AddCall(text, call, needsId: false);
        return call.Status == CallStatus.Complete ? call.End : JsonScan.Incomplete;
    }

    static int ReadPythonTag(ReplyScan scan, string text, int i)
    {
        int j = JsonScan.SkipWhitespace(text, i);
        if (j < text.Length && text[j] == '{') return ReadJsonCall(scan, text, j);
        if (scan.Partial) return JsonScan.Incomplete;
        string code = text[j..].Trim();
        if (code.Length == 0) return JsonScan.Invalid;
        if (BuiltinCall(code) is { } builtin)
            scan.AddCall(null, builtin.Name, builtin.Arguments, complete: true);
        else
            scan.AddCall(null, "python", CodeArguments(code), complete: true);
        return text.Length;
    }

    /// <summary><c>tool.call(key="value", n=3)</c> as a name and a JSON arguments object, or null.</summary>
    static (string Name, string Arguments)? BuiltinCall(string code)
    {
        int dot = code.IndexOf(".call(", StringComparison.Ordinal);
        if (dot <= 0 || code[^1] != ')' || !code.AsSpan(0, dot).ContainsOnlyWordCharacters()) return null;
        var arguments = new StringBuilder("{");
        string list = code[(dot + 6)..^1];
        int i = 0;
        while (true)
        {
            while (i < list.Length && char.IsWhiteSpace(list[i])) i++;
            if (i == list.Length) break;
            int equals = list.IndexOf('=', i);
            if (equals < 0) return null;
            string key = list[i..equals].Trim();
            if (key.Length == 0 || !key.AsSpan().ContainsOnlyWordCharacters()) return null;
            i = equals + 1;
            while (i < list.Length && char.IsWhiteSpace(list[i])) i++;
            string value;
            if (i < list.Length && list[i] is '"' or '\'')
            {
                char quote = list[i];
                var sb = new StringBuilder();
                int j = i + 1;
                for (; j < list.Length && list[j] != quote; j++)
                {
                    if (list[j] == '\\' && j + 1 < list.Length) j++;
                    sb.Append(list[j]);
                }
                if (j == list.Length) return null;
                value = JsonSerializer.Serialize(sb.ToString(), JsonOptions);
                i = j + 1;
            }
            else
            {
                int j = list.IndexOf(',', i);
                if (j < 0) j = list.Length;
                string literal = list[i..j].Trim();
                value = literal switch
                {
                    "True" => "true",
                    "False" => "false",
                    "None" => "null",
                    _ => double.TryParse(literal, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out _) ? literal : "",
                };
                if (value.Length == 0) return null;
                i = j;
            }
            if (arguments.Length > 1) arguments.Append(',');
            arguments.Append(JsonSerializer.Serialize(key)).Append(':').Append(value);
            while (i < list.Length && char.IsWhiteSpace(list[i])) i++;
            if (i < list.Length && list[i] != ',') return null;
            if (i < list.Length) i++;
        }
        return (code[..dot], arguments.Append('}').ToString());
    }
}

file static class WordCharacters
{
    public static bool ContainsOnlyWordCharacters(this ReadOnlySpan<char> s)
    {
        foreach (char c in s)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c != '_') return false;
        }
        return true;
    }
}

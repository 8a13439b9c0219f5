using System.Collections.Immutable;
using ManagedLM.Grammars;

namespace ManagedLM.Chat.Tools;

/// <summary>Mistral Nemo: text, then <c>[TOOL_CALLS][{"name": "f", "arguments": {...}, "id": "abcDEF123"}, ...]</c>; ids have 9 letters and digits.</summary>
internal sealed class MistralNemoFormat : ToolCallFormat
{
    const string Open = "[TOOL_CALLS]";
    static readonly CallKeys Keys = new(["name"], ["arguments"], "id");

    public override string Name => "mistral-nemo";

    public override (string Open, string Close)? ReasoningMarkers => null;

    internal override ImmutableArray<string> Markers { get; } = [Open];

    internal override int GeneratedIdLength => 9;

    private protected override ImmutableArray<string> Triggers { get; } = [Open];

    private protected override string CallBody(ToolDefinition tool, string arguments) =>
        JsonObjectRule(("name", JsonStringRule(tool.Name)), ("arguments", arguments), ("id", "\"\\\"\" [a-zA-Z0-9]{9} \"\\\"\""));

    private protected override string Calls(ToolGrammarBuilder g, string call, bool parallel, bool required) =>
        $"{GbnfText.Literal(Open)} \"[\" ws {call} {(parallel ? "(\",\" ws " + call + ")* " : "")}ws \"]\"";

    private protected override void ScanBody(ReplyScan scan, string text, int start) =>
        ScanTagged(scan, text, start, Open, Markers.AsSpan(), static (scan, text, i) => ReadArray(scan, text, i, Keys));

    /// <summary>Reads a JSON array of call objects at text[i..] (after whitespace); returns its end, or Incomplete/Invalid.</summary>
    internal static int ReadArray(ReplyScan scan, string text, int i, CallKeys keys)
    {
        int j = JsonScan.SkipWhitespace(text, i);
        if (j == text.Length) return JsonScan.Incomplete;
        if (text[j] != '[') return JsonScan.Invalid;
        j = JsonScan.SkipWhitespace(text, j + 1);
        for (bool first = true; ; first = false)
        {
            if (j == text.Length) return JsonScan.Incomplete;
            if (text[j] == ']' && !first) return j + 1;
            if (!first)
            {
                if (text[j] != ',') return JsonScan.Invalid;
                j = JsonScan.SkipWhitespace(text, j + 1);
            }
            var call = CallObject.Read(text, j, keys);
            scan.AddCall(text, call, needsId: keys.Id is not null);
            if (call.Status != CallStatus.Complete)
                return call.Status == CallStatus.Incomplete ? JsonScan.Incomplete : JsonScan.Invalid;
            j = JsonScan.SkipWhitespace(text, call.End);
        }
    }
}

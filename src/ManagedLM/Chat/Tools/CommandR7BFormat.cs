using System.Collections.Immutable;
using ManagedLM.Grammars;

namespace ManagedLM.Chat.Tools;

/// <summary>
/// Command R7B: <c>&lt;|START_THINKING|&gt;plan&lt;|END_THINKING|&gt;</c>, then
/// <c>&lt;|START_ACTION|&gt;[{"tool_call_id": "0", "tool_name": "f", "parameters": {...}}]&lt;|END_ACTION|&gt;</c> or
/// <c>&lt;|START_RESPONSE|&gt;text&lt;|END_RESPONSE|&gt;</c> (the response markers are not content).
/// </summary>
internal sealed class CommandR7BFormat : ToolCallFormat
{
    const string Open = "<|START_ACTION|>", Close = "<|END_ACTION|>";
    const string ResponseOpen = "<|START_RESPONSE|>", ResponseClose = "<|END_RESPONSE|>";
    static readonly CallKeys Keys = new(["tool_name"], ["parameters"], "tool_call_id");

    public override string Name => "command-r7b";

    public override (string Open, string Close)? ReasoningMarkers => ("<|START_THINKING|>", "<|END_THINKING|>");

    internal override ImmutableArray<string> Markers { get; } = [Open, ResponseOpen, ResponseClose];

    private protected override ImmutableArray<string> Triggers { get; } = [Open];

    private protected override string CallBody(ToolDefinition tool, string arguments) =>
        JsonObjectRule(("tool_call_id", "\"\\\"\" [0-9]{1,3} \"\\\"\""), ("tool_name", JsonStringRule(tool.Name)), ("parameters", arguments));

    private protected override string Calls(ToolGrammarBuilder g, string call, bool parallel, bool required) =>
        $"{GbnfText.Literal(Open)} ws \"[\" ws {call} {(parallel ? "(\",\" ws " + call + ")* " : "")}ws \"]\" ws {GbnfText.Literal(Close)}";

    private protected override void ScanBody(ReplyScan scan, string text, int start)
    {
        string body = text[start..].Replace(ResponseOpen, "", StringComparison.Ordinal).Replace(ResponseClose, "", StringComparison.Ordinal);
        ScanTagged(scan, body, 0, Open, Markers.AsSpan(), static (scan, text, i) =>
        {
            int end = MistralNemoFormat.ReadArray(scan, text, i, Keys);
            if (end < 0) return end;
            int k = JsonScan.SkipWhitespace(text, end);
            if (text.AsSpan(k).StartsWith(Close, StringComparison.Ordinal)) return k + Close.Length;
            if (k == text.Length || (scan.Partial && ReplyScan.MayBecome(text, k, Close))) return scan.Partial ? JsonScan.Incomplete : k;
            return JsonScan.Invalid;
        });
    }
}

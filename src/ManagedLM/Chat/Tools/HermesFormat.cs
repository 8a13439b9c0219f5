using System.Collections.Immutable;
using ManagedLM.Grammars;

namespace ManagedLM.Chat.Tools;

/// <summary>Hermes 2/3 and Qwen 2.5/3: <c>&lt;tool_call&gt;\n{"name": "f", "arguments": {...}}\n&lt;/tool_call&gt;</c>, any number, between text.</summary>
internal sealed class HermesFormat : ToolCallFormat
{
    const string Open = "<tool_call>", Close = "</tool_call>";

    public override string Name => "hermes";

    internal override ImmutableArray<string> Markers { get; } = [Open];

    private protected override ImmutableArray<string> Triggers { get; } = [Open];

    private protected override string CallBody(ToolDefinition tool, string arguments) =>
        JsonObjectRule(("name", JsonStringRule(tool.Name)), ("arguments", arguments));

    private protected override string Calls(ToolGrammarBuilder g, string call, bool parallel, bool required)
    {
        string one = g.Add("tagged-call", $"{GbnfText.Literal(Open)} ws {call} ws {GbnfText.Literal(Close)}");
        return parallel ? $"{one} (ws {one})*" : one;
    }

    private protected override void ScanBody(ReplyScan scan, string text, int start) =>
        ScanTagged(scan, text, start, Open, Markers.AsSpan(), static (scan, text, i) =>
        {
            int j = JsonScan.SkipWhitespace(text, i);
            var call = CallObject.Read(text, j, CallKeys.NameArguments);
            if (call.Status != CallStatus.Complete)
            {
                scan.AddCall(text, call, needsId: false);
                return call.Status == CallStatus.Incomplete ? JsonScan.Incomplete : JsonScan.Invalid;
            }
            int k = JsonScan.SkipWhitespace(text, call.End);
            if (text.AsSpan(k).StartsWith(Close, StringComparison.Ordinal))
            {
                scan.AddCall(text, call, needsId: false);
                return k + Close.Length;
            }
            // The closing tag may be missing at the very end of a reply.
            if (k == text.Length || (scan.Partial && ReplyScan.MayBecome(text, k, Close)))
            {
                scan.AddCall(text, call, needsId: false);
                return scan.Partial ? JsonScan.Incomplete : k;
            }
            return JsonScan.Invalid;
        });
}

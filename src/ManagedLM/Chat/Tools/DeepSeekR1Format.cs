using System.Collections.Immutable;
using ManagedLM.Grammars;

namespace ManagedLM.Chat.Tools;

/// <summary>
/// DeepSeek R1: reasoning in <c>&lt;think&gt;</c>, then text and
/// <c>&lt;｜tool▁calls▁begin｜&gt;&lt;｜tool▁call▁begin｜&gt;function&lt;｜tool▁sep｜&gt;name\n```json\n{...}\n```&lt;｜tool▁call▁end｜&gt;...&lt;｜tool▁calls▁end｜&gt;</c>.
/// </summary>
internal sealed class DeepSeekR1Format : ToolCallFormat
{
    const string CallsBegin = "<｜tool▁calls▁begin｜>", CallsEnd = "<｜tool▁calls▁end｜>";
    const string CallBegin = "<｜tool▁call▁begin｜>", CallEnd = "<｜tool▁call▁end｜>", Separator = "<｜tool▁sep｜>";
    const string Fence = "```";

    public override string Name => "deepseek-r1";

    internal override ImmutableArray<string> Markers { get; } = [CallsBegin];

    private protected override ImmutableArray<string> Triggers { get; } = [CallsBegin];

    private protected override string CallBody(ToolDefinition tool, string arguments) =>
        $"{GbnfText.Literal(CallBegin + "function" + Separator + tool.Name + "\n" + Fence + "json\n")} {arguments} ws {GbnfText.Literal(Fence)} ws {GbnfText.Literal(CallEnd)}";

    private protected override string Calls(ToolGrammarBuilder g, string call, bool parallel, bool required) =>
        $"{GbnfText.Literal(CallsBegin)} {call} {(parallel ? "(ws " + call + ")* " : "")}ws {GbnfText.Literal(CallsEnd)}";

    private protected override void ScanBody(ReplyScan scan, string text, int start) =>
        ScanTagged(scan, text, start, CallsBegin, Markers.AsSpan(), static (scan, text, i) =>
        {
            int j = i;
            while (true)
            {
                j = JsonScan.SkipWhitespace(text, j);
                if (text.AsSpan(j).StartsWith(CallsEnd, StringComparison.Ordinal)) return j + CallsEnd.Length;
                if (j == text.Length) return scan.Partial ? JsonScan.Incomplete : j;
                if (scan.Partial && (ReplyScan.MayBecome(text, j, CallsEnd) || ReplyScan.MayBecome(text, j, CallBegin))) return JsonScan.Incomplete;
                if (!text.AsSpan(j).StartsWith(CallBegin, StringComparison.Ordinal)) return JsonScan.Invalid;
                j = ReadCall(scan, text, j + CallBegin.Length);
                if (j < 0) return j;
            }
        });

    static int ReadCall(ReplyScan scan, string text, int i)
    {
        int separator = text.IndexOf(Separator, i, StringComparison.Ordinal);
        if (separator < 0) return JsonScan.Incomplete;
        int newline = text.IndexOf('\n', separator);
        if (newline < 0) return JsonScan.Incomplete;
        string name = text[(separator + Separator.Length)..newline].Trim();
        if (name.Length == 0) return JsonScan.Invalid;
        int j = JsonScan.SkipWhitespace(text, newline);
        if (ReplyScan.MayBecome(text, j, Fence + "json")) return JsonScan.Incomplete;
        if (text.AsSpan(j).StartsWith(Fence + "json", StringComparison.Ordinal)) j = JsonScan.SkipWhitespace(text, j + Fence.Length + 4);
        if (j == text.Length)
        {
            scan.AddCall(null, name, "", complete: false);
            return JsonScan.Incomplete;
        }
        if (text[j] != '{') return JsonScan.Invalid;
        int end = JsonScan.ValueEnd(text, j);
        if (end == JsonScan.Incomplete)
        {
            scan.AddCall(null, name, JsonScan.Compact(text, j, text.Length), complete: false);
            return JsonScan.Incomplete;
        }
        if (end < 0 || !JsonScan.IsValid(text, j, end)) return JsonScan.Invalid;
        scan.AddCall(null, name, JsonScan.Compact(text, j, end), complete: true);
        int k = JsonScan.SkipWhitespace(text, end);
        if (text.AsSpan(k).StartsWith(Fence, StringComparison.Ordinal)) k = JsonScan.SkipWhitespace(text, k + Fence.Length);
        if (text.AsSpan(k).StartsWith(CallEnd, StringComparison.Ordinal)) return k + CallEnd.Length;
        if (k == text.Length || (scan.Partial && (ReplyScan.MayBecome(text, k, Fence) || ReplyScan.MayBecome(text, k, CallEnd))))
            return scan.Partial ? JsonScan.Incomplete : k;
        return JsonScan.Invalid;
    }
}

using System.Collections.Immutable;
using ManagedLM.Grammars;

namespace ManagedLM.Chat.Tools;

/// <summary>
/// Functionary v3.2: the generation prompt ends with <c>&gt;&gt;&gt;</c>, and the reply is segments
/// <c>name\n{arguments}</c> (a call) or <c>all\ntext</c> (content), each later one after <c>&gt;&gt;&gt;</c>.
/// </summary>
internal sealed class FunctionaryV32Format : ToolCallFormat
{
    const string Separator = ">>>";

    public override string Name => "functionary-v3.2";

    public override (string Open, string Close)? ReasoningMarkers => null;

    internal override ImmutableArray<string> Markers { get; } = [Separator];

    private protected override ImmutableArray<string> Triggers { get; } = [];

    private protected override string CallBody(ToolDefinition tool, string arguments) =>
        $"{GbnfText.Literal(tool.Name + "\n")} {arguments}";

    private protected override string Calls(ToolGrammarBuilder g, string call, bool parallel, bool required)
    {
        string calls = parallel ? $"{call} (\">>>\" {call})*" : call;
        if (required) return calls;
        string text = g.TextWithout(Separator);
        return $"\"all\\n\" {text} (\">>>\" {calls})? | {calls}";
    }

    private protected override void ScanBody(ReplyScan scan, string text, int start)
    {
        int pos = start;
        for (bool first = true; ; first = false)
        {
            int j = pos;
            if (!first)
            {
                if (scan.Partial && ReplyScan.MayBecome(text, j, Separator)) return;
                if (!text.AsSpan(j).StartsWith(Separator, StringComparison.Ordinal))
                {
                    scan.AddContentTail(text, pos, Markers.AsSpan());
                    return;
                }
                j += Separator.Length;
            }
            int nameEnd = j;
            while (nameEnd < text.Length && (char.IsAsciiLetterOrDigit(text[nameEnd]) || text[nameEnd] is '_' or '-' or '.')) nameEnd++;
            if (nameEnd == text.Length && scan.Partial) return;
            if (nameEnd == j || nameEnd == text.Length || text[nameEnd] != '\n')
            {
                scan.AddContentTail(text, pos, first ? [] : Markers.AsSpan());
                return;
            }
            string name = text[j..nameEnd];
            j = nameEnd + 1;
            if (name == "all")
            {
                int next = text.IndexOf(Separator, j, StringComparison.Ordinal);
                if (next < 0)
                {
                    scan.AddContentTail(text, j, Markers.AsSpan());
                    return;
                }
                scan.AddContent(text, j, next);
                pos = next;
                continue;
            }
            int k = JsonScan.SkipWhitespace(text, j);
            if (name == "python" && k < text.Length && text[k] != '{')
            {
                // Raw code up to the next segment.
                int next = text.IndexOf(Separator, k, StringComparison.Ordinal);
                if (next < 0 && scan.Partial) return;
                if (next < 0) next = text.Length;
                scan.AddCall(null, name, CodeArguments(text[k..next].Trim()), complete: true);
                pos = next;
                if (pos == text.Length) return;
                continue;
            }
            if (k == text.Length || text[k] != '{')
            {
                if (scan.Partial && k == text.Length) scan.AddCall(null, name, "", complete: false);
                else scan.AddContentTail(text, pos, Markers.AsSpan());
                return;
            }
            int end = JsonScan.ValueEnd(text, k);
            if (end == JsonScan.Incomplete && scan.Partial)
            {
                scan.AddCall(null, name, JsonScan.Compact(text, k, text.Length), complete: false);
                return;
            }
            if (end < 0 || !JsonScan.IsValid(text, k, end))
            {
                scan.AddContentTail(text, pos, Markers.AsSpan());
                return;
            }
            scan.AddCall(null, name, JsonScan.Compact(text, k, end), complete: true);
            pos = JsonScan.SkipWhitespace(text, end);
            if (pos == text.Length) return;
        }
    }
}

using System.Collections.Immutable;
using System.Text.Encodings.Web;
using System.Text.Json;
using ManagedLM.Grammars;

namespace ManagedLM.Chat.Tools;

/// <summary>
/// How a model family writes tool calls (and reasoning) in its replies: the grammar that constrains the calls of a
/// request, and the parsers that take a reply apart. Immutable and thread-safe; pick one with <see cref="Detect"/>.
/// </summary>
public abstract class ToolCallFormat
{
    private protected ToolCallFormat() { }

    /// <summary>The format's name, e.g. <c>hermes</c>.</summary>
    public abstract string Name { get; }

    /// <summary>The markers of the reasoning section, or null when the format has none.</summary>
    public virtual (string Open, string Close)? ReasoningMarkers => ("<think>", "</think>");

    /// <summary>Strings whose start in the reply may begin a call; partial text that may become one is held back while streaming.</summary>
    internal abstract ImmutableArray<string> Markers { get; }

    /// <summary>Length of the ids generated for calls that carry none (0: <c>call_</c> and 24 characters).</summary>
    internal virtual int GeneratedIdLength => 0;

    /// <summary>Hermes 2/3, Qwen 2.5/3: <c>&lt;tool_call&gt;{"name": ..., "arguments": ...}&lt;/tool_call&gt;</c>.</summary>
    [field: ThreadSafeStatic("a stateless format, built by the static initializer")]
    public static ToolCallFormat Hermes { get; } = new HermesFormat();
    /// <summary>Llama 3.1/3.2/3.3: a JSON <c>{"name": ..., "parameters": ...}</c> reply, or <c>&lt;|python_tag|&gt;</c> calls.</summary>
    [field: ThreadSafeStatic("a stateless format, built by the static initializer")]
    public static ToolCallFormat Llama3 { get; } = new Llama3Format();
    /// <summary>Mistral Nemo: <c>[TOOL_CALLS][{"name", "arguments", "id"}]</c> with 9-character ids.</summary>
    [field: ThreadSafeStatic("a stateless format, built by the static initializer")]
    public static ToolCallFormat MistralNemo { get; } = new MistralNemoFormat();
    /// <summary>Functionary v3.2: <c>&gt;&gt;&gt;name\n{arguments}</c> segments, <c>all</c> for text.</summary>
    [field: ThreadSafeStatic("a stateless format, built by the static initializer")]
    public static ToolCallFormat FunctionaryV32 { get; } = new FunctionaryV32Format();
    /// <summary>Command R7B: <c>&lt;|START_ACTION|&gt;[...]&lt;|END_ACTION|&gt;</c>, thinking in <c>&lt;|START_THINKING|&gt;</c>.</summary>
    [field: ThreadSafeStatic("a stateless format, built by the static initializer")]
    public static ToolCallFormat CommandR7B { get; } = new CommandR7BFormat();
    /// <summary>DeepSeek R1: <c>&lt;｜tool▁calls▁begin｜&gt;</c> blocks, reasoning in <c>&lt;think&gt;</c>.</summary>
    [field: ThreadSafeStatic("a stateless format, built by the static initializer")]
    public static ToolCallFormat DeepSeekR1 { get; } = new DeepSeekR1Format();
    /// <summary>Any other model: the whole reply is JSON, <c>{"tool_call": ...}</c>, <c>{"tool_calls": [...]}</c> or <c>{"response": "..."}</c>.</summary>
    [field: ThreadSafeStatic("a stateless format, built by the static initializer")]
    public static ToolCallFormat Generic { get; } = new GenericFormat();

    /// <summary>
    /// Every format, each with the marker that identifies its templates, in the order <see cref="Detect"/> tries them
    /// (the generic format, which every template may use, last).
    /// </summary>
    [field: ThreadSafeStatic("stateless formats, built by the static initializer")]
    public static ImmutableArray<(string TemplateMarker, ToolCallFormat Format)> All { get; } =
    [
        (">>>all", FunctionaryV32),
        ("<｜tool▁calls▁begin｜>", DeepSeekR1),
        ("<|START_ACTION|>", CommandR7B),
        ("[TOOL_CALLS]", MistralNemo),
        ("<tool_call>", Hermes),
        ("<|start_header_id|>ipython<|end_header_id|>", Llama3),
        ("", Generic),
    ];

    /// <summary>The format a chat template's model writes calls in, found from markers in the template's source (as llama.cpp does).</summary>
    public static ToolCallFormat Detect(ChatTemplate template)
    {
        ArgumentNullException.ThrowIfNull(template);
        string source = template.Source;
        foreach (var (marker, format) in All)
        {
            if (source.Contains(marker, StringComparison.Ordinal)) return format;
        }
        return Generic;
    }

    /// <summary>The format named <paramref name="name"/> (<see cref="Name"/>), or null.</summary>
    public static ToolCallFormat? FromName(string name) => All.Select(f => f.Format).FirstOrDefault(f => f.Name == name);

    /// <summary>Whether <paramref name="template"/>'s model reasons in this format's markers (the template names the opening one).</summary>
    public bool TemplateReasons(ChatTemplate template)
    {
        ArgumentNullException.ThrowIfNull(template);
        return ReasoningMarkers is { } markers && template.Source.Contains(markers.Open, StringComparison.Ordinal);
    }

    /// <summary>
    /// Whether a rendered prompt leaves the model inside the reasoning section (it ends with the opening marker, as
    /// DeepSeek R1 templates' generation prompts do): parse the reply with <see cref="ReplyParseOptions.StartsInReasoning"/>.
    /// </summary>
    public bool PromptOpensReasoning(string renderedPrompt)
    {
        ArgumentNullException.ThrowIfNull(renderedPrompt);
        return ReasoningMarkers is { } markers && renderedPrompt.TrimEnd().EndsWith(markers.Open, StringComparison.Ordinal);
    }

    /// <summary>
    /// The grammar for a request's tool calls. <see cref="ToolChoiceMode.Auto"/> gives a lazy grammar (free text until a
    /// trigger, then the calls) where the format allows text before calls; <see cref="ToolChoiceMode.Required"/> and a named
    /// function constrain the whole reply to calls; a grammar over the whole reply lets the format's reasoning section come first;
    /// <see cref="ToolChoiceMode.None"/> constrains nothing. Each call's arguments must validate against its tool's parameters.
    /// </summary>
    /// <param name="tools">The tools offered.</param>
    /// <param name="choice">OpenAI's <c>tool_choice</c>.</param>
    /// <param name="parallelToolCalls">Allow more than one call (OpenAI's <c>parallel_tool_calls</c>).</param>
    /// <param name="startsInReasoning">The prompt already opened the reasoning section (<see cref="PromptOpensReasoning"/>).</param>
    /// <param name="reasoning">
    /// The model may open a reasoning section before its calls (<see cref="TemplateReasons"/>): a grammar over the whole
    /// reply then allows it first. Without it, a model that does not reason is not offered an unbounded section.
    /// </param>
    /// <param name="responseGbnf">
    /// GBNF (root rule <c>root</c>) that a reply without calls must match, e.g. a response format's JSON Schema grammar:
    /// with <see cref="ToolChoiceMode.Auto"/> the whole reply is then either calls or a sentence of it (no triggers);
    /// null: text is free. Ignored when the reply must be calls; with <see cref="ToolChoiceMode.None"/> the plan is
    /// just this grammar.
    /// </param>
    /// <exception cref="ArgumentException">No tools, or the named function is not among them.</exception>
    /// <exception cref="JsonSchemaException">A tool's parameters schema is invalid or unsupported.</exception>
    public ToolCallPlan Plan(IReadOnlyList<ToolDefinition> tools, ToolChoice choice, bool parallelToolCalls = true, bool startsInReasoning = false,
        string? responseGbnf = null, bool reasoning = false)
    {
        ArgumentNullException.ThrowIfNull(tools);
        ArgumentNullException.ThrowIfNull(choice);
        if (choice.Mode == ToolChoiceMode.None)
            return new ToolCallPlan(responseGbnf, [], []);
        if (tools.Count == 0)
            throw new ArgumentException("A tool choice other than \"none\" needs at least one tool.", nameof(tools));
        if (choice.Mode == ToolChoiceMode.Function)
        {
            tools = [.. tools.Where(t => t.Name == choice.FunctionName)];
            if (tools.Count == 0)
                throw new ArgumentException($"tool_choice names the function \"{choice.FunctionName}\", which is not among the tools.", nameof(choice));
        }
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var tool in tools)
        {
            if (tool.Name.Length is 0 or > 64 || !tool.Name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.'))
                throw new ArgumentException($"The tool name \"{tool.Name}\" is not 1 to 64 letters, digits, '_', '-' or '.'.", nameof(tools));
            if (!names.Add(tool.Name))
                throw new ArgumentException($"Two tools are named \"{tool.Name}\".", nameof(tools));
        }
        bool required = choice.Mode != ToolChoiceMode.Auto;
        bool eitherOr = !required && responseGbnf is not null;
        var g = new ToolGrammarBuilder();
        var calls = new List<string>(tools.Count);
        for (int i = 0; i < tools.Count; i++)
        {
            string arguments = g.Schema(tools[i].Parameters);
            calls.Add(g.Add($"call{i}", CallBody(tools[i], arguments)));
        }
        string call = g.Add("call", string.Join(" | ", calls));
        string body = Calls(g, call, parallelToolCalls, required || eitherOr);
        if (eitherOr)
            body = $"({body}) | {g.Embed(responseGbnf!)}";
        ImmutableArray<string> triggers = required || eitherOr ? [] : Triggers;
        // A grammar over the whole reply lets the reasoning section come first.
        if (triggers.IsEmpty && (reasoning || startsInReasoning) && ReasoningMarkers is { } markers)
        {
            string text = g.TextWithout(markers.Close);
            string close = GbnfText.Literal(markers.Close);
            body = startsInReasoning
                ? $"{text} {close} ws ({body})"
                : $"({GbnfText.Literal(markers.Open)} {text} {close} ws)? ({body})";
        }
        return new ToolCallPlan(g.Build(body), triggers, StopStrings);
    }

    /// <summary>Strings that end a reply with calls in this format (beyond the model's end-of-generation tokens).</summary>
    private protected virtual ImmutableArray<string> StopStrings => [];

    /// <summary>Strings that start the lazy grammar of <see cref="ToolChoiceMode.Auto"/>; empty: the format constrains the whole reply.</summary>
    private protected abstract ImmutableArray<string> Triggers { get; }

    /// <summary>The GBNF body of one call of <paramref name="tool"/>, whose arguments match rule <paramref name="arguments"/>.</summary>
    private protected abstract string CallBody(ToolDefinition tool, string arguments);

    /// <summary>GBNF for a JSON object with exactly <paramref name="members"/> in that order (values are GBNF expressions).</summary>
    private protected static string JsonObjectRule(params (string Key, string Value)[] members) =>
        "\"{\" ws " + string.Join(" \",\" ws ", members.Select(m => $"{GbnfText.Literal(GbnfText.JsonString(m.Key))} ws \":\" ws {m.Value} ws")) + " \"}\"";

    /// <summary>GBNF for the JSON string <paramref name="value"/>.</summary>
    private protected static string JsonStringRule(string value) => GbnfText.Literal(GbnfText.JsonString(value));

    /// <summary>The GBNF body of the calls section (with <paramref name="required"/> false: what follows a trigger).</summary>
    private protected abstract string Calls(ToolGrammarBuilder g, string call, bool parallel, bool required);

    [ThreadSafeStatic("options made read-only by their first use; System.Text.Json caches thread-safely")]
    private protected static readonly JsonSerializerOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The arguments of a call of the <c>python</c> tool that runs <paramref name="code"/>: <c>{"code": ...}</c>.</summary>
    private protected static string CodeArguments(string code) => "{\"code\":" + JsonSerializer.Serialize(code, JsonOptions) + "}";

    /// <summary>Takes a finished reply apart. Never throws on model output: text that does not parse as a call stays content.</summary>
    public ParsedReply Parse(string reply, ReplyParseOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(reply);
        options ??= ReplyParseOptions.Default;
        return Scan(reply, partial: false, options, ToolCallIds.From(options)).ToReply();
    }

    /// <summary>A parser for a reply streamed as text deltas (one per request).</summary>
    public ToolCallStreamParser CreateStreamParser(ReplyParseOptions? options = null) => new(this, options ?? ReplyParseOptions.Default);

    internal ReplyScan Scan(string text, bool partial, ReplyParseOptions options, ToolCallIds ids)
    {
        var scan = new ReplyScan(partial, ids, GeneratedIdLength);
        int pos = 0;
        if (options.ExtractReasoning && ReasoningMarkers is { } markers)
        {
            bool inside = options.StartsInReasoning;
            if (!inside)
            {
                int start = JsonScan.SkipWhitespace(text, 0);
                if (text.AsSpan(start).StartsWith(markers.Open, StringComparison.Ordinal))
                {
                    inside = true;
                    pos = start + markers.Open.Length;
                }
                else if (partial && ReplyScan.MayBecome(text, start, markers.Open))
                    return scan;
            }
            if (inside)
            {
                int close = text.IndexOf(markers.Close, pos, StringComparison.Ordinal);
                if (close < 0)
                {
                    scan.AddReasoning(text, pos, partial ? ReplyScan.SafeEnd(text, pos, [markers.Close]) : text.Length);
                    return scan;
                }
                scan.AddReasoning(text, pos, close);
                pos = close + markers.Close.Length;
            }
        }
        if (options.ToolCalls)
            ScanBody(scan, text, pos);
        else
            scan.AddContentTail(text, pos, []);
        return scan;
    }

    /// <summary>Adds the content and calls of text[start..] (after any reasoning) to <paramref name="scan"/>.</summary>
    private protected abstract void ScanBody(ReplyScan scan, string text, int start);

    /// <summary>
    /// The common shape of tagged formats: content, then call sections that each start with <paramref name="open"/>
    /// and are read by <paramref name="readSection"/> (returning the end of the section, or -1 when it is malformed
    /// or, in a partial scan, unfinished), then more content.
    /// </summary>
    private protected static void ScanTagged(ReplyScan scan, string text, int pos, string open, ReadOnlySpan<string> markers, Func<ReplyScan, string, int, int> readSection)
    {
        while (true)
        {
            int at = text.IndexOf(open, pos, StringComparison.Ordinal);
            if (at < 0)
            {
                scan.AddContentTail(text, pos, markers);
                return;
            }
            scan.AddContent(text, pos, at);
            int calls = scan.Calls.Count;
            int end = readSection(scan, text, at + open.Length);
            if (end < 0)
            {
                if (scan.Partial && scan.Calls.Count >= calls && end == JsonScan.Incomplete) return;
                // Malformed: the section is text.
                scan.Calls.RemoveRange(calls, scan.Calls.Count - calls);
                scan.AddContentTail(text, at, markers);
                return;
            }
            pos = end;
        }
    }
}

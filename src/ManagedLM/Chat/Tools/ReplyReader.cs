namespace ManagedLM.Chat.Tools;

/// <summary>
/// Reads one chat reply as it is generated, for a server or client that answers in OpenAI's shape: with tools offered,
/// every delta goes through the format's <see cref="ToolCallStreamParser"/> (content, reasoning, calls); without tools,
/// only a reply that opens with the format's reasoning marker (or whose prompt opened it) is split, and any other reply
/// passes through as content, unchanged and untrimmed. The events concatenated equal <see cref="Result"/>. One per
/// request; not thread-safe.
/// </summary>
public sealed class ReplyReader
{
    private readonly ToolCallFormat _format;
    private readonly ReplyParseOptions _options;
    private readonly System.Text.StringBuilder _held = new();
    private readonly List<ReplyEvent> _events = [];
    private ToolCallStreamParser? _parser;
    private bool _raw;
    private System.Text.StringBuilder? _rawText;
    private ParsedReply? _result;

    /// <param name="format">How the model writes calls and reasoning.</param>
    /// <param name="options">Reasoning extraction, whether the prompt opened it, call ids. With
    /// <see cref="ReplyParseOptions.ToolCalls"/> false (no tools offered) the reply is read for reasoning only.</param>
    public ReplyReader(ToolCallFormat format, ReplyParseOptions options)
    {
        ArgumentNullException.ThrowIfNull(format);
        ArgumentNullException.ThrowIfNull(options);
        _format = format;
        _options = options;
        if (options.ToolCalls || (options.StartsInReasoning && options.ExtractReasoning))
            _parser = format.CreateStreamParser(options);
        else if (!options.ExtractReasoning || format.ReasoningMarkers is null)
            _raw = true;
    }

    /// <summary>The parse of the whole reply, once <see cref="Finish"/> was called; else null.</summary>
    public ParsedReply? Result => _result;

    /// <summary>Adds generated text; returns the events it released (valid until the next call).</summary>
    public IReadOnlyList<ReplyEvent> Append(string delta)
    {
        ArgumentNullException.ThrowIfNull(delta);
        if (_result is not null)
            throw new InvalidOperationException("The reply has finished.");
        if (_parser is not null)
            return _parser.Append(delta);
        _events.Clear();
        if (_raw)
        {
            Pass(delta);
            return _events;
        }
        // Undecided: the reply so far is whitespace and perhaps the start of the reasoning marker.
        _held.Append(delta);
        string held = _held.ToString();
        string open = _format.ReasoningMarkers!.Value.Open;
        string start = held.TrimStart();
        if (start.StartsWith(open, StringComparison.Ordinal))
        {
            _parser = _format.CreateStreamParser(_options);
            return _parser.Append(held);
        }
        if (!open.StartsWith(start, StringComparison.Ordinal))
        {
            _raw = true;
            Pass(held);
        }
        return _events;
    }

    /// <summary>Reads a whole reply at once: <see cref="Append"/> it, <see cref="Finish"/>, and return <see cref="Result"/>.</summary>
    public ParsedReply Read(string reply)
    {
        Append(reply);
        Finish();
        return _result!;
    }

    /// <summary>Ends the reply: the events for what was held back; <see cref="Result"/> is then set.</summary>
    public IReadOnlyList<ReplyEvent> Finish()
    {
        if (_result is not null)
            throw new InvalidOperationException("The reply has finished.");
        if (_parser is not null)
        {
            var events = _parser.Finish();
            _result = _parser.Result;
            return events;
        }
        _events.Clear();
        if (!_raw)
            Pass(_held.ToString());
        _result = new ParsedReply(_rawText?.ToString() ?? "", null, []);
        return _events;
    }

    private void Pass(string text)
    {
        if (text.Length == 0)
            return;
        (_rawText ??= new()).Append(text);
        _events.Add(new ReplyEvent(ReplyEventKind.Content, text));
    }
}

using System.Text;

namespace ManagedLM.Chat.Tools;

/// <summary>
/// Takes a reply apart while it is generated: <see cref="Append"/> each text delta, read the events it released, and
/// <see cref="Finish"/> at the end. Content is released as soon as it cannot be the start of a call or reasoning
/// marker (a possible marker prefix and trailing whitespace are held back); a call starts once its name (and, where
/// the format carries one, its id) is known, and its arguments follow in chunks of their compact JSON text. For a reply
/// whose calls are well formed, the events concatenated equal <see cref="ToolCallFormat.Parse"/> of the whole reply.
/// One per request; not thread-safe. Each delta re-reads the reply so far (linear in its length).
/// </summary>
public sealed class ToolCallStreamParser
{
    private readonly ToolCallFormat _format;
    private readonly ReplyParseOptions _options;
    private readonly ToolCallIds _ids;
    private readonly StringBuilder _text = new();
    private readonly List<ReplyEvent> _events = [];
    private readonly List<int> _argumentsSent = [];
    private int _contentSent, _reasoningSent;
    private ParsedReply? _result;

    internal ToolCallStreamParser(ToolCallFormat format, ReplyParseOptions options)
    {
        _format = format;
        _options = options;
        _ids = ToolCallIds.From(options);
    }

    /// <summary>The reply so far.</summary>
    public string Text => _text.ToString();

    /// <summary>Adds generated text; returns the events it released (valid until the next call).</summary>
    /// <exception cref="InvalidOperationException">The parser has finished.</exception>
    public IReadOnlyList<ReplyEvent> Append(string delta)
    {
        ArgumentNullException.ThrowIfNull(delta);
        if (_result is not null) throw new InvalidOperationException("The reply has finished.");
        _text.Append(delta);
        _events.Clear();
        if (delta.Length > 0) Release(_format.Scan(_text.ToString(), partial: true, _options, _ids));
        return _events;
    }

    /// <summary>Ends the reply: the events for what was held back, and the parse of the whole reply (<see cref="Result"/>).</summary>
    public IReadOnlyList<ReplyEvent> Finish()
    {
        if (_result is not null) throw new InvalidOperationException("The reply has finished.");
        _events.Clear();
        var scan = _format.Scan(_text.ToString(), partial: false, _options, _ids);
        Release(scan);
        _result = scan.ToReply();
        return _events;
    }

    /// <summary>The parse of the whole reply, once <see cref="Finish"/> was called; else null.</summary>
    public ParsedReply? Result => _result;

    private void Release(ReplyScan scan)
    {
        if (scan.Reasoning is { } reasoning && reasoning.Length > _reasoningSent)
        {
            _events.Add(new ReplyEvent(ReplyEventKind.Reasoning, reasoning[_reasoningSent..]));
            _reasoningSent = reasoning.Length;
        }
        string content = scan.Content;
        if (content.Length > _contentSent)
        {
            _events.Add(new ReplyEvent(ReplyEventKind.Content, content[_contentSent..]));
            _contentSent = content.Length;
        }
        for (int i = 0; i < scan.Calls.Count; i++)
        {
            var call = scan.Calls[i];
            if (i == _argumentsSent.Count)
            {
                _events.Add(new ReplyEvent(ReplyEventKind.ToolCallStart, null, i, call.Id, call.Name));
                _argumentsSent.Add(0);
            }
            if (call.Arguments.Length > _argumentsSent[i])
            {
                _events.Add(new ReplyEvent(ReplyEventKind.ToolCallArguments, call.Arguments[_argumentsSent[i]..], i));
                _argumentsSent[i] = call.Arguments.Length;
            }
        }
    }
}

namespace ManagedLM.Chat.Jinja;

/// <summary>
/// A chat template failed to parse or render. <see cref="Exception.Message"/> is the cause alone — for
/// <c>raise_exception(msg)</c> exactly <c>msg</c> — and <see cref="Line"/>/<see cref="Column"/> say where in the template
/// (1-based; 0 when unknown); <see cref="ToString"/> shows both.
/// </summary>
public sealed class TemplateException : Exception
{
    public TemplateException(string message, int line = 0, int column = 0, bool raisedByTemplate = false, Exception? inner = null)
        : base(message, inner)
    {
        Line = line;
        Column = column;
        RaisedByTemplate = raisedByTemplate;
    }

    /// <summary>1-based line of the construct that failed (0 when unknown).</summary>
    public int Line { get; }

    /// <summary>1-based column of the construct that failed (0 when unknown).</summary>
    public int Column { get; }

    /// <summary>True when the template itself raised the error (<c>raise_exception</c>).</summary>
    public bool RaisedByTemplate { get; }

    /// <summary>The message with its location: "message (line L, column C)".</summary>
    public string MessageWithLocation => Line > 0 ? $"{Message} (template line {Line}, column {Column})" : Message;

    public override string ToString() => $"{nameof(TemplateException)}: {MessageWithLocation}";

    internal TemplateException At(int line, int column) =>
        Line > 0 ? this : new TemplateException(Message, line, column, RaisedByTemplate, InnerException);
}

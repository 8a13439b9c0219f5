using System.Text;

namespace ManagedLM.Generation;

/// <summary>
/// Finds stop strings in streamed text across piece boundaries. Text that could still become a stop
/// string is held back; text before a stop string is released, the stop string itself never.
/// </summary>
internal sealed class StopStringMatcher
{
    private readonly IReadOnlyList<string> _stops;
    private readonly StringBuilder _pending = new();
    private readonly int _longest;

    public StopStringMatcher(IReadOnlyList<string> stops)
    {
        _stops = stops;
        _longest = stops.Count == 0 ? 0 : stops.Max(s => s.Length);
    }

    /// <summary>True once a stop string was seen.</summary>
    public bool Stopped { get; private set; }

    /// <summary>Adds a piece; returns the text that can be emitted now.</summary>
    public string Append(string piece)
    {
        if (_stops.Count == 0)
            return piece;
        if (Stopped || piece.Length == 0)
            return "";
        _pending.Append(piece);
        string text = _pending.ToString();
        int stopAt = -1;
        foreach (string stop in _stops)
        {
            int i = text.IndexOf(stop, StringComparison.Ordinal);
            if (i >= 0 && (stopAt < 0 || i < stopAt))
                stopAt = i;
        }
        if (stopAt >= 0)
        {
            Stopped = true;
            _pending.Clear();
            return text[..stopAt];
        }
        int keep = HeldBack(text);
        _pending.Clear().Append(text, text.Length - keep, keep);
        return text[..^keep];
    }

    /// <summary>Releases held-back text at the end of generation.</summary>
    public string Flush()
    {
        string rest = _pending.ToString();
        _pending.Clear();
        return Stopped ? "" : rest;
    }

    // Length of the longest suffix of text that is a proper prefix of some stop string.
    private int HeldBack(string text)
    {
        for (int n = Math.Min(_longest - 1, text.Length); n > 0; n--)
        {
            var suffix = text.AsSpan(text.Length - n);
            foreach (string stop in _stops)
            {
                if (stop.Length > n && stop.AsSpan().StartsWith(suffix, StringComparison.Ordinal))
                    return n;
            }
        }
        return 0;
    }
}

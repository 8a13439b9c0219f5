using System.Text;

namespace ManagedLM.Grammars;

/// <summary>
/// Follows one text through a <see cref="Grammar"/>: the set of parse stacks that llama.cpp's llama_grammar keeps,
/// advanced a byte at a time (a UTF-8 sequence split across tokens is carried over). One per request, owned by one
/// sequence; not thread-safe. After warm-up, accepting text and checking tokens allocate nothing.
/// </summary>
public sealed partial class GrammarMatcher
{
    /// <summary>Most parse stacks alive at once; an ambiguous grammar that needs more fails with <see cref="InvalidOperationException"/>.</summary>
    public const int MaxStacks = 1024;
    /// <summary>Deepest parse stack (nesting of rules) a text may reach.</summary>
    public const int MaxStackDepth = 4096;

    private readonly Grammar _grammar;
    private readonly GrammarVocabulary? _vocabulary;
    private StackBuffer _buffer = new();
    private StackSet _stacks;
    private PartialUtf8 _partial;
    // Scratch for text that is not committed yet; one of them holds the result of the last successful Allows.
    private StackBuffer _scratchA = new(), _scratchB = new();

    internal GrammarMatcher(Grammar grammar, GrammarVocabulary? vocabulary)
    {
        _grammar = grammar;
        _vocabulary = vocabulary;
        Reset();
    }

    /// <summary>The grammar this matcher follows.</summary>
    public Grammar Grammar => _grammar;

    /// <summary>The vocabulary token checks use, or null when the matcher only takes text.</summary>
    public GrammarVocabulary? Vocabulary => _vocabulary;

    /// <summary>Whether the text accepted so far is a complete match of the root rule (generation may end here).</summary>
    public bool IsComplete => _partial.Remaining == 0 && _stacks.HasEmpty;

    /// <summary>Whether some more text could still be accepted.</summary>
    public bool CanContinue => _partial.Remaining > 0 || _stacks.Count > (_stacks.HasEmpty ? 1 : 0);

    /// <summary>Back to the start of the grammar, as if no text had been accepted.</summary>
    public void Reset()
    {
        _buffer.Count = 0;
        _partial = default;
        var status = Start(_buffer, out _stacks);
        if (status == StepStatus.Overflow)
            throw LimitExceeded();
        _allowedToken = -1;
    }

    /// <summary>
    /// Accepts <paramref name="utf8"/> when the grammar allows it after the text so far and returns true; otherwise
    /// returns false and leaves the state unchanged. A multi-byte character may be split across calls.
    /// </summary>
    /// <exception cref="InvalidOperationException">The text would need more than <see cref="MaxStacks"/> parse stacks, a
    /// stack deeper than <see cref="MaxStackDepth"/>, or too much work for one character.</exception>
    public bool TryAccept(ReadOnlySpan<byte> utf8)
    {
        var status = Run(utf8, out var buffer, out var stacks, out var partial);
        if (status == StepStatus.Overflow)
            throw LimitExceeded();
        if (status == StepStatus.Rejected)
            return false;
        Commit(buffer, stacks, partial);
        return true;
    }

    /// <summary>Accepts one character, as <see cref="TryAccept(ReadOnlySpan{byte})"/>.</summary>
    public bool TryAccept(Rune character)
    {
        Span<byte> utf8 = stackalloc byte[4];
        return TryAccept(utf8[..character.EncodeToUtf8(utf8)]);
    }

    /// <summary>Accepts <paramref name="text"/> (encoded to UTF-8; allocates), as <see cref="TryAccept(ReadOnlySpan{byte})"/>.</summary>
    public bool TryAccept(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return TryAccept(Encoding.UTF8.GetBytes(text));
    }

    /// <summary>A new matcher in the same state (for rewinding: keep a clone, later <see cref="CopyFrom"/> it).</summary>
    public GrammarMatcher Clone()
    {
        var clone = new GrammarMatcher(_grammar, _vocabulary);
        clone.CopyFrom(this);
        return clone;
    }

    /// <summary>Takes the state of <paramref name="source"/>, a matcher of the same grammar; allocates nothing once warm.</summary>
    /// <exception cref="ArgumentException"><paramref name="source"/> follows another grammar.</exception>
    public void CopyFrom(GrammarMatcher source)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (!ReferenceEquals(source._grammar, _grammar))
            throw new ArgumentException("The source matcher follows a different grammar.", nameof(source));
        if (ReferenceEquals(source, this))
            return;
        _buffer.CopyFrom(source._buffer);
        _stacks = source._stacks;
        _partial = source._partial;
        _allowedToken = -1;
    }

    /// <summary>Runs <paramref name="utf8"/> from the committed state through the scratch buffers.</summary>
    private StepStatus Run(ReadOnlySpan<byte> utf8, out StackBuffer buffer, out StackSet stacks, out PartialUtf8 partial)
    {
        _allowedToken = -1;
        buffer = _buffer;
        stacks = _stacks;
        partial = _partial;
        foreach (byte b in utf8)
        {
            var target = ReferenceEquals(buffer, _scratchA) ? _scratchB : _scratchA;
            target.Count = 0;
            var status = Feed(buffer, stacks, ref partial, b, target, out var next);
            if (status is StepStatus.Rejected or StepStatus.Overflow)
                return status;
            if (status == StepStatus.Advanced)
            {
                buffer = target;
                stacks = next;
            }
        }
        return StepStatus.Advanced;
    }

    private void Commit(StackBuffer buffer, StackSet stacks, PartialUtf8 partial)
    {
        if (!ReferenceEquals(buffer, _buffer))
        {
            var old = _buffer;
            _buffer = buffer;
            if (ReferenceEquals(_scratchA, buffer))
                _scratchA = old;
            else
                _scratchB = old;
        }
        _stacks = stacks;
        _partial = partial;
        _allowedToken = -1;
    }

    private static InvalidOperationException LimitExceeded() => new(
        $"The grammar matcher exceeded its limits ({MaxStacks} parse stacks, stacks {MaxStackDepth} deep, {MaxStepWork} " +
        "stack entries written per character): the grammar is too ambiguous or the text nests too deeply.");
}

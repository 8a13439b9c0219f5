using System.Runtime.CompilerServices;
using System.Text;
using ManagedLM.Grammars;
using ManagedLM.Sampling;
using ManagedLM.Tokenization;

namespace ManagedLM.Generation;

/// <summary>
/// One request's grammar state: draws each token so that the text stays inside <see cref="GenerationOptions.Grammar"/>.
/// The sampler's own pick is checked first; only when the grammar rejects it is the vocabulary masked and the token
/// drawn again from the same random state. A lazy grammar (<see cref="GenerationOptions.GrammarTriggers"/>) lets text
/// run free until a trigger appears, then constrains the text from the trigger's first character on.
/// Allocates its buffers once per request; nothing per token.
/// </summary>
internal sealed class GrammarConstraint
{
    [ThreadSafeStatic("ConditionalWeakTable is thread-safe; its vocabularies are immutable")]
    private static readonly ConditionalWeakTable<Tokenizer, GrammarVocabulary> s_vocabularies = [];

    private readonly GrammarMatcher _matcher;
    private readonly GrammarVocabulary _vocabulary;
    private readonly byte[][] _triggers;
    private readonly float[] _masked;          // [vocab] the logits with rejected tokens at -inf
    private readonly byte[] _window;           // [longest trigger - 1 + longest token] recent text while no trigger has appeared
    private int _windowLength;
    private bool _active;
    private bool _activatedByPick;             // the last pick opened a trigger (its text is already accepted)

    public GrammarConstraint(Grammar grammar, IReadOnlyList<string> triggers, Tokenizer tokenizer, int vocabSize)
    {
        _vocabulary = s_vocabularies.GetValue(tokenizer, GrammarVocabulary.FromTokenizer);
        _matcher = grammar.CreateMatcher(_vocabulary);
        _masked = new float[vocabSize];
        _triggers = [.. triggers.Select(Encoding.UTF8.GetBytes)];
        _active = _triggers.Length == 0;
        int longest = _triggers.Length == 0 ? 0 : _triggers.Max(t => t.Length);
        _window = _active ? [] : new byte[longest - 1 + _vocabulary.MaxTokenBytes];
    }

    /// <summary>True when the grammar is complete and allows no further text: the request ends here.</summary>
    public bool Done => _active && !_matcher.CanContinue;

    /// <summary>
    /// Draws the next token with <paramref name="sampler"/> from <paramref name="logits"/> ([vocab], left unmodified),
    /// among the tokens the grammar allows; -1 when the grammar is complete and the vocabulary has no token to end
    /// with (the request ends).
    /// </summary>
    /// <exception cref="GrammarConstraintException">The grammar needs text no token of the vocabulary can give, or its
    /// matcher's limits were exceeded.</exception>
    public int Sample(SamplerChain sampler, ReadOnlySpan<float> logits, ReadOnlySpan<int> history)
    {
        try
        {
            return Draw(sampler, logits, history);
        }
        catch (InvalidOperationException e) when (e is not GrammarConstraintException)
        {
            throw new GrammarConstraintException($"The request's grammar cannot be followed here: {e.Message}", e);
        }
    }

    private int Draw(SamplerChain sampler, ReadOnlySpan<float> logits, ReadOnlySpan<int> history)
    {
        var state = sampler.State;
        int id = sampler.Sample(logits, history);
        if (Permits(id))
            return id;
        logits.CopyTo(_masked);
        if (_active)
        {
            if (_matcher.Mask(_masked) == 0)
                return _matcher.IsComplete ? -1 : throw DeadEnd();
        }
        else
        {
            _masked[id] = float.NegativeInfinity;
        }
        // The masked draw takes the random number the rejected one took: the same as drawing from the masked logits.
        while (true)
        {
            sampler.State = state;
            id = sampler.Sample(_masked, history);
            if (Permits(id))
                return id;
            _masked[id] = float.NegativeInfinity;
        }
    }

    /// <summary>Takes <paramref name="id"/>, the token <see cref="Sample"/> returned, into the grammar's state.</summary>
    public void Accept(int id)
    {
        if (_activatedByPick)
        {
            _activatedByPick = false;
            _active = true;
            return;
        }
        if (_active)
        {
            if (!_matcher.TryAcceptToken(id))
                throw new InvalidOperationException($"Token {id} is not allowed by the grammar here.");
            return;
        }
        var bytes = _vocabulary.TokenBytes(id);
        int keep = Math.Min(_windowLength, _window.Length - _vocabulary.MaxTokenBytes);
        _window.AsSpan(_windowLength - keep, keep).CopyTo(_window);
        bytes.CopyTo(_window.AsSpan(keep));
        _windowLength = keep + bytes.Length;
    }

    // Whether the grammar lets id come next. While lazy, a token that completes a trigger is allowed when the grammar
    // accepts the text from the trigger on; the matcher then already holds that text.
    private bool Permits(int id)
    {
        if (_active)
            return _matcher.Allows(id);
        if (_vocabulary.IsEndOfGeneration(id))
            return true;
        var bytes = _vocabulary.TokenBytes(id);
        if (bytes.IsEmpty)
            return true;
        int start = TriggerStart(bytes);
        if (start < 0)
            return true;
        // The trigger may begin in text already emitted (the window) and end in this token.
        int fromWindow = Math.Max(0, _windowLength - start);
        if (fromWindow > 0 && !_matcher.TryAccept(_window.AsSpan(start, fromWindow)))
            return false;
        if (!_matcher.TryAccept(bytes[Math.Max(0, start - _windowLength)..]))
        {
            _matcher.Reset();
            return false;
        }
        _activatedByPick = true;
        return true;
    }

    // Where the first trigger found in window + bytes starts (offset into that text), counting only triggers that end
    // inside bytes; -1 when none does.
    private int TriggerStart(ReadOnlySpan<byte> bytes)
    {
        int best = -1;
        foreach (byte[] trigger in _triggers)
        {
            int first = Math.Max(0, _windowLength - trigger.Length + 1);
            for (int s = first; s < _windowLength + bytes.Length - trigger.Length + 1; s++)
            {
                if (best >= 0 && s >= best)
                    break;
                if (MatchesAt(trigger, s, bytes))
                {
                    best = s;
                    break;
                }
            }
        }
        return best;
    }

    private bool MatchesAt(byte[] trigger, int start, ReadOnlySpan<byte> bytes)
    {
        for (int i = 0; i < trigger.Length; i++)
        {
            int at = start + i;
            byte b = at < _windowLength ? _window[at] : bytes[at - _windowLength];
            if (b != trigger[i])
                return false;
        }
        return true;
    }

    private static GrammarConstraintException DeadEnd() => new(
        "The grammar allows no token of this model's vocabulary here: it needs text that no token can give.");
}

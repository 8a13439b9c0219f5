namespace ManagedLM.Grammars;

/// <summary>Token checks: one candidate (<see cref="Allows"/>) or the whole vocabulary (<see cref="Mask"/>).</summary>
public sealed partial class GrammarMatcher
{
    // The last token Allows accepted since the state last changed, and the state after it (in a scratch buffer).
    private int _allowedToken = -1;
    private StackBuffer? _allowedBuffer;
    private StackSet _allowedStacks;
    private PartialUtf8 _allowedPartial;

    // Mask: the states along the trie path, level d after the first d bytes, in _arena up to _levelTops[d].
    private readonly StackBuffer _arena = new();
    private StackSet[] _levelStacks = [];
    private PartialUtf8[] _levelPartials = [];
    private int[] _levelTops = [];
    private ulong[] _allowedTokens = [];

    /// <summary>
    /// Whether the grammar allows <paramref name="token"/> next: its bytes continue the text so far, or it ends
    /// generation where the text is complete. Check the sampled token with this first, and <see cref="Mask"/> only
    /// when it is rejected. Tokens without text are never allowed.
    /// </summary>
    /// <exception cref="InvalidOperationException">The matcher was created without a vocabulary.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="token"/> is not in the vocabulary.</exception>
    public bool Allows(int token)
    {
        var vocabulary = RequireVocabulary();
        ArgumentOutOfRangeException.ThrowIfNegative(token);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(token, vocabulary.Count);
        if (vocabulary.IsEndOfGeneration(token))
            return IsComplete;
        var bytes = vocabulary.TokenBytes(token);
        if (bytes.IsEmpty)
            return false;
        if (token == _allowedToken)
            return true;
        if (Run(bytes, out var buffer, out var stacks, out var partial) != StepStatus.Advanced)
            return false;
        _allowedToken = token;
        _allowedBuffer = buffer;
        _allowedStacks = stacks;
        _allowedPartial = partial;
        return true;
    }

    /// <summary>
    /// Accepts <paramref name="token"/> if <see cref="Allows"/> does (an end-of-generation token leaves the state as
    /// it is) and returns true; otherwise returns false and leaves the state unchanged.
    /// </summary>
    /// <exception cref="InvalidOperationException">No vocabulary, or the matcher's limits (<see cref="MaxStacks"/>) were exceeded.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="token"/> is not in the vocabulary.</exception>
    public bool TryAcceptToken(int token)
    {
        var vocabulary = RequireVocabulary();
        ArgumentOutOfRangeException.ThrowIfNegative(token);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(token, vocabulary.Count);
        if (vocabulary.IsEndOfGeneration(token))
            return IsComplete;
        var bytes = vocabulary.TokenBytes(token);
        if (bytes.IsEmpty)
            return false;
        if (token == _allowedToken)
        {
            Commit(_allowedBuffer!, _allowedStacks, _allowedPartial);
            return true;
        }
        return TryAccept(bytes);
    }

    /// <summary>
    /// Sets to negative infinity every logit whose token the grammar rejects now (entries past the vocabulary too)
    /// and returns how many tokens remain allowed (0: the grammar allows nothing, generation cannot go on).
    /// Agrees with <see cref="Allows"/> for every token.
    /// </summary>
    /// <exception cref="InvalidOperationException">The matcher was created without a vocabulary.</exception>
    /// <exception cref="ArgumentException"><paramref name="logits"/> is shorter than the vocabulary.</exception>
    public int Mask(Span<float> logits)
    {
        var vocabulary = RequireVocabulary();
        if (logits.Length < vocabulary.Count)
            throw new ArgumentException($"The logits have {logits.Length} entries; the vocabulary has {vocabulary.Count} tokens.", nameof(logits));
        MarkAllowedTokens(vocabulary);
        bool complete = IsComplete;
        int allowed = 0;
        for (int t = 0; t < logits.Length; t++)
        {
            if (t < vocabulary.Count && (((_allowedTokens[t >> 6] >> (t & 63)) & 1) != 0 || complete && vocabulary.IsEndOfGeneration(t)))
                allowed++;
            else
                logits[t] = float.NegativeInfinity;
        }
        return allowed;
    }

    /// <summary>Sets the bits in <see cref="_allowedTokens"/> of the tokens with text that the grammar allows, walking the trie.</summary>
    private void MarkAllowedTokens(GrammarVocabulary vocabulary)
    {
        if (_allowedTokens.Length < (vocabulary.Count + 63) / 64)
            _allowedTokens = new ulong[(vocabulary.Count + 63) / 64];
        Array.Clear(_allowedTokens);
        if (_levelTops.Length < vocabulary.MaxTokenBytes + 1)
        {
            _levelStacks = new StackSet[vocabulary.MaxTokenBytes + 1];
            _levelPartials = new PartialUtf8[vocabulary.MaxTokenBytes + 1];
            _levelTops = new int[vocabulary.MaxTokenBytes + 1];
        }
        _arena.CopyFrom(_buffer);
        _levelStacks[0] = _stacks;
        _levelPartials[0] = _partial;
        _levelTops[0] = _arena.Count;
        var nodeBytes = vocabulary.NodeBytes;
        var depths = vocabulary.NodeDepths;
        var tokenStarts = vocabulary.NodeTokenStarts;
        var tokens = vocabulary.NodeTokens;
        for (int node = 0; node < nodeBytes.Length;)
        {
            int depth = depths[node];
            _arena.Count = _levelTops[depth - 1];
            var partial = _levelPartials[depth - 1];
            var status = Feed(_arena, _levelStacks[depth - 1], ref partial, nodeBytes[node], _arena, out var next);
            if (status is StepStatus.Rejected or StepStatus.Overflow)
            {
                node = vocabulary.NodeSubtreeEnds[node];
                continue;
            }
            _levelStacks[depth] = next;
            _levelPartials[depth] = partial;
            _levelTops[depth] = _arena.Count;
            for (int i = tokenStarts[node]; i < tokenStarts[node + 1]; i++)
                _allowedTokens[tokens[i] >> 6] |= 1UL << (tokens[i] & 63);
            node++;
        }
    }

    private GrammarVocabulary RequireVocabulary() => _vocabulary ?? throw new InvalidOperationException(
        "This matcher has no vocabulary: create it with Grammar.CreateMatcher(vocabulary) to check tokens.");
}

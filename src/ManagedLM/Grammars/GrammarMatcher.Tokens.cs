using System.Numerics;

namespace ManagedLM.Grammars;

/// <summary>Token checks: one candidate (<see cref="Allows"/>) or the whole vocabulary (<see cref="Mask"/>).</summary>
public sealed partial class GrammarMatcher
{
    // The last token Allows accepted since the state last changed, and the state after it (in a scratch buffer).
    private int _allowedToken = -1;
    private StackBuffer? _allowedBuffer;
    private StackSet _allowedStacks;
    private PartialUtf8 _allowedPartial;

    /// <summary>Work (stack entries written) one Mask may do before it gives up: bounds its time on any grammar.</summary>
    internal long MaxMaskWork { get; set; } = 1L << 28;

    // Mask: the states along the trie path, level d after the first d bytes: stacks in _levelBuffers[d] (the cache or
    // _arena, which holds uncached levels up to _levelTops[d]), the cached state id or -1.
    private readonly StackBuffer _arena = new();
    private StackBuffer?[] _levelBuffers = [];
    private StackSet[] _levelStacks = [];
    private PartialUtf8[] _levelPartials = [];
    private int[] _levelStates = [];
    private int[] _levelTops = [];
    private ulong[] _allowedTokens = [];

    /// <summary>
    /// Whether the grammar allows <paramref name="token"/> next: its bytes continue the text so far, or it ends
    /// generation where the text is complete. Check the sampled token with this first, and <see cref="Mask"/> only
    /// when it is rejected. Tokens without text are never allowed, nor tokens whose text would take the matcher past
    /// its limits (<see cref="MaxStacks"/>).
    /// </summary>
    /// <exception cref="InvalidOperationException">The matcher was created without a vocabulary.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="token"/> is not in the vocabulary.</exception>
    public bool Allows(int token)
    {
        var bytes = TokenText(token, out bool endOfGeneration);
        if (endOfGeneration || bytes.IsEmpty)
            return endOfGeneration && IsComplete;
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
        var bytes = TokenText(token, out bool endOfGeneration);
        if (endOfGeneration || bytes.IsEmpty)
            return endOfGeneration && IsComplete;
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
    /// <exception cref="InvalidOperationException">The matcher was created without a vocabulary, or the grammar is so
    /// ambiguous or the text nests so deeply here that checking the vocabulary would take too long.</exception>
    /// <exception cref="ArgumentException"><paramref name="logits"/> is shorter than the vocabulary.</exception>
    public int Mask(Span<float> logits)
    {
        var vocabulary = RequireVocabulary();
        if (logits.Length < vocabulary.Count)
            throw new ArgumentException($"The logits have {logits.Length} entries; the vocabulary has {vocabulary.Count} tokens.", nameof(logits));
        TrimCache();
        int state = CacheState(_buffer, _stacks, _partial);
        ulong[] bits = CachedMask(state) ?? MarkAllowedTokens(vocabulary, state);
        int allowed = 0;
        for (int word = 0; word < bits.Length; word++)
        {
            ulong w = bits[word];
            int first = word << 6;
            allowed += BitOperations.PopCount(w);
            if (w == ulong.MaxValue)
                continue;
            var block = logits.Slice(first, Math.Min(64, vocabulary.Count - first));
            if (w == 0)
            {
                block.Fill(float.NegativeInfinity);
                continue;
            }
            for (ulong rejected = ~w & (ulong.MaxValue >> (64 - block.Length)); rejected != 0; rejected &= rejected - 1)
                block[BitOperations.TrailingZeroCount(rejected)] = float.NegativeInfinity;
        }
        logits[vocabulary.Count..].Fill(float.NegativeInfinity);
        return allowed;
    }

    /// <summary>
    /// The tokens the grammar allows now as a bitmap (end of generation included when complete), found by walking the
    /// trie and kept for <paramref name="state"/> (when it is cached).
    /// </summary>
    private ulong[] MarkAllowedTokens(GrammarVocabulary vocabulary, int state)
    {
        int words = (vocabulary.Count + 63) / 64;
        int slot = state >= 0 ? NewMaskSlot(words) : -1;
        if (slot < 0 && _allowedTokens.Length != words)
            _allowedTokens = new ulong[words];
        ulong[] bits = slot >= 0 ? _masks[slot]! : _allowedTokens;
        Array.Clear(bits);
        if (IsComplete)
        {
            foreach (int t in vocabulary.EndOfGenerationTokens)
                bits[t >> 6] |= 1UL << (t & 63);
        }
        int levels = vocabulary.MaxTokenBytes + 1;
        if (_levelTops.Length < levels)
        {
            _levelBuffers = new StackBuffer[levels];
            _levelStacks = new StackSet[levels];
            _levelPartials = new PartialUtf8[levels];
            _levelStates = new int[levels];
            _levelTops = new int[levels];
        }
        _arena.Count = 0;
        SetLevel(0, _buffer, _stacks, _partial, state);
        var nodeBytes = vocabulary.NodeBytes;
        var depths = vocabulary.NodeDepths;
        var subtreeEnds = vocabulary.NodeSubtreeEnds;
        var tokenStarts = vocabulary.NodeTokenStarts;
        var tokens = vocabulary.NodeTokens;
        var levelStates = _levelStates;
        var levelTops = _levelTops;
        long workLimit = _workDone + MaxMaskWork;
        var dense = _denseTransitions;
        for (int node = 0; node < nodeBytes.Length;)
        {
            int depth = depths[node];
            int parentState = levelStates[depth - 1];
            int target;
            // Fast path: a cached state whose transition on this byte is in the dense table.
            if ((uint)parentState < (uint)(dense.Length >> 8) && (target = dense[(parentState << 8) | nodeBytes[node]]) != 0)
            {
                if (target == 1)
                {
                    node = subtreeEnds[node];
                    continue;
                }
                levelStates[depth] = target - 2;
                levelTops[depth] = levelTops[depth - 1];
            }
            else
            {
                bool accepted = Step(depth, nodeBytes[node]);
                dense = _denseTransitions;
                if (_workDone > workLimit)
                    throw new InvalidOperationException(
                        $"Masking the vocabulary needs more than {MaxMaskWork} steps of parse-stack work here: the grammar is too ambiguous or the text nests too deeply.");
                if (!accepted)
                {
                    node = subtreeEnds[node];
                    continue;
                }
            }
            for (int i = tokenStarts[node]; i < tokenStarts[node + 1]; i++)
                bits[tokens[i] >> 6] |= 1UL << (tokens[i] & 63);
            node++;
        }
        if (slot >= 0)
            _maskStates[slot] = state;
        return bits;
    }

    /// <summary>Sets level <paramref name="depth"/> to level depth - 1 after <paramref name="b"/>; false when the byte is rejected.</summary>
    private bool Step(int depth, byte b)
    {
        int parent = depth - 1;
        int state = _levelStates[parent];
        int cached = state >= 0 ? CachedTransition(state, b) : -2;
        _arena.Count = _levelTops[parent];
        if (cached >= 0)
        {
            SetLevel(depth, null, default, default, cached);
            return true;
        }
        if (cached == -1)
            return false;
        StackBuffer source;
        StackSet stacks;
        PartialUtf8 partial;
        if (state >= 0)
            (source, stacks, partial) = (_cachedSets, _cachedSetRegions[_states[state].Set], _states[state].Partial);
        else
            (source, stacks, partial) = (_levelBuffers[parent]!, _levelStacks[parent], _levelPartials[parent]);
        var status = Feed(source, stacks, ref partial, b, _arena, out var next);
        if (status is StepStatus.Rejected or StepStatus.Overflow)
        {
            if (state >= 0)
                CacheTransition(state, b, -1);
            return false;
        }
        var buffer = status == StepStatus.Advanced ? _arena : source;
        int nextState = state >= 0 ? CacheState(buffer, next, partial) : -1;
        if (nextState >= 0)
        {
            CacheTransition(state, b, nextState);
            _arena.Count = _levelTops[parent];
            SetLevel(depth, null, default, default, nextState);
        }
        else
        {
            SetLevel(depth, buffer, next, partial, -1);
        }
        return true;
    }

    // A cached level (state >= 0) keeps only its state; its stacks are the cached set's.
    private void SetLevel(int depth, StackBuffer? buffer, StackSet stacks, PartialUtf8 partial, int state)
    {
        _levelBuffers[depth] = buffer;
        _levelStacks[depth] = stacks;
        _levelPartials[depth] = partial;
        _levelStates[depth] = state;
        _levelTops[depth] = _arena.Count;
    }

    /// <summary>The bytes of <paramref name="token"/> (empty for an end-of-generation token), checking the id.</summary>
    private ReadOnlySpan<byte> TokenText(int token, out bool endOfGeneration)
    {
        var vocabulary = RequireVocabulary();
        ArgumentOutOfRangeException.ThrowIfNegative(token);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(token, vocabulary.Count);
        endOfGeneration = vocabulary.IsEndOfGeneration(token);
        return endOfGeneration ? default : vocabulary.TokenBytes(token);
    }

    private GrammarVocabulary RequireVocabulary() => _vocabulary ?? throw new InvalidOperationException(
        "This matcher has no vocabulary: create it with Grammar.CreateMatcher(vocabulary) to check tokens.");
}

namespace ManagedLM.Grammars;

/// <summary>
/// A cache of byte transitions between stack sets, for <see cref="Mask"/>: inside a string or a number the same few
/// states recur at nearly every trie node, so most nodes cost one lookup. The sets are content-addressed, so the
/// cache stays valid for the matcher's life; it is bounded and cleared when nearly full.
/// </summary>
public sealed partial class GrammarMatcher
{
    private const int MaxCachedStates = 1 << 15;
    private const int MaxCachedSetInts = 1 << 20;
    private const int MaxCachedTransitions = 1 << 19;

    // Interned stack sets: set s is _cachedSetRegions[s] in _cachedSets, with hash _cachedSetHashes[s].
    private readonly StackBuffer _cachedSets = new();
    private StackSet[] _cachedSetRegions = new StackSet[64];
    private ulong[] _cachedSetHashes = new ulong[64];
    private int _cachedSetCount;
    // Open-addressed: set id + 1, 0 = empty.
    private int[] _setTable = new int[128];

    // States: a set and the partial UTF-8 sequence read so far.
    private readonly Dictionary<(int Set, PartialUtf8 Partial), int> _stateIds = [];
    private (int Set, PartialUtf8 Partial)[] _states = new (int, PartialUtf8)[64];

    // Transitions of the first states (up to MaxDenseStates; the table grows with them): entry (state << 8 | byte) is
    // 0 (not cached), 1 (rejected) or next state + 2.
    private const int MaxDenseStates = 4096;
    private int[] _denseTransitions = new int[16 << 8];

    // Transitions of the other states, open-addressed: key (state << 8 | byte) + 1 (0 = empty) → next state, or -1 when the byte is rejected.
    private int[] _transitionKeys = new int[1024];
    private int[] _transitionTargets = new int[1024];
    private int _transitionCount;

    // Masks kept for the last states Mask saw: _maskStates[i] is the state of _masks[i], or -1.
    private const int CachedMasks = 16;
    private readonly ulong[]?[] _masks = new ulong[CachedMasks][];
    private readonly int[] _maskStates = [-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1];
    private int _nextMask;

    /// <summary>The token bitmap cached for <paramref name="state"/>, or null.</summary>
    private ulong[]? CachedMask(int state)
    {
        int i = state < 0 ? -1 : Array.IndexOf(_maskStates, state);
        return i < 0 ? null : _masks[i];
    }

    /// <summary>A slot for a bitmap of <paramref name="words"/> words, replacing the oldest; it holds no state until filled.</summary>
    private int NewMaskSlot(int words)
    {
        int i = _nextMask;
        _nextMask = (i + 1) % CachedMasks;
        _maskStates[i] = -1;
        _masks[i] ??= new ulong[words];
        return i;
    }

    /// <summary>Empties the cache when one more Mask could overrun its bounds.</summary>
    private void TrimCache()
    {
        if (_stateIds.Count < MaxCachedStates / 2 && _cachedSets.Count < MaxCachedSetInts / 2 && _transitionCount < MaxCachedTransitions / 2)
            return;
        ClearCache();
    }

    /// <summary>Forgets the cached masks and, unless <paramref name="keepTransitions"/>, every cached set, state and transition.</summary>
    internal void ClearCache(bool keepTransitions = false)
    {
        _maskStates.AsSpan().Fill(-1);
        if (keepTransitions)
            return;
        _cachedSets.Count = 0;
        _cachedSetCount = 0;
        Array.Clear(_setTable);
        _stateIds.Clear();
        Array.Clear(_transitionKeys);
        _transitionCount = 0;
        Array.Clear(_denseTransitions);
    }

    /// <summary>The cached state of <paramref name="stacks"/> (in <paramref name="buffer"/>) with <paramref name="partial"/>, or -1 when the cache is full.</summary>
    private int CacheState(StackBuffer buffer, StackSet stacks, PartialUtf8 partial)
    {
        int set = CacheSet(buffer, stacks);
        return set < 0 ? -1 : CacheState(set, partial);
    }

    private int CacheState(int set, PartialUtf8 partial)
    {
        if (_stateIds.TryGetValue((set, partial), out int id))
            return id;
        if (_stateIds.Count >= MaxCachedStates)
            return -1;
        id = _stateIds.Count;
        if (id == _states.Length)
            Array.Resize(ref _states, 2 * id);
        if (id < MaxDenseStates && id << 8 == _denseTransitions.Length)
            Array.Resize(ref _denseTransitions, 2 * _denseTransitions.Length);
        _states[id] = (set, partial);
        _stateIds.Add((set, partial), id);
        return id;
    }

    private int CacheSet(StackBuffer buffer, StackSet stacks)
    {
        var content = buffer.Items.AsSpan(stacks.Start, stacks.End - stacks.Start);
        ulong hash = 14695981039346656037;
        foreach (int e in content)
            hash = (hash ^ (uint)e) * 1099511628211;
        int mask = _setTable.Length - 1;
        int slot = (int)(hash ^ (hash >> 29)) & mask;
        for (int entry; (entry = _setTable[slot]) != 0; slot = (slot + 1) & mask)
        {
            var cached = _cachedSetRegions[entry - 1];
            if (_cachedSetHashes[entry - 1] == hash &&
                _cachedSets.Items.AsSpan(cached.Start, cached.End - cached.Start).SequenceEqual(content))
                return entry - 1;
        }
        if (_cachedSetCount >= MaxCachedStates || _cachedSets.Count + content.Length > MaxCachedSetInts)
            return -1;
        int id = _cachedSetCount++;
        if (id == _cachedSetRegions.Length)
        {
            Array.Resize(ref _cachedSetRegions, 2 * id);
            Array.Resize(ref _cachedSetHashes, 2 * id);
        }
        int start = _cachedSets.Count;
        _cachedSets.EnsureSpace(content.Length);
        buffer.Items.AsSpan(stacks.Start, content.Length).CopyTo(_cachedSets.Items.AsSpan(start));
        _cachedSets.Count += content.Length;
        _cachedSetRegions[id] = stacks with { Start = start, End = _cachedSets.Count };
        _cachedSetHashes[id] = hash;
        _setTable[slot] = id + 1;
        if (2 * _cachedSetCount > _setTable.Length)
            RehashSets();
        return id;
    }

    private void RehashSets()
    {
        _setTable = new int[2 * _setTable.Length];
        int mask = _setTable.Length - 1;
        for (int id = 0; id < _cachedSetCount; id++)
        {
            ulong hash = _cachedSetHashes[id];
            int slot = (int)(hash ^ (hash >> 29)) & mask;
            while (_setTable[slot] != 0)
                slot = (slot + 1) & mask;
            _setTable[slot] = id + 1;
        }
    }

    /// <summary>The cached target of <paramref name="b"/> from <paramref name="state"/>: a state, -1 (rejected), or -2 (not cached).</summary>
    private int CachedTransition(int state, byte b)
    {
        if (state < MaxDenseStates)
            return _denseTransitions[(state << 8) | b] - 2;
        int key = ((state << 8) | b) + 1;
        int mask = _transitionKeys.Length - 1;
        for (int slot = TransitionSlot(key, mask), k; (k = _transitionKeys[slot]) != 0; slot = (slot + 1) & mask)
        {
            if (k == key)
                return _transitionTargets[slot];
        }
        return -2;
    }

    private void CacheTransition(int state, byte b, int target)
    {
        if (state < MaxDenseStates)
        {
            _denseTransitions[(state << 8) | b] = target + 2;
            return;
        }
        if (_transitionCount >= MaxCachedTransitions)
            return;
        if (2 * (_transitionCount + 1) > _transitionKeys.Length)
            RehashTransitions();
        int key = ((state << 8) | b) + 1;
        int mask = _transitionKeys.Length - 1;
        int slot = TransitionSlot(key, mask);
        while (_transitionKeys[slot] != 0)
            slot = (slot + 1) & mask;
        _transitionKeys[slot] = key;
        _transitionTargets[slot] = target;
        _transitionCount++;
    }

    private void RehashTransitions()
    {
        int[] keys = _transitionKeys, targets = _transitionTargets;
        _transitionKeys = new int[2 * keys.Length];
        _transitionTargets = new int[2 * keys.Length];
        int mask = _transitionKeys.Length - 1;
        for (int i = 0; i < keys.Length; i++)
        {
            if (keys[i] == 0)
                continue;
            int slot = TransitionSlot(keys[i], mask);
            while (_transitionKeys[slot] != 0)
                slot = (slot + 1) & mask;
            _transitionKeys[slot] = keys[i];
            _transitionTargets[slot] = targets[i];
        }
    }

    private static int TransitionSlot(int key, int mask) => (int)(((uint)key * 2654435769u) >> 7) & mask;
}

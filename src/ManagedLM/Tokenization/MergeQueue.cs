namespace ManagedLM.Tokenization;

/// <summary>One symbol of a word being merged: a span of the word's text in a doubly linked list.</summary>
internal struct MergeSymbol
{
    public int Start;
    /// <summary>Length in chars; 0 once merged into its left neighbour.</summary>
    public int Length;
    public int Prev;
    public int Next;
}

/// <summary>A candidate merge of two adjacent symbols; <see cref="Size"/> detects candidates made stale by other merges.</summary>
internal interface IMergeCandidate<T> : IComparable<T>
{
    int Left { get; }
    int Right { get; }
    int Size { get; }
}

/// <summary>
/// The merge loop shared by the SPM and BPE tokenizers: symbols in a linked list, candidates in a
/// binary heap (best first), stale candidates skipped when popped. O(n log n) in the word length.
/// </summary>
internal sealed class MergeQueue<T> where T : struct, IMergeCandidate<T>
{
    private T[] _heap = new T[64];
    private int _count;
    public MergeSymbol[] Symbols = new MergeSymbol[64];
    public int SymbolCount;

    /// <summary>Empties the queue and makes one symbol per char (<paramref name="byChar"/>) or per code point of <paramref name="text"/>.</summary>
    public void Reset(ReadOnlySpan<char> text, bool byChar)
    {
        _count = 0;
        if (Symbols.Length < text.Length)
            Symbols = new MergeSymbol[Math.Max(text.Length, Symbols.Length * 2)];
        int n = 0;
        for (int pos = 0; pos < text.Length;)
        {
            int len = !byChar && char.IsHighSurrogate(text[pos]) && pos + 1 < text.Length && char.IsLowSurrogate(text[pos + 1]) ? 2 : 1;
            Symbols[n] = new MergeSymbol { Start = pos, Length = len, Prev = n - 1, Next = pos + len == text.Length ? -1 : n + 1 };
            pos += len;
            n++;
        }
        SymbolCount = n;
    }

    public void Push(in T candidate)
    {
        if (_count == _heap.Length)
            Array.Resize(ref _heap, _count * 2);
        int i = _count++;
        while (i > 0)
        {
            int parent = (i - 1) >> 1;
            if (candidate.CompareTo(_heap[parent]) >= 0)
                break;
            _heap[i] = _heap[parent];
            i = parent;
        }
        _heap[i] = candidate;
    }

    /// <summary>Pops candidates until one is still valid, merges it, and returns it; false when none is left.</summary>
    public bool TryMergeNext(out T merged)
    {
        while (_count > 0)
        {
            merged = _heap[0];
            RemoveTop();
            ref var left = ref Symbols[merged.Left];
            ref var right = ref Symbols[merged.Right];
            if (left.Length == 0 || right.Length == 0 || left.Length + right.Length != merged.Size)
                continue;
            left.Length += right.Length;
            right.Length = 0;
            left.Next = right.Next;
            if (right.Next >= 0)
                Symbols[right.Next].Prev = merged.Left;
            return true;
        }
        merged = default;
        return false;
    }

    private void RemoveTop()
    {
        var last = _heap[--_count];
        int i = 0;
        while (true)
        {
            int child = 2 * i + 1;
            if (child >= _count)
                break;
            if (child + 1 < _count && _heap[child + 1].CompareTo(_heap[child]) < 0)
                child++;
            if (last.CompareTo(_heap[child]) <= 0)
                break;
            _heap[i] = _heap[child];
            i = child;
        }
        if (_count > 0)
            _heap[i] = last;
    }
}

namespace ManagedLM.Grammars;

/// <summary>A growable int buffer that keeps its array between uses (grows during warm-up, then allocates nothing).</summary>
internal sealed class StackBuffer
{
    public int[] Items = new int[256];
    public int Count;

    public void EnsureSpace(int extra)
    {
        if (Count + extra > Items.Length)
            Array.Resize(ref Items, Math.Max(Items.Length * 2, Count + extra));
    }

    public void CopyFrom(StackBuffer source)
    {
        Count = 0;
        EnsureSpace(source.Count);
        source.Items.AsSpan(0, source.Count).CopyTo(Items);
        Count = source.Count;
    }
}

/// <summary>
/// A set of parse stacks stored in a <see cref="StackBuffer"/> from <see cref="Start"/> to <see cref="End"/>: each
/// stack as its length then its element positions, bottom first; the top is the next terminal to match.
/// <see cref="HasEmpty"/>: one stack is empty, i.e. the root rule may end here.
/// </summary>
internal readonly record struct StackSet(int Start, int End, int Count, bool HasEmpty);

/// <summary>
/// The part of a UTF-8 sequence read so far: <see cref="Value"/> holds its bits, <see cref="Remaining"/> bytes are
/// still to come, and the finished code point must be at least <see cref="Minimum"/> (shorter forms are overlong).
/// </summary>
internal readonly record struct PartialUtf8(int Value, int Remaining, int Minimum);

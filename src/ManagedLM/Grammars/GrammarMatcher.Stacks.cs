namespace ManagedLM.Grammars;

/// <summary>Advancing sets of parse stacks over code points and UTF-8 bytes.</summary>
public sealed partial class GrammarMatcher
{
    // Stack entries written (expansions and results) allowed while advancing over one code point.
    private const int MaxStepWork = 1 << 21;

    private enum StepStatus
    {
        /// <summary>A code point was matched; the new stacks are in the target buffer.</summary>
        Advanced,
        /// <summary>Part of a UTF-8 sequence that some stack can still match; the stacks did not change.</summary>
        Pending,
        Rejected,
        Overflow,
    }

    // Pending expansions, each as its elements then its length (so the last one can be popped).
    private readonly StackBuffer _work = new();
    private int[] _prefix = new int[64];
    // Open-addressed set of the stacks written by the current step: slots stamped with _stamp hold their offset.
    private readonly int[] _slotStamps = new int[2 * MaxStacks];
    private readonly int[] _slotOffsets = new int[2 * MaxStacks];
    private int _stamp;
    // Work left in the current step, and all work done (for Mask's budget).
    private int _stepWorkLeft;
    private long _workDone;

    /// <summary>The stacks at the start of the root rule, appended to <paramref name="target"/>.</summary>
    private StepStatus Start(StackBuffer target, out StackSet stacks)
    {
        NewStamp();
        var g = _grammar;
        int count = 0;
        bool hasEmpty = false;
        int start = target.Count;
        _stepWorkLeft = MaxStepWork;
        for (int a = g.RuleAlternatives[g.Root]; a < g.RuleAlternatives[g.Root + 1]; a++)
        {
            _work.Count = 0;
            _work.EnsureSpace(2);
            int position = g.AlternativeStarts[a];
            bool nonEmpty = g.Elements[position].Kind != GrammarElementKind.End;
            if (nonEmpty)
                _work.Items[_work.Count++] = position;
            _work.Items[_work.Count++] = nonEmpty ? 1 : 0;
            if (Expand(target, ref count, ref hasEmpty) == StepStatus.Overflow)
            {
                stacks = default;
                return StepStatus.Overflow;
            }
        }
        stacks = new StackSet(start, target.Count, count, hasEmpty);
        return count > 0 ? StepStatus.Advanced : StepStatus.Rejected;
    }

    /// <summary>
    /// Feeds one byte to <paramref name="stacks"/> (in <paramref name="source"/>) with <paramref name="partial"/> the UTF-8
    /// sequence so far. A completed code point appends the stacks after it to <paramref name="target"/> (which may be
    /// <paramref name="source"/>) as <paramref name="next"/>; otherwise <paramref name="next"/> is <paramref name="stacks"/>.
    /// </summary>
    private StepStatus Feed(StackBuffer source, StackSet stacks, ref PartialUtf8 partial, byte b, StackBuffer target, out StackSet next)
    {
        next = stacks;
        if (partial.Remaining == 0)
        {
            if (b < 0x80)
                return Advance(source, stacks, b, target, out next);
            if (b is >= 0xC2 and <= 0xDF)
                partial = new PartialUtf8(b & 0x1F, 1, 0x80);
            else if (b is >= 0xE0 and <= 0xEF)
                partial = new PartialUtf8(b & 0x0F, 2, 0x800);
            else if (b is >= 0xF0 and <= 0xF4)
                partial = new PartialUtf8(b & 0x07, 3, 0x10000);
            else
                return StepStatus.Rejected;
        }
        else
        {
            if ((b & 0xC0) != 0x80)
                return StepStatus.Rejected;
            partial = new PartialUtf8((partial.Value << 6) | (b & 0x3F), partial.Remaining - 1, partial.Minimum);
            if (partial.Remaining == 0)
            {
                int codePoint = partial.Value;
                bool valid = codePoint >= partial.Minimum && codePoint <= Grammar.MaxCodePoint && codePoint is < 0xD800 or > 0xDFFF;
                partial = default;
                return valid ? Advance(source, stacks, codePoint, target, out next) : StepStatus.Rejected;
            }
        }
        return CanComplete(source, stacks, partial) ? StepStatus.Pending : StepStatus.Rejected;
    }

    /// <summary>Whether some stack's next terminal matches a code point that <paramref name="partial"/> can still become.</summary>
    private bool CanComplete(StackBuffer source, StackSet stacks, PartialUtf8 partial)
    {
        int shift = 6 * partial.Remaining;
        int lo = Math.Max(partial.Value << shift, partial.Minimum);
        int hi = Math.Min((partial.Value << shift) | ((1 << shift) - 1), Grammar.MaxCodePoint);
        if (lo > hi)
            return false;
        int[] items = source.Items;
        for (int p = stacks.Start; p < stacks.End; p += items[p] + 1)
        {
            int length = items[p];
            if (length > 0 && _grammar.MatchesAnyIn(items[p + length], lo, hi))
                return true;
        }
        return false;
    }

    /// <summary>The stacks after <paramref name="codePoint"/>, appended to <paramref name="target"/> (which may be <paramref name="source"/>).</summary>
    private StepStatus Advance(StackBuffer source, StackSet stacks, int codePoint, StackBuffer target, out StackSet next)
    {
        NewStamp();
        var elements = _grammar.Elements;
        int count = 0;
        bool hasEmpty = false;
        int start = target.Count;
        _stepWorkLeft = MaxStepWork;
        for (int p = stacks.Start; p < stacks.End;)
        {
            // Read through source.Items each time: appending to target may have replaced the array.
            int length = source.Items[p];
            int stackStart = p + 1;
            p = stackStart + length;
            if (length == 0)
                continue;
            int top = source.Items[stackStart + length - 1];
            if (!_grammar.Matches(top, codePoint))
                continue;
            _work.Count = 0;
            _work.EnsureSpace(length + 1);
            source.Items.AsSpan(stackStart, length - 1).CopyTo(_work.Items);
            int workLength = length - 1;
            if (elements[top + 1].Kind != GrammarElementKind.End)
                _work.Items[workLength++] = top + 1;
            _work.Items[workLength] = workLength;
            _work.Count = workLength + 1;
            if (Expand(target, ref count, ref hasEmpty) == StepStatus.Overflow)
            {
                next = default;
                return StepStatus.Overflow;
            }
        }
        next = new StackSet(start, target.Count, count, hasEmpty);
        return count > 0 ? StepStatus.Advanced : StepStatus.Rejected;
    }

    /// <summary>Expands the stacks in <see cref="_work"/> until each has a terminal on top (or is empty), writing them to <paramref name="target"/>.</summary>
    private StepStatus Expand(StackBuffer target, ref int count, ref bool hasEmpty)
    {
        var g = _grammar;
        var elements = g.Elements;
        while (_work.Count > 0)
        {
            int length = _work.Items[_work.Count - 1];
            int start = _work.Count - 1 - length;
            if (length == 0 || elements[_work.Items[start + length - 1]].Kind != GrammarElementKind.RuleRef)
            {
                if (!Emit(target, _work.Items.AsSpan(start, length), ref count))
                    return StepStatus.Overflow;
                hasEmpty |= length == 0;
                _work.Count = start;
                continue;
            }
            // Replace the reference on top by each alternative of its rule, above what follows the reference.
            int top = _work.Items[start + length - 1];
            if (_prefix.Length < length)
                Array.Resize(ref _prefix, Math.Max(2 * _prefix.Length, length));
            _work.Items.AsSpan(start, length - 1).CopyTo(_prefix);
            int prefixLength = length - 1;
            if (elements[top + 1].Kind != GrammarElementKind.End)
                _prefix[prefixLength++] = top + 1;
            _work.Count = start;
            int rule = elements[top].Value;
            for (int a = g.RuleAlternatives[rule + 1] - 1; a >= g.RuleAlternatives[rule]; a--)
            {
                int alternative = g.AlternativeStarts[a];
                bool nonEmpty = elements[alternative].Kind != GrammarElementKind.End;
                int newLength = prefixLength + (nonEmpty ? 1 : 0);
                _stepWorkLeft -= newLength + 1;
                _workDone += newLength + 1;
                if (newLength > MaxStackDepth || _stepWorkLeft < 0)
                    return StepStatus.Overflow;
                _work.EnsureSpace(newLength + 1);
                _prefix.AsSpan(0, prefixLength).CopyTo(_work.Items.AsSpan(_work.Count));
                _work.Count += prefixLength;
                if (nonEmpty)
                    _work.Items[_work.Count++] = alternative;
                _work.Items[_work.Count++] = newLength;
            }
        }
        return StepStatus.Advanced;
    }

    /// <summary>Appends <paramref name="stack"/> to <paramref name="target"/> unless this step already wrote it; false past <see cref="MaxStacks"/>.</summary>
    private bool Emit(StackBuffer target, ReadOnlySpan<int> stack, ref int count)
    {
        uint hash = 2166136261;
        foreach (int e in stack)
            hash = (hash ^ (uint)e) * 16777619;
        int mask = _slotStamps.Length - 1;
        int slot = (int)(hash ^ (hash >> 15)) & mask;
        while (_slotStamps[slot] == _stamp)
        {
            int offset = _slotOffsets[slot];
            if (target.Items[offset] == stack.Length && target.Items.AsSpan(offset + 1, stack.Length).SequenceEqual(stack))
                return true;
            slot = (slot + 1) & mask;
        }
        _workDone += stack.Length + 1;
        if (count == MaxStacks || (_stepWorkLeft -= stack.Length + 1) < 0)
            return false;
        _slotStamps[slot] = _stamp;
        _slotOffsets[slot] = target.Count;
        target.EnsureSpace(stack.Length + 1);
        target.Items[target.Count] = stack.Length;
        stack.CopyTo(target.Items.AsSpan(target.Count + 1));
        target.Count += stack.Length + 1;
        count++;
        return true;
    }

    private void NewStamp()
    {
        if (++_stamp == int.MaxValue)
        {
            Array.Clear(_slotStamps);
            _stamp = 1;
        }
    }
}

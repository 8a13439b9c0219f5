using System.Collections.Immutable;
using System.Runtime.InteropServices;

namespace ManagedLM.Tokenization;

/// <summary>An immutable set of integer units (code points or collapsed category bytes) as sorted disjoint ranges.</summary>
internal sealed class UnitSet
{
    public const int MaxUnit = 0x10FFFF;

    private readonly ImmutableArray<int> _lo;
    private readonly ImmutableArray<int> _hi;
    private readonly ImmutableArray<bool> _ascii;

    private UnitSet(List<(int Lo, int Hi)> merged)
    {
        var lo = new int[merged.Count];
        var hi = new int[merged.Count];
        var ascii = new bool[128];
        for (int i = 0; i < merged.Count; i++)
        {
            (lo[i], hi[i]) = merged[i];
            for (int u = merged[i].Lo; u <= Math.Min(merged[i].Hi, 127); u++)
                ascii[u] = true;
        }
        _lo = ImmutableCollectionsMarshal.AsImmutableArray(lo);
        _hi = ImmutableCollectionsMarshal.AsImmutableArray(hi);
        _ascii = ImmutableCollectionsMarshal.AsImmutableArray(ascii);
    }

    public static UnitSet Of(IEnumerable<(int Lo, int Hi)> ranges)
    {
        var sorted = ranges.Where(r => r.Lo <= r.Hi).OrderBy(r => r.Lo).ToList();
        var merged = new List<(int Lo, int Hi)>();
        foreach (var r in sorted)
        {
            if (merged.Count > 0 && r.Lo <= merged[^1].Hi + 1)
                merged[^1] = (merged[^1].Lo, Math.Max(merged[^1].Hi, r.Hi));
            else
                merged.Add(r);
        }
        return new UnitSet(merged);
    }

    public static UnitSet Single(int unit) => Of([(unit, unit)]);

    public IEnumerable<(int Lo, int Hi)> Ranges => _lo.Select((lo, i) => (lo, _hi[i]));

    /// <summary>Every unit in [0, <see cref="MaxUnit"/>] not in this set.</summary>
    public UnitSet Complement()
    {
        var result = new List<(int, int)>();
        int next = 0;
        for (int i = 0; i < _lo.Length; i++)
        {
            if (_lo[i] > next)
                result.Add((next, _lo[i] - 1));
            next = _hi[i] + 1;
        }
        if (next <= MaxUnit)
            result.Add((next, MaxUnit));
        return Of(result);
    }

    public bool Contains(int unit)
    {
        if ((uint)unit < 128)
            return _ascii[unit];
        int lo = 0, hi = _lo.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >> 1;
            if (unit < _lo[mid])
                hi = mid - 1;
            else if (unit > _hi[mid])
                lo = mid + 1;
            else
                return true;
        }
        return false;
    }
}

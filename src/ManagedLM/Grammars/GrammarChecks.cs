namespace ManagedLM.Grammars;

/// <summary>Checks on parsed rules that matching relies on.</summary>
internal static class GrammarChecks
{
    /// <summary>
    /// A rule that can reach itself as the first thing it matches, through rules that may match nothing on the way
    /// (matching it would never terminate), or -1. Linear in the grammar's size, no recursion.
    /// </summary>
    public static int FindLeftRecursion(IReadOnlyList<List<GrammarElement>>[] rules)
    {
        bool[] nullable = Nullable(rules);
        var starts = new List<int>[rules.Length];
        for (int r = 0; r < rules.Length; r++)
        {
            starts[r] = [];
            foreach (var alternative in rules[r])
            {
                foreach (var e in alternative)
                {
                    if (e.Kind != GrammarElementKind.RuleRef)
                        break;
                    starts[r].Add(e.Value);
                    if (!nullable[e.Value])
                        break;
                }
            }
        }
        // Depth-first search for a cycle: 1 = on the path, 2 = done.
        var color = new byte[rules.Length];
        var path = new Stack<(int Rule, int Next)>();
        for (int first = 0; first < rules.Length; first++)
        {
            if (color[first] != 0)
                continue;
            path.Push((first, 0));
            color[first] = 1;
            while (path.Count > 0)
            {
                var (rule, next) = path.Pop();
                if (next == starts[rule].Count)
                {
                    color[rule] = 2;
                    continue;
                }
                path.Push((rule, next + 1));
                int target = starts[rule][next];
                if (color[target] == 1)
                    return target;
                if (color[target] == 0)
                {
                    color[target] = 1;
                    path.Push((target, 0));
                }
            }
        }
        return -1;
    }

    /// <summary>Which rules can match the empty string.</summary>
    public static bool[] Nullable(IReadOnlyList<List<GrammarElement>>[] rules)
    {
        var nullable = new bool[rules.Length];
        var users = new List<int>[rules.Length];
        var remaining = new List<int>();
        var owner = new List<int>();
        var ready = new Stack<int>();
        for (int r = 0; r < rules.Length; r++)
        {
            foreach (var alternative in rules[r])
            {
                if (alternative.Any(e => e.Kind != GrammarElementKind.RuleRef))
                    continue;
                if (alternative.Count == 0)
                {
                    if (!nullable[r])
                        ready.Push(r);
                    nullable[r] = true;
                    continue;
                }
                int index = remaining.Count;
                remaining.Add(alternative.Count);
                owner.Add(r);
                foreach (var e in alternative)
                    (users[e.Value] ??= []).Add(index);
            }
        }
        while (ready.Count > 0)
        {
            int rule = ready.Pop();
            if (users[rule] is null)
                continue;
            foreach (int index in users[rule])
            {
                if (--remaining[index] == 0 && !nullable[owner[index]])
                {
                    nullable[owner[index]] = true;
                    ready.Push(owner[index]);
                }
            }
        }
        return nullable;
    }
}

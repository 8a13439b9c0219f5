using System.Buffers;
using System.Text;

namespace ManagedLM.Chat.Jinja;

/// <summary>The <c>x is name</c> tests.</summary>
internal static class Tests
{
    public static bool Apply(string name, object? v) => name switch
    {
        "none" => v is null,
        "boolean" => v is bool,
        "integer" => v is long,
        "float" => v is double,
        "number" => v is long or double,
        "string" => v is string,
        "mapping" => v is JinjaDict,
        "iterable" => Values.IsIterable(v),
        "sequence" => v is JinjaList,
        "defined" => v is not null,
        "undefined" => v is null,
        "callable" => v is JinjaFunction,
        "true" => Values.ToBool(v),
        "false" => !Values.ToBool(v),
        "odd" => Values.ToLong(v) % 2 != 0,
        "even" => Values.ToLong(v) % 2 == 0,
        "lower" => v is string s && s == Methods.AsciiLower(s),
        "upper" => v is string s && s == Methods.AsciiUpper(s),
        _ => throw new TemplateException($"Unknown type for 'is' operator: {name}"),
    };

    /// <summary>Names usable as tests by select/reject/selectattr/rejectattr (with their extra arguments).</summary>
    public static readonly System.Collections.Immutable.ImmutableArray<string> Names =
        ["none", "boolean", "integer", "float", "number", "string", "mapping", "iterable", "sequence", "defined", "undefined", "callable", "odd", "even", "lower", "upper"];
}

/// <summary>Methods of template values: <c>s.strip()</c>, <c>d.items()</c>, <c>l.append(x)</c>, ...</summary>
internal static class Methods
{
    public static object? Call(RenderContext context, object obj, string method, Arguments a)
    {
        var budget = context.Budget;
        budget.ChargeCall(a, obj);
        return budget.ChargeResult(CallUncharged(context, obj, method, a));
    }

    private static object? CallUncharged(RenderContext context, object obj, string method, Arguments a)
    {
        var budget = context.Budget;
        switch (obj)
        {
            case JinjaList list:
                switch (method)
                {
                    case "append":
                        a.Expect("append method", 1, 1);
                        budget.Items(1);
                        list.Add(a.Positional[0]);
                        return null;
                    case "pop":
                        a.Expect("pop method", 0, 1);
                        if (list.Count == 0)
                            throw new TemplateException("pop from empty list");
                        int at = a.Positional.Count == 0 ? list.Count - 1 : (int)Values.ToLong(a.Positional[0]);
                        if (at < 0 || at >= list.Count)
                            throw new TemplateException($"pop index out of range: {at}");
                        budget.Items(list.Count - at);
                        var popped = list[at];
                        list.RemoveAt(at);
                        return popped;
                    case "insert":
                        a.Expect("insert method", 2, 2);
                        long index = Values.ToLong(a.Positional[0]);
                        if (index < 0 || index > list.Count)
                            throw new TemplateException("Index out of range for insert method");
                        budget.Items(list.Count - index + 1);
                        list.Insert((int)index, a.Positional[1]);
                        return null;
                }
                break;
            case JinjaDict dict:
                switch (method)
                {
                    case "items":
                        a.Expect("items method", 0, 0);
                        return Builtins.Items(dict, budget);
                    case "keys":
                        a.Expect("keys method", 0, 0);
                        return new JinjaList(Builtins.Copied(dict.Keys, budget));
                    case "values":
                        a.Expect("values method", 0, 0);
                        return new JinjaList(Builtins.Copied(dict.Keys, budget).Select(dict.Get));
                    case "get":
                        a.Expect("get method", 1, 2);
                        object? key = a.Positional[0];
                        return key is not null && dict.ContainsKey(key) ? dict.Get(key) : a.Positional.Count == 2 ? a.Positional[1] : null;
                    case "pop":
                        a.Expect("pop method", 1, 2);
                        object? k = a.Positional[0];
                        if (k is not null && dict.TryGet(k, out var v))
                        {
                            budget.Items(dict.Count);
                            dict.Remove(k);
                            return v;
                        }
                        return a.Positional.Count == 2 ? a.Positional[1] : throw new TemplateException($"Key not found: {Values.Describe(k)}");
                    case "update":
                        a.Expect("update method", 0, 1, 0, int.MaxValue);
                        if (a.Positional.Count == 1)
                        {
                            if (a.Positional[0] is not JinjaDict other)
                                throw new TemplateException("update expects a mapping");
                            budget.Items(other.Count);
                            foreach (object key2 in other.Keys)
                            {
                                budget.Hash(key2);
                                dict.Set(key2, other.Get(key2));
                            }
                        }
                        budget.Items(a.Named.Count);
                        foreach (var (name, value) in a.Named)
                            dict.Set(name, value);
                        return null;
                }
                if (dict.Get(method) is JinjaFunction f)
                    return f.Invoke(context, a);
                if (dict.ContainsKey(method))
                    throw new TemplateException($"Property '{method}' is not callable");
                break;
            case string s:
                return StringMethod(s, method, a, budget);
        }
        throw new TemplateException($"Unknown method: {method}");
    }

    private static object? StringMethod(string s, string method, Arguments a, RenderBudget budget)
    {
        string Str(int i) => Values.ToStr(a.Positional[i], budget);
        string Chars() => a.Positional.Count == 0 || a.Positional[0] is null ? "" : Str(0);
        switch (method)
        {
            case "strip":
                a.Expect("strip method", 0, 1);
                return Strip(s, Chars(), true, true);
            case "lstrip":
                a.Expect("lstrip method", 0, 1);
                return Strip(s, Chars(), true, false);
            case "rstrip":
                a.Expect("rstrip method", 0, 1);
                return Strip(s, Chars(), false, true);
            case "split":
                a.Expect("split method", 0, 2);
                return Split(s, a.Positional.Count == 0 || a.Positional[0] is null ? null : Str(0),
                    a.Positional.Count == 2 ? Values.ToLong(a.Positional[1]) : -1, budget);
            case "capitalize":
                a.Expect("capitalize method", 0, 0);
                return Capitalize(s);
            case "upper":
                a.Expect("upper method", 0, 0);
                return AsciiUpper(s);
            case "lower":
                a.Expect("lower method", 0, 0);
                return AsciiLower(s);
            case "title":
                a.Expect("title method", 0, 0);
                return Title(s);
            case "startswith":
                a.Expect("startswith method", 1, 1);
                return s.StartsWith(Str(0), StringComparison.Ordinal);
            case "endswith":
                a.Expect("endswith method", 1, 1);
                return s.EndsWith(Str(0), StringComparison.Ordinal);
            case "replace":
                a.Expect("replace method", 2, 3);
                return Replace(s, Str(0), Str(1), a.Positional.Count == 3 ? Values.ToLong(a.Positional[2]) : long.MaxValue, budget);
            case "find":
            {
                a.Expect("find method", 1, 1);
                int at = IndexOf(s, Str(0));
                return at < 0 ? -1L : Encoding.UTF8.GetByteCount(s.AsSpan(0, at));
            }
            case "count":
                a.Expect("count method", 1, 1);
                return CountOccurrences(s, Str(0));
            case "join":
                a.Expect("join method", 1, 1);
                return Builtins.Join(s, Values.Iterate(a.Positional[0], budget), budget);
            case "format":
                return Format(s, a, budget);
        }
        throw new TemplateException($"Unknown method: {method}");
    }

    [ThreadSafeStatic("an immutable set, built by the static initializer")]
    private static readonly SearchValues<char> Whitespace = SearchValues.Create(" \t\n\r");

    /// <summary>Strips <paramref name="chars"/> (default: ASCII space, tab, newline, carriage return only, as minja does).</summary>
    public static string Strip(string s, string chars, bool left, bool right)
    {
        // A set, not a string: a long `chars` would make every test a scan.
        var set = chars.Length == 0 ? Whitespace : SearchValues.Create(chars);
        int start = left ? s.AsSpan().IndexOfAnyExcept(set) : 0;
        if (start < 0)
            return "";
        int end = right ? s.AsSpan().LastIndexOfAnyExcept(set) + 1 : s.Length;
        return s[start..end];
    }

    // Longer values are searched for by Knuth-Morris-Pratt: .NET's search can take |s|·|value| steps on such values.
    private const int ShortValue = 64;

    /// <summary>The ordinal index of <paramref name="value"/> in <paramref name="s"/> (-1: none), in time linear in both.</summary>
    public static int IndexOf(string s, string value)
    {
        int[]? prefix = null;
        return IndexOf(s, value, 0, ref prefix);
    }

    /// <summary>
    /// The ordinal index of <paramref name="value"/> in <paramref name="s"/> from <paramref name="start"/> (-1: none), in time
    /// linear in both; <paramref name="prefix"/> keeps the table of a long value between searches for it.
    /// </summary>
    public static int IndexOf(string s, string value, int start, ref int[]? prefix)
    {
        if (value.Length <= ShortValue)
            return s.IndexOf(value, start, StringComparison.Ordinal);
        prefix ??= PrefixTable(value);
        for (int i = start, matched = 0; i < s.Length; i++)
        {
            while (matched > 0 && s[i] != value[matched])
                matched = prefix[matched - 1];
            if (s[i] == value[matched] && ++matched == value.Length)
                return i - value.Length + 1;
        }
        return -1;
    }

    // prefix[i]: the length of the longest proper prefix of value[..(i + 1)] that is also its suffix.
    private static int[] PrefixTable(string value)
    {
        var prefix = new int[value.Length];
        for (int i = 1, k = 0; i < value.Length; i++)
        {
            while (k > 0 && value[i] != value[k])
                k = prefix[k - 1];
            if (value[i] == value[k])
                k++;
            prefix[i] = k;
        }
        return prefix;
    }

    /// <summary>The parts of <paramref name="s"/> between separators (each part charged as an item), at most <paramref name="max"/> splits (-1: all); without a separator, the words between whitespace.</summary>
    public static JinjaList Split(string s, string? separator, long max, RenderBudget budget)
    {
        var result = new JinjaList();
        void Add(string part)
        {
            budget.Items(1);
            result.Add(part);
        }
        if (separator is null)
        {
            for (int i = 0; i < s.Length;)
            {
                if (IsSplitSpace(s[i]))
                {
                    i++;
                    continue;
                }
                int end = i;
                while (end < s.Length && !IsSplitSpace(s[end]))
                    end++;
                Add(s[i..end]);
                i = end;
            }
            return result;
        }
        if (separator.Length == 0)
            throw new TemplateException("empty separator");
        int start = 0;
        int[]? prefix = null;
        while (max != 0)
        {
            int at = IndexOf(s, separator, start, ref prefix);
            if (at < 0)
                break;
            Add(s[start..at]);
            start = at + separator.Length;
            max--;
        }
        Add(s[start..]);
        return result;
    }

    private static bool IsSplitSpace(char c) => c is ' ' or '\t' or '\n' or '\r' or '\v' or '\f';

    /// <summary>s with the first <paramref name="count"/> occurrences of <paramref name="before"/> replaced, held to the output limit while it grows.</summary>
    public static string Replace(string s, string before, string after, long count, RenderBudget budget)
    {
        if (before.Length == 0)
            return s;
        var text = new TextBuilder(budget);
        int start = 0;
        int[]? prefix = null;
        while (count-- > 0)
        {
            int at = IndexOf(s, before, start, ref prefix);
            if (at < 0)
                break;
            text.Append(s.AsSpan(start, at - start)).Append(after);
            start = at + before.Length;
        }
        return text.Append(s.AsSpan(start)).ToString();
    }

    private static long CountOccurrences(string s, string sub)
    {
        if (sub.Length == 0)
            return s.Length + 1;
        long n = 0;
        int[]? prefix = null;
        for (int at = IndexOf(s, sub, 0, ref prefix); at >= 0; at = IndexOf(s, sub, at + sub.Length, ref prefix))
            n++;
        return n;
    }

    // ASCII-only case changes, as C's toupper/tolower in the C locale.
    public static string AsciiUpper(string s) => string.Create(s.Length, s, (span, src) =>
    {
        for (int i = 0; i < src.Length; i++)
            span[i] = Upper(src[i]);
    });

    public static string AsciiLower(string s) => string.Create(s.Length, s, (span, src) =>
    {
        for (int i = 0; i < src.Length; i++)
            span[i] = Lower(src[i]);
    });

    private static char Upper(char c) => c is >= 'a' and <= 'z' ? (char)(c - 32) : c;

    private static char Lower(char c) => c is >= 'A' and <= 'Z' ? (char)(c + 32) : c;

    public static string Capitalize(string s) => s.Length == 0 ? s : AsciiUpper(s[..1]) + s[1..];

    public static string Title(string s) => string.Create(s.Length, s, (span, src) =>
    {
        for (int i = 0; i < src.Length; i++)
        {
            bool wordStart = i == 0 || IsSplitSpace(src[i - 1]);
            span[i] = wordStart ? Upper(src[i]) : Lower(src[i]);
        }
    });

    // Python's str.format with {} / {0} / {name} fields (no format specs).
    private static string Format(string s, Arguments a, RenderBudget budget)
    {
        var sb = new TextBuilder(budget);
        int auto = 0;
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c == '{' && i + 1 < s.Length && s[i + 1] == '{') { sb.Append('{'); i++; continue; }
            if (c == '}' && i + 1 < s.Length && s[i + 1] == '}') { sb.Append('}'); i++; continue; }
            if (c != '{')
            {
                sb.Append(c);
                continue;
            }
            int close = s.IndexOf('}', i);
            if (close < 0)
                throw new TemplateException("Single '{' encountered in format string");
            string field = s[(i + 1)..close];
            object? value = field.Length == 0 ? a.Positional.ElementAtOrDefault(auto++)
                : int.TryParse(field, out int n) ? a.Positional.ElementAtOrDefault(n) : a.GetNamed(field);
            sb.Append(Values.ToStr(value, budget));
            i = close;
        }
        return sb.ToString();
    }
}

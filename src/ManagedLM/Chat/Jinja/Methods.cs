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
        switch (obj)
        {
            case JinjaList list:
                switch (method)
                {
                    case "append":
                        a.Expect("append method", 1, 1);
                        context.Budget.CheckLength(list.Count + 1L);
                        list.Add(a.Positional[0]);
                        return null;
                    case "pop":
                        a.Expect("pop method", 0, 1);
                        if (list.Count == 0)
                            throw new TemplateException("pop from empty list");
                        int at = a.Positional.Count == 0 ? list.Count - 1 : (int)Values.ToLong(a.Positional[0]);
                        if (at < 0 || at >= list.Count)
                            throw new TemplateException($"pop index out of range: {at}");
                        var popped = list[at];
                        list.RemoveAt(at);
                        return popped;
                    case "insert":
                        a.Expect("insert method", 2, 2);
                        long index = Values.ToLong(a.Positional[0]);
                        if (index < 0 || index > list.Count)
                            throw new TemplateException("Index out of range for insert method");
                        list.Insert((int)index, a.Positional[1]);
                        return null;
                }
                break;
            case JinjaDict dict:
                switch (method)
                {
                    case "items":
                        a.Expect("items method", 0, 0);
                        return Builtins.Items(dict);
                    case "keys":
                        a.Expect("keys method", 0, 0);
                        return new JinjaList(dict.Keys);
                    case "values":
                        a.Expect("values method", 0, 0);
                        return new JinjaList(dict.Keys.Select(dict.Get));
                    case "get":
                        a.Expect("get method", 1, 2);
                        object? key = a.Positional[0];
                        return key is not null && dict.ContainsKey(key) ? dict.Get(key) : a.Positional.Count == 2 ? a.Positional[1] : null;
                    case "pop":
                        a.Expect("pop method", 1, 2);
                        object? k = a.Positional[0];
                        if (k is not null && dict.TryGet(k, out var v))
                        {
                            dict.Remove(k);
                            return v;
                        }
                        return a.Positional.Count == 2 ? a.Positional[1] : throw new TemplateException($"Key not found: {Values.Dump(k)}");
                    case "update":
                        a.Expect("update method", 0, 1, 0, int.MaxValue);
                        if (a.Positional.Count == 1)
                        {
                            if (a.Positional[0] is not JinjaDict other)
                                throw new TemplateException("update expects a mapping");
                            foreach (object key2 in other.Keys)
                                dict.Set(key2, other.Get(key2));
                        }
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
                return StringMethod(s, method, a);
        }
        throw new TemplateException($"Unknown method: {method}");
    }

    private static object? StringMethod(string s, string method, Arguments a)
    {
        string Chars() => a.Positional.Count == 0 || a.Positional[0] is null ? "" : Values.ToStr(a.Positional[0]);
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
                return Split(s, a.Positional.Count == 0 || a.Positional[0] is null ? null : Values.ToStr(a.Positional[0]),
                    a.Positional.Count == 2 ? Values.ToLong(a.Positional[1]) : -1);
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
                return s.StartsWith(Values.ToStr(a.Positional[0]), StringComparison.Ordinal);
            case "endswith":
                a.Expect("endswith method", 1, 1);
                return s.EndsWith(Values.ToStr(a.Positional[0]), StringComparison.Ordinal);
            case "replace":
                a.Expect("replace method", 2, 3);
                return Replace(s, Values.ToStr(a.Positional[0]), Values.ToStr(a.Positional[1]), a.Positional.Count == 3 ? Values.ToLong(a.Positional[2]) : long.MaxValue);
            case "find":
            {
                a.Expect("find method", 1, 1);
                int at = s.IndexOf(Values.ToStr(a.Positional[0]), StringComparison.Ordinal);
                return at < 0 ? -1L : Encoding.UTF8.GetByteCount(s.AsSpan(0, at));
            }
            case "count":
                a.Expect("count method", 1, 1);
                return CountOccurrences(s, Values.ToStr(a.Positional[0]));
            case "join":
                a.Expect("join method", 1, 1);
                return string.Join(s, Values.Iterate(a.Positional[0]).Select(Values.ToStr));
            case "format":
                return Format(s, a);
        }
        throw new TemplateException($"Unknown method: {method}");
    }

    /// <summary>Strips <paramref name="chars"/> (default: ASCII space, tab, newline, carriage return only, as minja does).</summary>
    public static string Strip(string s, string chars, bool left, bool right)
    {
        string set = chars.Length == 0 ? " \t\n\r" : chars;
        int start = 0, end = s.Length;
        if (left)
            while (start < end && set.Contains(s[start]))
                start++;
        if (right)
            while (end > start && set.Contains(s[end - 1]))
                end--;
        return s[start..end];
    }

    public static JinjaList Split(string s, string? separator, long max)
    {
        var result = new JinjaList();
        if (separator is null)
        {
            foreach (string part in s.Split([' ', '\t', '\n', '\r', '\v', '\f'], StringSplitOptions.RemoveEmptyEntries))
                result.Add(part);
            return result;
        }
        if (separator.Length == 0)
            throw new TemplateException("empty separator");
        int start = 0;
        while (max != 0)
        {
            int at = s.IndexOf(separator, start, StringComparison.Ordinal);
            if (at < 0)
                break;
            result.Add(s[start..at]);
            start = at + separator.Length;
            max--;
        }
        result.Add(s[start..]);
        return result;
    }

    public static string Replace(string s, string before, string after, long count)
    {
        if (before.Length == 0)
            return s;
        var sb = new StringBuilder();
        int start = 0;
        while (count-- > 0)
        {
            int at = s.IndexOf(before, start, StringComparison.Ordinal);
            if (at < 0)
                break;
            sb.Append(s, start, at - start).Append(after);
            start = at + before.Length;
        }
        return sb.Append(s, start, s.Length - start).ToString();
    }

    private static long CountOccurrences(string s, string sub)
    {
        if (sub.Length == 0)
            return s.Length + 1;
        long n = 0;
        for (int at = s.IndexOf(sub, StringComparison.Ordinal); at >= 0; at = s.IndexOf(sub, at + sub.Length, StringComparison.Ordinal))
            n++;
        return n;
    }

    // ASCII-only case changes, as C's toupper/tolower in the C locale.
    public static string AsciiUpper(string s) => string.Create(s.Length, s, (span, src) =>
    {
        for (int i = 0; i < src.Length; i++)
            span[i] = src[i] is >= 'a' and <= 'z' ? (char)(src[i] - 32) : src[i];
    });

    public static string AsciiLower(string s) => string.Create(s.Length, s, (span, src) =>
    {
        for (int i = 0; i < src.Length; i++)
            span[i] = src[i] is >= 'A' and <= 'Z' ? (char)(src[i] + 32) : src[i];
    });

    public static string Capitalize(string s) => s.Length == 0 ? s : AsciiUpper(s[..1]) + s[1..];

    public static string Title(string s)
    {
        var chars = s.ToCharArray();
        for (int i = 0; i < chars.Length; i++)
        {
            bool wordStart = i == 0 || chars[i - 1] is ' ' or '\t' or '\n' or '\r' or '\v' or '\f';
            string c = chars[i].ToString();
            chars[i] = (wordStart ? AsciiUpper(c) : AsciiLower(c))[0];
        }
        return new string(chars);
    }

    // Python's str.format with {} / {0} / {name} fields (no format specs).
    private static string Format(string s, Arguments a)
    {
        var sb = new StringBuilder();
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
            sb.Append(Values.ToStr(value));
            i = close;
        }
        return sb.ToString();
    }
}

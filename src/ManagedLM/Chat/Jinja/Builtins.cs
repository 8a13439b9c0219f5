using System.Globalization;
using System.Text;

namespace ManagedLM.Chat.Jinja;

/// <summary>
/// The global functions of a render. Filters are functions too: <c>x | f(a)</c> calls <c>f(x, a)</c> (as in minja), and
/// the tests select/reject/selectattr/rejectattr name are looked up here as well.
/// </summary>
internal static class Builtins
{
    public static JinjaDict Create()
    {
        var g = new JinjaDict();
        void Add(string name, Func<RenderContext, Arguments, object?> f) => g.Set(name, new JinjaFunction(name, f));

        Add("raise_exception", (_, a) => throw new TemplateException(Values.ToStr(a.Bind("raise_exception", "message").Get("message")), raisedByTemplate: true));
        Add("tojson", ToJson);
        Add("items", (_, a) => a.Bind("items", "object").Get("object") is JinjaDict d ? Items(d) : throw new TemplateException("Can only get item pairs from a mapping"));
        Add("first", (_, a) => a.Bind("first", "items").Get("items") switch
        {
            JinjaList l => l.Count > 0 ? l[0] : null,
            string s => s.Length > 0 ? s.EnumerateRunes().First().ToString() : null,
            var v => throw new TemplateException($"first expects a list, got {Values.Dump(v)}"),
        });
        Add("last", (_, a) => a.Bind("last", "items").Get("items") switch
        {
            JinjaList l => l.Count > 0 ? l[^1] : null,
            string s => s.Length > 0 ? s.EnumerateRunes().Last().ToString() : null,
            _ => throw new TemplateException("object is not a list"),
        });
        Add("trim", (_, a) => a.Bind("trim", "text", "chars").Get("text") is { } t
            ? Methods.Strip(Values.ToStr(t), a.Bind("trim", "text", "chars").Get("chars") is { } c ? Values.ToStr(c) : "", true, true) : null);
        Add("lower", (_, a) => a.Bind("lower", "text").Get("text") is { } t ? Methods.AsciiLower(Values.ToStr(t)) : null);
        Add("upper", (_, a) => a.Bind("upper", "text").Get("text") is { } t ? Methods.AsciiUpper(Values.ToStr(t)) : null);
        Add("capitalize", (_, a) => a.Bind("capitalize", "text").Get("text") is { } t ? Methods.Capitalize(Methods.AsciiLower(Values.ToStr(t))) : null);
        Add("title", (_, a) => a.Bind("title", "text").Get("text") is { } t ? Methods.Title(Values.ToStr(t)) : null);
        Add("default", Default);
        Add("d", Default);
        Add("escape", (_, a) => HtmlEscape(Values.ToStr(a.Bind("escape", "text").Get("text"))));
        Add("e", (_, a) => HtmlEscape(Values.ToStr(a.Bind("e", "text").Get("text"))));
        Add("count", (_, a) => Values.Size(a.Bind("count", "items").Get("items")));
        Add("length", (_, a) => Values.Size(a.Bind("length", "items").Get("items")));
        Add("dictsort", DictSort);
        Add("join", Join);
        Add("namespace", (_, a) =>
        {
            a.Expect("namespace", 0, 0, 0, int.MaxValue);
            var ns = new JinjaDict();
            foreach (var (k, v) in a.Named)
                ns.Set(k, v);
            return ns;
        });
        Add("safe", (_, a) => Values.ToStr(a.Bind("safe", "value").Get("value")));
        Add("string", (_, a) => Values.ToStr(a.Bind("string", "value").Get("value")));
        Add("int", (_, a) => ToInt(a.Bind("int", "value", "default").Get("value")));
        Add("float", (_, a) => ToFloat(a.Bind("float", "value", "default").Get("value")));
        Add("abs", (_, a) => a.Bind("abs", "value").Get("value") switch { long l => (object)Math.Abs(l), var v => Math.Abs(Values.ToDouble(v)) });
        Add("round", Round);
        Add("list", (_, a) => a.Bind("list", "items").Get("items") switch
        {
            JinjaList l => l,
            JinjaDict d => new JinjaList(d.Keys),
            string s => new JinjaList(s.EnumerateRunes().Select(r => (object?)r.ToString())),
            _ => throw new TemplateException("object is not iterable"),
        });
        Add("in", (_, a) => { var b = a.Bind("in", "item", "items"); return Values.In(b.Get("item"), b.Get("items")); });
        Add("unique", Unique);
        Add("reverse", (_, a) => a.Bind("reverse", "items").Get("items") switch
        {
            JinjaList l => new JinjaList(Enumerable.Reverse(l)),
            string s => new string(s.Reverse().ToArray()),
            _ => throw new TemplateException("object is not iterable"),
        });
        Add("sort", Sort);
        Add("sum", (_, a) =>
        {
            var b = a.Bind("sum", "items", "attribute", "start");
            object? total = b.Get("start") ?? 0L;
            foreach (var item in Values.Iterate(b.Get("items")))
            {
                var v = b.Get("attribute") is { } attr ? SubscriptExpr.Get(item, attr) : item;
                total = total is long x && v is long y ? (object)(x + y) : Values.ToDouble(total) + Values.ToDouble(v);
            }
            return total;
        });
        Add("min", (_, a) => Extreme(a, "min", less: true));
        Add("max", (_, a) => Extreme(a, "max", less: false));
        Add("select", (c, a) => Select(c, a, keep: true));
        Add("reject", (c, a) => Select(c, a, keep: false));
        Add("selectattr", (c, a) => SelectAttr(c, a, keep: true));
        Add("rejectattr", (c, a) => SelectAttr(c, a, keep: false));
        Add("map", Map);
        Add("indent", Indent);
        Add("replace", (_, a) =>
        {
            var b = a.Bind("replace", "text", "old", "new", "count");
            return Methods.Replace(Values.ToStr(b.Get("text")), Values.ToStr(b.Get("old")), Values.ToStr(b.Get("new")),
                b.Get("count") is { } n ? Values.ToLong(n) : long.MaxValue);
        });
        Add("wordcount", (_, a) => (long)Methods.Split(Values.ToStr(a.Bind("wordcount", "text").Get("text")), null, -1).Count);
        Add("batch", Batch);
        Add("range", Range);
        Add("joiner", (_, a) =>
        {
            string sep = a.Bind("joiner", "sep").Get("sep") is { } s ? Values.ToStr(s) : ", ";
            bool first = true;
            return new JinjaFunction("joiner", (_, _) =>
            {
                if (!first)
                    return sep;
                first = false;
                return "";
            });
        });

        Add("equalto", (_, a) => Values.Equal(a.Positional.ElementAtOrDefault(0), a.Positional.ElementAtOrDefault(1)));
        Add("==", (_, a) => Values.Equal(a.Positional.ElementAtOrDefault(0), a.Positional.ElementAtOrDefault(1)));
        return g;
    }

    public static JinjaList Items(JinjaDict d) => new(d.Keys.Select(k => (object?)new JinjaList([k, d.Get(k)])));

    private static object? ToJson(RenderContext context, Arguments a)
    {
        var b = a.Bind("tojson", "value", "indent", "ensure_ascii", "sort_keys", "separators");
        object? value = b.Get("value");
        if (b.Get("sort_keys") is { } sort && Values.ToBool(sort))
            value = SortKeys(value);
        string json = Values.Dump(value, b.Get("indent") is { } i ? (int)Math.Clamp(Values.ToLong(i), -1, 4096) : -1, json: true);
        if (b.Get("ensure_ascii") is { } ascii && Values.ToBool(ascii))
            json = EscapeNonAscii(json);
        context.Budget.CheckLength(json.Length);
        return json;
    }

    private static object? SortKeys(object? v, int level = 0)
    {
        Values.CheckValueDepth(level);
        return v switch
        {
            JinjaDict d => SortedDict(d, level),
            JinjaList l => new JinjaList(l.Select(item => SortKeys(item, level + 1))),
            _ => v,
        };
    }

    private static JinjaDict SortedDict(JinjaDict d, int level)
    {
        var sorted = new JinjaDict();
        foreach (object k in d.Keys.OrderBy(k => Values.ToStr(k), StringComparer.Ordinal))
            sorted.Set(k, SortKeys(d.Get(k), level + 1));
        return sorted;
    }

    private static string EscapeNonAscii(string json)
    {
        var sb = new StringBuilder(json.Length);
        foreach (char c in json)
        {
            if (c < 0x80)
                sb.Append(c);
            else
                sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }

    private static object? Default(RenderContext _, Arguments a)
    {
        a.Expect("default", 1, 3, 0, 1);
        object? value = a.Positional[0];
        object? fallback = a.Positional.ElementAtOrDefault(1) ?? "";
        bool boolean = a.Positional.Count == 3 ? Values.ToBool(a.Positional[2]) : Values.ToBool(a.GetNamed("boolean"));
        return boolean ? (Values.ToBool(value) ? value : fallback) : value ?? fallback;
    }

    private static string HtmlEscape(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (char c in s)
        {
            sb.Append(c switch
            {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&#34;",
                '\'' => "&#39;",
                _ => c.ToString(),
            });
        }
        return sb.ToString();
    }

    private static object? DictSort(RenderContext _, Arguments a)
    {
        var b = a.Bind("dictsort", "value", "case_sensitive", "by", "reverse");
        if (b.Get("value") is not JinjaDict d)
            throw new TemplateException("dictsort expects a mapping");
        bool byValue = b.Get("by") is string by && by == "value";
        bool caseSensitive = Values.ToBool(b.Get("case_sensitive"));
        string Key(object? v) => caseSensitive ? Values.ToStr(v) : Methods.AsciiLower(Values.ToStr(v));
        var keys = d.Keys.OrderBy(k => Key(byValue ? d.Get(k) : k), StringComparer.Ordinal).ToList();
        if (Values.ToBool(b.Get("reverse")))
            keys.Reverse();
        return new JinjaList(keys.Select(k => (object?)new JinjaList([k, d.Get(k)])));
    }

    private static object? Join(RenderContext context, Arguments a)
    {
        var b = a.Bind("join", "items", "d", "attribute");
        string sep = b.Get("d") is { } d ? Values.ToStr(d) : "";
        object? items = b.Get("items");
        if (items is not (JinjaList or string or JinjaDict))
            throw new TemplateException($"object is not iterable: {Values.Dump(items)}");
        object? attribute = b.Get("attribute");
        string joined = string.Join(sep, Values.Iterate(items).Select(i => Values.ToStr(attribute is null ? i : SubscriptExpr.Get(i, attribute))));
        context.Budget.CheckLength(joined.Length);
        return joined;
    }

    private static object? ToInt(object? v) => v switch
    {
        null => 0L,
        bool b => b ? 1L : 0L,
        long l => l,
        double d => (long)d,
        string s => long.TryParse(s.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l) ? l
            : double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double d) ? (long)d : 0L,
        _ => 0L,
    };

    private static object? ToFloat(object? v) => v switch
    {
        null => 0.0,
        bool b => b ? 1.0 : 0.0,
        long l => (double)l,
        double d => d,
        string s => double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double d) ? d : 0.0,
        _ => 0.0,
    };

    private static object? Round(RenderContext _, Arguments a)
    {
        var b = a.Bind("round", "value", "precision", "method");
        double v = Values.ToDouble(b.Get("value"));
        int precision = b.Get("precision") is { } p ? (int)Values.ToLong(p) : 0;
        string method = b.Get("method") is { } m ? Values.ToStr(m) : "common";
        double scale = Math.Pow(10, precision);
        return method switch
        {
            "ceil" => Math.Ceiling(v * scale) / scale,
            "floor" => Math.Floor(v * scale) / scale,
            _ => Math.Round(v * scale, MidpointRounding.AwayFromZero) / scale,
        };
    }

    private static object? Unique(RenderContext _, Arguments a)
    {
        if (a.Bind("unique", "items", "case_sensitive", "attribute").Get("items") is not JinjaList items)
            throw new TemplateException("object is not iterable");
        var result = new JinjaList();
        foreach (var item in items)
        {
            if (item is JinjaList or JinjaDict or JinjaFunction)
                throw new TemplateException($"Unsupported type for hashing: {Values.Dump(item)}");
            if (!result.Exists(r => Values.PrimitiveEquals(r, item)))
                result.Add(item);
        }
        return result;
    }

    private static object? Sort(RenderContext _, Arguments a)
    {
        var b = a.Bind("sort", "items", "reverse", "case_sensitive", "attribute");
        var items = new JinjaList(Values.Iterate(b.Get("items")));
        object? attribute = b.Get("attribute");
        bool caseSensitive = Values.ToBool(b.Get("case_sensitive"));
        object? Key(object? v)
        {
            var k = attribute is null ? v : SubscriptExpr.Get(v, attribute);
            return !caseSensitive && k is string s ? Methods.AsciiLower(s) : k;
        }
        var sorted = items.OrderBy(Key, Comparer<object?>.Create((x, y) => Values.Less(x, y) ? -1 : Values.Greater(x, y) ? 1 : 0)).ToList();
        if (Values.ToBool(b.Get("reverse")))
            sorted.Reverse();
        return new JinjaList(sorted);
    }

    private static object? Extreme(Arguments a, string name, bool less)
    {
        var b = a.Bind(name, "items", "case_sensitive", "attribute");
        object? best = null;
        bool any = false;
        foreach (var item in Values.Iterate(b.Get("items")))
        {
            if (!any || (less ? Values.Less(item, best) : Values.Greater(item, best)))
                best = item;
            any = true;
        }
        return best;
    }

    // select/reject: keep the items for which the named test (with extra arguments) is true (select) or false (reject).
    private static object? Select(RenderContext context, Arguments a, bool keep)
    {
        a.Expect(keep ? "select" : "reject", 1, int.MaxValue);
        object? items = a.Positional[0];
        if (items is null)
            return new JinjaList();
        if (items is not JinjaList list)
            throw new TemplateException($"object is not iterable: {Values.Dump(items)}");
        var test = a.Positional.Count >= 2 ? Lookup(context, a.Positional[1], "filter") : null;
        var result = new JinjaList();
        foreach (var item in list)
        {
            bool pass;
            if (test is null)
                pass = Values.ToBool(item);
            else
            {
                var args = new Arguments();
                args.Positional.Add(item);
                args.Positional.AddRange(a.Positional.Skip(2));
                pass = Values.ToBool(test.Invoke(context, args));
            }
            if (pass == keep)
                result.Add(item);
        }
        return result;
    }

    // selectattr/rejectattr: with a test, keep the items whose attribute passes (or fails) it; without one, the attributes themselves (minja).
    private static object? SelectAttr(RenderContext context, Arguments a, bool keep)
    {
        a.Expect(keep ? "selectattr" : "rejectattr", 2, int.MaxValue, 0, int.MaxValue);
        object? items = a.Positional[0];
        if (items is null)
            return new JinjaList();
        if (items is not JinjaList list)
            throw new TemplateException($"object is not iterable: {Values.Dump(items)}");
        object? attribute = a.Positional[1];
        var test = a.Positional.Count >= 3 ? Lookup(context, a.Positional[2], "test") : null;
        var result = new JinjaList();
        foreach (var item in list)
        {
            object? value = SubscriptExpr.Get(item, attribute);
            if (test is null)
            {
                if (Values.ToBool(value) == keep)
                    result.Add(item);
                continue;
            }
            var args = new Arguments();
            args.Positional.Add(value);
            args.Positional.AddRange(a.Positional.Skip(3));
            args.Named.AddRange(a.Named);
            if (Values.ToBool(test.Invoke(context, args)) == keep)
                result.Add(item);
        }
        return result;
    }

    // A test (defined, none, eq, ...) or, failing that, a function of the render (equalto, a filter, a macro) by name.
    private static JinjaFunction Lookup(RenderContext context, object? name, string what) =>
        name is string n && (TestFunctions.Get(n) ?? context.Get(n)) is JinjaFunction f ? f : throw new TemplateException($"Undefined {what}: {Values.Dump(name)}");

    // Tests by name for select/reject/selectattr/rejectattr: kept apart from the globals so that names such as
    // `none` or `string` stay undefined variables, as in minja.
    [ThreadSafeStatic("built by the static initializer and only read: stateless functions")]
    private static readonly JinjaDict TestFunctions = CreateTests();

    private static JinjaDict CreateTests()
    {
        var t = new JinjaDict();
        void Add(string name, Func<object?, object?, bool> test) =>
            t.Set(name, new JinjaFunction(name, (_, a) => test(a.Positional.ElementAtOrDefault(0), a.Positional.ElementAtOrDefault(1))));
        foreach (string name in Tests.Names)
            Add(name, (v, _) => Tests.Apply(name, v));
        Add("eq", Values.Equal);
        Add("ne", (a, b) => !Values.Equal(a, b));
        Add("!=", (a, b) => !Values.Equal(a, b));
        Add("lt", Values.Less);
        Add("gt", Values.Greater);
        Add("le", (a, b) => !Values.Greater(a, b));
        Add("ge", (a, b) => !Values.Less(a, b));
        Add("in", Values.In);
        Add("divisibleby", (a, b) => Values.ToLong(a) % Values.ToLong(b) == 0);
        return t;
    }

    private static object? Map(RenderContext context, Arguments a)
    {
        var result = new JinjaList();
        if (a.Positional.Count == 1 && (a.HasNamed("attribute") || a.HasNamed("default")))
        {
            object? items = a.Positional[0];
            object? attribute = a.GetNamed("attribute"), fallback = a.GetNamed("default");
            foreach (var item in items is null ? [] : Values.Iterate(items))
            {
                object? value = SubscriptExpr.Get(item, attribute);
                result.Add(value ?? fallback);
            }
            return result;
        }
        if (a.Named.Count == 0 && a.Positional.Count >= 2)
        {
            var f = Lookup(context, a.Positional[1], "filter");
            foreach (var item in Values.Iterate(a.Positional[0]))
            {
                var args = new Arguments();
                args.Positional.Add(item);
                args.Positional.AddRange(a.Positional.Skip(2));
                result.Add(f.Invoke(context, args));
            }
            return result;
        }
        throw new TemplateException("Invalid or unsupported arguments for map");
    }

    private static object? Indent(RenderContext context, Arguments a)
    {
        var b = a.Bind("indent", "text", "width", "first", "blank");
        string text = Values.ToStr(b.Get("text"));
        string indent = b.Get("width") switch { null => "    ", string s => s, var w => new string(' ', (int)Math.Clamp(Values.ToLong(w), 0, 4096)) };
        bool first = Values.ToBool(b.Get("first"));
        var sb = new StringBuilder();
        var lines = text.Split('\n');
        int count = text.EndsWith('\n') ? lines.Length - 1 : lines.Length;
        for (int i = 0; i < count; i++)
        {
            if (i > 0)
                sb.Append('\n');
            if (i > 0 || first)
                sb.Append(indent);
            sb.Append(lines[i]);
        }
        if (text.EndsWith('\n'))
            sb.Append('\n');
        context.Budget.CheckLength(sb.Length);
        return sb.ToString();
    }

    private static object? Batch(RenderContext _, Arguments a)
    {
        var b = a.Bind("batch", "items", "linecount", "fill_with");
        long size = Values.ToLong(b.Get("linecount"));
        if (size <= 0)
            throw new TemplateException("batch size must be positive");
        var result = new JinjaList();
        JinjaList? current = null;
        foreach (var item in Values.Iterate(b.Get("items")))
        {
            if (current is null || current.Count == size)
                result.Add(current = []);
            current.Add(item);
        }
        if (current is not null && b.ContainsKey("fill_with"))
            while (current.Count < size)
                current.Add(b.Get("fill_with"));
        return result;
    }

    private static object? Range(RenderContext context, Arguments a)
    {
        long[] ses = [0, 0, 1];
        bool[] set = new bool[3];
        if (a.Positional.Count == 1)
        {
            ses[1] = Values.ToLong(a.Positional[0]);
            set[1] = true;
        }
        else
        {
            if (a.Positional.Count > 3)
                throw new TemplateException("range expects at most 3 arguments");
            for (int i = 0; i < a.Positional.Count; i++)
            {
                ses[i] = Values.ToLong(a.Positional[i]);
                set[i] = true;
            }
        }
        foreach (var (name, value) in a.Named)
        {
            int i = name switch { "start" => 0, "end" => 1, "step" => 2, _ => throw new TemplateException($"Unknown argument {name} for function range") };
            if (set[i])
                throw new TemplateException($"Duplicate argument {name} for function range");
            ses[i] = Values.ToLong(value);
            set[i] = true;
        }
        if (!set[1])
            throw new TemplateException("Missing required argument 'end' for function range");
        long start = ses[0], end = ses[1], step = ses[2];
        if (step == 0)
            throw new TemplateException("range() step must not be zero");
        long count = step > 0 ? Math.Max(0, (end - start + step - 1) / step) : Math.Max(0, (start - end - step - 1) / -step);
        context.Budget.CheckLength(count);
        var result = new JinjaList();
        for (long i = start; step > 0 ? i < end : i > end; i += step)
            result.Add(i);
        return result;
    }
}

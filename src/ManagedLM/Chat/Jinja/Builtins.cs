using System.Globalization;

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

        Add("raise_exception", (c, a) => throw new TemplateException(Values.ToStr(a.Bind("raise_exception", "message").Get("message"), c.Budget), raisedByTemplate: true));
        Add("tojson", ToJson);
        Add("items", (c, a) => a.Bind("items", "object").Get("object") is JinjaDict d ? Items(d, c.Budget) : throw new TemplateException("Can only get item pairs from a mapping"));
        Add("first", (_, a) => a.Bind("first", "items").Get("items") switch
        {
            JinjaList l => l.Count > 0 ? l[0] : null,
            string s => s.Length > 0 ? s.EnumerateRunes().First().ToString() : null,
            var v => throw new TemplateException($"first expects a list, got {Values.Describe(v)}"),
        });
        Add("last", (_, a) => a.Bind("last", "items").Get("items") switch
        {
            JinjaList l => l.Count > 0 ? l[^1] : null,
            string s => s.Length > 0 ? s.EnumerateRunes().Last().ToString() : null,
            _ => throw new TemplateException("object is not a list"),
        });
        Add("trim", (c, a) => a.Bind("trim", "text", "chars").Get("text") is { } t
            ? Methods.Strip(Values.ToStr(t, c.Budget), a.Bind("trim", "text", "chars").Get("chars") is { } chars ? Values.ToStr(chars, c.Budget) : "", true, true) : null);
        Add("lower", (c, a) => a.Bind("lower", "text").Get("text") is { } t ? Methods.AsciiLower(Values.ToStr(t, c.Budget)) : null);
        Add("upper", (c, a) => a.Bind("upper", "text").Get("text") is { } t ? Methods.AsciiUpper(Values.ToStr(t, c.Budget)) : null);
        Add("capitalize", (c, a) => a.Bind("capitalize", "text").Get("text") is { } t ? Methods.Capitalize(Methods.AsciiLower(Values.ToStr(t, c.Budget))) : null);
        Add("title", (c, a) => a.Bind("title", "text").Get("text") is { } t ? Methods.Title(Values.ToStr(t, c.Budget)) : null);
        Add("default", Default);
        Add("d", Default);
        Add("escape", (c, a) => HtmlEscape(Values.ToStr(a.Bind("escape", "text").Get("text"), c.Budget), c.Budget));
        Add("e", (c, a) => HtmlEscape(Values.ToStr(a.Bind("e", "text").Get("text"), c.Budget), c.Budget));
        Add("count", (_, a) => Values.Size(a.Bind("count", "items").Get("items")));
        Add("length", (_, a) => Values.Size(a.Bind("length", "items").Get("items")));
        Add("dictsort", DictSort);
        Add("join", Join);
        Add("namespace", (c, a) =>
        {
            a.Expect("namespace", 0, 0, 0, int.MaxValue);
            c.Budget.Items(a.Named.Count);
            var ns = new JinjaDict();
            foreach (var (k, v) in a.Named)
                ns.Set(k, v);
            return ns;
        });
        Add("safe", (c, a) => Values.ToStr(a.Bind("safe", "value").Get("value"), c.Budget));
        Add("string", (c, a) => Values.ToStr(a.Bind("string", "value").Get("value"), c.Budget));
        Add("int", (_, a) => ToInt(a.Bind("int", "value", "default").Get("value")));
        Add("float", (_, a) => ToFloat(a.Bind("float", "value", "default").Get("value")));
        Add("abs", (_, a) => a.Bind("abs", "value").Get("value") switch { long l => (object)Math.Abs(l), var v => Math.Abs(Values.ToDouble(v)) });
        Add("round", Round);
        Add("list", (c, a) => a.Bind("list", "items").Get("items") switch
        {
            JinjaList l => l,
            var v and (JinjaDict or string) => new JinjaList(Values.Iterate(v, c.Budget)),
            _ => throw new TemplateException("object is not iterable"),
        });
        Add("in", (c, a) => { var b = a.Bind("in", "item", "items"); return Values.In(b.Get("item"), b.Get("items"), c.Budget); });
        Add("unique", Unique);
        Add("reverse", (c, a) => a.Bind("reverse", "items").Get("items") switch
        {
            JinjaList l => new JinjaList(Enumerable.Reverse(Copied(l, c.Budget))),
            string s => new string(s.Reverse().ToArray()),
            _ => throw new TemplateException("object is not iterable"),
        });
        Add("sort", Sort);
        Add("sum", (c, a) =>
        {
            var b = a.Bind("sum", "items", "attribute", "start");
            object? total = b.Get("start") ?? 0L;
            foreach (var item in Values.Iterate(b.Get("items"), c.Budget))
            {
                var v = b.Get("attribute") is { } attr ? SubscriptExpr.Get(item, attr, c.Budget) : item;
                total = total is long x && v is long y ? (object)(x + y) : Values.ToDouble(total) + Values.ToDouble(v);
            }
            return total;
        });
        Add("min", (c, a) => Extreme(c, a, "min", less: true));
        Add("max", (c, a) => Extreme(c, a, "max", less: false));
        Add("select", (c, a) => Select(c, a, keep: true));
        Add("reject", (c, a) => Select(c, a, keep: false));
        Add("selectattr", (c, a) => SelectAttr(c, a, keep: true));
        Add("rejectattr", (c, a) => SelectAttr(c, a, keep: false));
        Add("map", Map);
        Add("indent", Indent);
        Add("replace", (c, a) =>
        {
            var b = a.Bind("replace", "text", "old", "new", "count");
            return Methods.Replace(Values.ToStr(b.Get("text"), c.Budget), Values.ToStr(b.Get("old"), c.Budget), Values.ToStr(b.Get("new"), c.Budget),
                b.Get("count") is { } n ? Values.ToLong(n) : long.MaxValue, c.Budget);
        });
        Add("wordcount", (c, a) => (long)Methods.Split(Values.ToStr(a.Bind("wordcount", "text").Get("text"), c.Budget), null, -1, c.Budget).Count);
        Add("batch", Batch);
        Add("range", Range);
        Add("joiner", (c, a) =>
        {
            string sep = a.Bind("joiner", "sep").Get("sep") is { } s ? Values.ToStr(s, c.Budget) : ", ";
            bool first = true;
            return new JinjaFunction("joiner", (_, _) =>
            {
                if (!first)
                    return sep;
                first = false;
                return "";
            });
        });

        Add("equalto", (c, a) => Values.Equal(a.Positional.ElementAtOrDefault(0), a.Positional.ElementAtOrDefault(1), c.Budget));
        Add("==", (c, a) => Values.Equal(a.Positional.ElementAtOrDefault(0), a.Positional.ElementAtOrDefault(1), c.Budget));
        return g;
    }

    /// <summary>The [key, value] pairs of a mapping, in the order of <paramref name="keys"/> (default: its own), each charged as two items.</summary>
    public static JinjaList Items(JinjaDict d, RenderBudget budget, IReadOnlyList<object>? keys = null)
    {
        keys ??= d.Keys;
        budget.Items(2L * keys.Count);
        return new(keys.Select(k => (object?)new JinjaList([k, d.Get(k)])));
    }

    /// <summary><paramref name="items"/>, charged as copied.</summary>
    public static IReadOnlyCollection<T> Copied<T>(IReadOnlyCollection<T> items, RenderBudget budget)
    {
        budget.Items(items.Count);
        return items;
    }

    private static object? ToJson(RenderContext context, Arguments a)
    {
        var b = a.Bind("tojson", "value", "indent", "ensure_ascii", "sort_keys", "separators");
        object? value = b.Get("value");
        bool sortKeys = b.Get("sort_keys") is { } sort && Values.ToBool(sort);
        string json = Values.Dump(value, context.Budget, b.Get("indent") is { } i ? (int)Values.ToLong(i) : -1, json: true, sortKeys);
        if (b.Get("ensure_ascii") is { } ascii && Values.ToBool(ascii))
            json = EscapeNonAscii(json, context.Budget);
        return json;
    }

    private static string EscapeNonAscii(string json, RenderBudget budget)
    {
        var text = new TextBuilder(budget);
        foreach (char c in json)
        {
            if (c < 0x80)
                text.Append(c);
            else
                text.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
        }
        return text.ToString();
    }

    private static object? Default(RenderContext _, Arguments a)
    {
        a.Expect("default", 1, 3, 0, 1);
        object? value = a.Positional[0];
        object? fallback = a.Positional.ElementAtOrDefault(1) ?? "";
        bool boolean = a.Positional.Count == 3 ? Values.ToBool(a.Positional[2]) : Values.ToBool(a.GetNamed("boolean"));
        return boolean ? (Values.ToBool(value) ? value : fallback) : value ?? fallback;
    }

    private static string HtmlEscape(string s, RenderBudget budget)
    {
        var text = new TextBuilder(budget);
        foreach (char c in s)
        {
            switch (c)
            {
                case '&': text.Append("&amp;"); break;
                case '<': text.Append("&lt;"); break;
                case '>': text.Append("&gt;"); break;
                case '"': text.Append("&#34;"); break;
                case '\'': text.Append("&#39;"); break;
                default: text.Append(c); break;
            }
        }
        return text.ToString();
    }

    private static object? DictSort(RenderContext context, Arguments a)
    {
        var b = a.Bind("dictsort", "value", "case_sensitive", "by", "reverse");
        if (b.Get("value") is not JinjaDict d)
            throw new TemplateException("dictsort expects a mapping");
        var budget = context.Budget;
        bool byValue = b.Get("by") is string by && by == "value";
        bool caseSensitive = Values.ToBool(b.Get("case_sensitive"));
        string Key(object? v)
        {
            string s = Values.ToStr(v, budget);
            budget.Characters(s.Length);
            return caseSensitive ? s : Methods.AsciiLower(s);
        }
        var keys = Values.Sorted(d.Keys, k => Key(byValue ? d.Get(k) : k), (x, y) => Values.CompareStrings(x, y, budget));
        if (Values.ToBool(b.Get("reverse")))
            keys.Reverse();
        return Items(d, budget, keys);
    }

    private static object? Join(RenderContext context, Arguments a)
    {
        var b = a.Bind("join", "items", "d", "attribute");
        var budget = context.Budget;
        string sep = b.Get("d") is { } d ? Values.ToStr(d, budget) : "";
        object? items = b.Get("items");
        if (items is not (JinjaList or string or JinjaDict))
            throw new TemplateException($"object is not iterable: {Values.Describe(items)}");
        object? attribute = b.Get("attribute");
        return Join(sep, Values.Iterate(items, budget).Select(i => attribute is null ? i : SubscriptExpr.Get(i, attribute, budget)), budget);
    }

    /// <summary>The items as strings with <paramref name="separator"/> between them, held to the output limit while it grows.</summary>
    public static string Join(string separator, IEnumerable<object?> items, RenderBudget budget)
    {
        var text = new TextBuilder(budget);
        bool first = true;
        foreach (var item in items)
        {
            if (!first)
                text.Append(separator);
            first = false;
            text.Append(Values.ToStr(item, budget));
        }
        return text.ToString();
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

    private static object? Unique(RenderContext context, Arguments a)
    {
        if (a.Bind("unique", "items", "case_sensitive", "attribute").Get("items") is not JinjaList items)
            throw new TemplateException("object is not iterable");
        var result = new JinjaList();
        var seen = new HashSet<object?>(JinjaDict.KeyComparer.Instance);
        foreach (var item in items)
        {
            context.Budget.Items(1);
            if (item is JinjaList or JinjaDict or JinjaFunction)
                throw new TemplateException($"Unsupported type for hashing: {Values.Describe(item)}");
            context.Budget.Hash(item);
            if (seen.Add(item))
                result.Add(item);
        }
        return result;
    }

    private static object? Sort(RenderContext context, Arguments a)
    {
        var b = a.Bind("sort", "items", "reverse", "case_sensitive", "attribute");
        var budget = context.Budget;
        var items = new JinjaList(Values.Iterate(b.Get("items"), budget));
        object? attribute = b.Get("attribute");
        bool caseSensitive = Values.ToBool(b.Get("case_sensitive"));
        object? Key(object? v)
        {
            var k = attribute is null ? v : SubscriptExpr.Get(v, attribute, budget);
            if (caseSensitive || k is not string s)
                return k;
            budget.Characters(s.Length);
            return Methods.AsciiLower(s);
        }
        var sorted = Values.Sorted(items, Key, (x, y) => Values.Compare(x, y, budget));
        if (Values.ToBool(b.Get("reverse")))
            sorted.Reverse();
        return new JinjaList(sorted);
    }

    private static object? Extreme(RenderContext context, Arguments a, string name, bool less)
    {
        var b = a.Bind(name, "items", "case_sensitive", "attribute");
        object? best = null;
        bool any = false;
        foreach (var item in Values.Iterate(b.Get("items"), context.Budget))
        {
            if (!any || (less ? Values.Less(item, best, context.Budget) : Values.Greater(item, best, context.Budget)))
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
            throw new TemplateException($"object is not iterable: {Values.Describe(items)}");
        var test = a.Positional.Count >= 2 ? Lookup(context, a.Positional[1], "filter") : null;
        var result = new JinjaList();
        foreach (var item in list)
        {
            context.Budget.Items(1);
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
            throw new TemplateException($"object is not iterable: {Values.Describe(items)}");
        object? attribute = a.Positional[1];
        var test = a.Positional.Count >= 3 ? Lookup(context, a.Positional[2], "test") : null;
        var result = new JinjaList();
        foreach (var item in list)
        {
            context.Budget.Items(1);
            object? value = SubscriptExpr.Get(item, attribute, context.Budget);
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
        name is string n && (TestFunctions.Get(n) ?? context.Get(n)) is JinjaFunction f ? f : throw new TemplateException($"Undefined {what}: {Values.Describe(name)}");

    // Tests by name for select/reject/selectattr/rejectattr: kept apart from the globals so that names such as
    // `none` or `string` stay undefined variables, as in minja.
    [ThreadSafeStatic("built by the static initializer and only read: stateless functions")]
    private static readonly JinjaDict TestFunctions = CreateTests();

    private static JinjaDict CreateTests()
    {
        var t = new JinjaDict();
        void Add(string name, Func<object?, object?, RenderBudget, bool> test) =>
            t.Set(name, new JinjaFunction(name, (c, a) => test(a.Positional.ElementAtOrDefault(0), a.Positional.ElementAtOrDefault(1), c.Budget)));
        foreach (string name in Tests.Names)
            Add(name, (v, _, _) => Tests.Apply(name, v));
        Add("eq", Values.Equal);
        Add("ne", (a, b, budget) => !Values.Equal(a, b, budget));
        Add("!=", (a, b, budget) => !Values.Equal(a, b, budget));
        Add("lt", Values.Less);
        Add("gt", Values.Greater);
        Add("le", (a, b, budget) => !Values.Greater(a, b, budget));
        Add("ge", (a, b, budget) => !Values.Less(a, b, budget));
        Add("in", Values.In);
        Add("divisibleby", (a, b, _) => Values.ToLong(a) % Values.ToLong(b) == 0);
        return t;
    }

    private static object? Map(RenderContext context, Arguments a)
    {
        var result = new JinjaList();
        if (a.Positional.Count == 1 && (a.HasNamed("attribute") || a.HasNamed("default")))
        {
            object? items = a.Positional[0];
            object? attribute = a.GetNamed("attribute"), fallback = a.GetNamed("default");
            foreach (var item in items is null ? [] : Values.Iterate(items, context.Budget))
            {
                object? value = SubscriptExpr.Get(item, attribute, context.Budget);
                result.Add(value ?? fallback);
            }
            return result;
        }
        if (a.Named.Count == 0 && a.Positional.Count >= 2)
        {
            var f = Lookup(context, a.Positional[1], "filter");
            foreach (var item in Values.Iterate(a.Positional[0], context.Budget))
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
        string text = Values.ToStr(b.Get("text"), context.Budget);
        string indent = b.Get("width") switch { null => "    ", string s => s, var w => new string(' ', (int)Math.Clamp(Values.ToLong(w), 0, 4096)) };
        bool first = Values.ToBool(b.Get("first"));
        // Every line indented but the first (unless `first`); the empty piece after a final newline is no line.
        var result = new TextBuilder(context.Budget);
        for (int line = 0, start = 0; ; line++)
        {
            int newline = text.IndexOf('\n', start);
            if (newline < 0 && start == text.Length && line > 0)
                break;
            if (line > 0)
                result.Append('\n');
            if (line > 0 || first)
                result.Append(indent);
            result.Append(text.AsSpan(start, (newline < 0 ? text.Length : newline) - start));
            if (newline < 0)
                break;
            start = newline + 1;
        }
        if (text.EndsWith('\n'))
            result.Append('\n');
        return result.ToString();
    }

    private static object? Batch(RenderContext context, Arguments a)
    {
        var b = a.Bind("batch", "items", "linecount", "fill_with");
        long size = Values.ToLong(b.Get("linecount"));
        if (size <= 0)
            throw new TemplateException("batch size must be positive");
        var result = new JinjaList();
        JinjaList? current = null;
        foreach (var item in Values.Iterate(b.Get("items"), context.Budget))
        {
            if (current is null || current.Count == size)
                result.Add(current = []);
            current.Add(item);
        }
        if (current is not null && b.ContainsKey("fill_with"))
        {
            context.Budget.Items(size - current.Count);
            while (current.Count < size)
                current.Add(b.Get("fill_with"));
        }
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
        long count = Values.StepCount(start, end, step);
        context.Budget.Items(count);
        var result = new JinjaList();
        for (long i = 0; i < count; i++)
            result.Add(start + i * step);
        return result;
    }
}

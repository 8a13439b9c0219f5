using System.Globalization;
using System.Text;

namespace ManagedLM.Chat.Jinja;

/// <summary>
/// A template list. Template values are plain objects: null (none, and undefined: the same), bool, long, double,
/// string, <see cref="JinjaList"/>, <see cref="JinjaDict"/> and <see cref="JinjaFunction"/>.
/// </summary>
public sealed class JinjaList : List<object?>
{
    public JinjaList() { }
    public JinjaList(IEnumerable<object?> items) : base(items) { }
}

/// <summary>A template mapping: keys keep their insertion order (tojson and items() follow it).</summary>
public sealed class JinjaDict
{
    private readonly List<object> _keys = [];
    private readonly Dictionary<object, object?> _values = new(KeyComparer.Instance);

    public int Count => _keys.Count;
    public IReadOnlyList<object> Keys => _keys;

    public bool ContainsKey(object key) => _values.ContainsKey(key);

    public object? Get(object key) => _values.TryGetValue(key, out var v) ? v : null;

    public bool TryGet(object key, out object? value) => _values.TryGetValue(key, out value);

    public void Set(object key, object? value)
    {
        if (!_values.ContainsKey(key))
            _keys.Add(key);
        _values[key] = value;
    }

    public bool Remove(object key)
    {
        if (!_values.Remove(key))
            return false;
        _keys.RemoveAt(_keys.FindIndex(k => KeyComparer.Instance.Equals(k, key)));
        return true;
    }

    // Keys compare as minja's JSON primitives: 1 and 1.0 are the same key, "1" is another.
    internal sealed class KeyComparer : IEqualityComparer<object?>
    {
        public static readonly KeyComparer Instance = new();
        public new bool Equals(object? a, object? b) => Values.PrimitiveEquals(a, b);
        public int GetHashCode(object? o) => o switch
        {
            null => 0,
            long l => ((double)l).GetHashCode(),
            double d => d.GetHashCode(),
            _ => o.GetHashCode(),
        };
    }
}

/// <summary>A callable template value: a builtin, a macro, loop.cycle, ...</summary>
public sealed class JinjaFunction(string name, Func<RenderContext, Arguments, object?> call)
{
    public string Name { get; } = name;
    internal object? Invoke(RenderContext context, Arguments args)
    {
        context.Budget.ChargeCall(args);
        return context.Budget.ChargeResult(call(context, args));
    }
    public override string ToString() => $"<function {Name}>";
}

/// <summary>The arguments of a call: positional, then named in the order given.</summary>
public sealed class Arguments
{
    public List<object?> Positional { get; } = [];
    public List<KeyValuePair<string, object?>> Named { get; } = [];

    public bool HasNamed(string name) => Named.Exists(p => p.Key == name);

    public object? GetNamed(string name)
    {
        foreach (var (k, v) in Named)
        {
            if (k == name)
                return v;
        }
        return null;
    }

    /// <summary>Throws unless the counts fit [minPositional, maxPositional] and [minNamed, maxNamed].</summary>
    public void Expect(string what, int minPositional, int maxPositional, int minNamed = 0, int maxNamed = 0)
    {
        if (Positional.Count < minPositional || Positional.Count > maxPositional || Named.Count < minNamed || Named.Count > maxNamed)
            throw new TemplateException($"{what} must have between {minPositional} and {maxPositional} positional arguments and between {minNamed} and {maxNamed} keyword arguments");
    }

    /// <summary>Characters of the string arguments, all together.</summary>
    internal long StringLength()
    {
        long length = 0;
        foreach (var v in Positional)
            length += v is string s ? s.Length : 0;
        foreach (var (_, v) in Named)
            length += v is string s ? s.Length : 0;
        return length;
    }

    /// <summary>Binds the arguments to parameter names (positional first, then by name), as minja's simple functions do.</summary>
    public JinjaDict Bind(string function, params string[] parameters)
    {
        var bound = new JinjaDict();
        if (Positional.Count > parameters.Length)
            throw new TemplateException($"Too many positional params for {function}");
        for (int i = 0; i < Positional.Count; i++)
            bound.Set(parameters[i], Positional[i]);
        foreach (var (name, value) in Named)
        {
            if (Array.IndexOf(parameters, name) < 0)
                throw new TemplateException($"Unknown argument {name} for function {function}");
            bound.Set(name, value);
        }
        return bound;
    }
}

/// <summary>Operations on template values, with minja's semantics (the engine llama.cpp renders chat templates with).</summary>
public static class Values
{
    public static bool IsString(object? v) => v is string;
    public static bool IsNumber(object? v) => v is long or double;

    /// <summary>Truthiness: none, false, 0, "" and [] are false; a mapping is always true.</summary>
    public static bool ToBool(object? v) => v switch
    {
        null => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        JinjaList l => l.Count > 0,
        _ => true,
    };

    public static double ToDouble(object? v) => v switch
    {
        long l => l,
        double d => d,
        bool b => b ? 1 : 0,
        _ => throw new TemplateException($"Expected a number, got {Describe(v)}"),
    };

    public static long ToLong(object? v) => v switch
    {
        long l => l,
        double d => (long)d,
        bool b => b ? 1 : 0,
        _ => throw new TemplateException($"Expected an integer, got {Describe(v)}"),
    };

    /// <summary>minja's <c>to_str</c>: strings as they are, integers in decimal, floats as C's %f, booleans True/False, none None, the rest as their repr.</summary>
    public static string ToStr(object? v) => ToStr(v, null);

    internal static string ToStr(object? v, RenderBudget? budget) => v switch
    {
        string s => s,
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => FormatFixed(d),
        bool b => b ? "True" : "False",
        null => "None",
        _ => Dump(v, budget),
    };

    /// <summary>What <c>{{ value }}</c> prints: nothing for none, True/False, strings raw, anything else its repr.</summary>
    public static string Print(object? v) => Print(v, null);

    internal static string Print(object? v, RenderBudget? budget) => v switch
    {
        null => "",
        string s => s,
        bool b => b ? "True" : "False",
        _ => Dump(v, budget),
    };

    /// <summary>Length of a string (UTF-8 bytes, as minja counts), list or mapping.</summary>
    public static long Size(object? v) => v switch
    {
        string s => Encoding.UTF8.GetByteCount(s),
        JinjaList l => l.Count,
        JinjaDict d => d.Count,
        _ => throw new TemplateException($"Value is not an array or object: {Describe(v)}"),
    };

    public static bool IsIterable(object? v) => v is string or JinjaList or JinjaDict;

    /// <summary>Python-style repr (single-quoted strings, True/False), or JSON when <paramref name="json"/>; <paramref name="indent"/> &gt; 0 breaks lines.</summary>
    public static string Dump(object? v, int indent = -1, bool json = false) => Dump(v, null, indent, json);

    /// <summary>
    /// <see cref="Dump(object?, int, bool)"/> held to a render's output limit and charged to its work while it is built;
    /// with <paramref name="sortKeys"/>, every mapping's keys in order.
    /// </summary>
    internal static string Dump(object? v, RenderBudget? budget, int indent = -1, bool json = false, bool sortKeys = false)
    {
        var text = new TextBuilder(budget);
        Dump(text, v, indent, 0, json, sortKeys ? budget : null, sortKeys);
        return text.ToString();
    }

    /// <summary>The repr of a value for an error message: its first 200 characters, whatever its size.</summary>
    internal static string Describe(object? v, int indent = -1)
    {
        var text = new TextBuilder(null, cap: 200);
        Dump(text, v, indent, 0, json: false, null, sortKeys: false);
        return text.ToString();
    }

    private static void Dump(TextBuilder text, object? v, int indent, int level, bool json, RenderBudget? budget, bool sortKeys)
    {
        CheckValueDepth(level);
        text.Visit();
        void Indent(int lvl)
        {
            if (indent > 0)
                text.Append('\n').Append(' ', (int)Math.Min((long)lvl * indent, int.MaxValue));
        }
        void Separator()
        {
            text.Append(',');
            if (indent < 0)
                text.Append(' ');
            else
                Indent(level + 1);
        }

        switch (v)
        {
            case null:
                text.Append("null");
                break;
            case JinjaList list:
                text.Append('[');
                Indent(level + 1);
                for (int i = 0; i < list.Count && !text.Full; i++)
                {
                    if (i > 0)
                        Separator();
                    Dump(text, list[i], indent, level + 1, json, budget, sortKeys);
                }
                Indent(level);
                text.Append(']');
                break;
            case JinjaDict dict:
                text.Append('{');
                Indent(level + 1);
                var keys = sortKeys ? Sorted(dict.Keys, k => ToStr(k), (x, y) => CompareStrings(x, y, budget)) : dict.Keys;
                for (int i = 0; i < keys.Count && !text.Full; i++)
                {
                    if (i > 0)
                        Separator();
                    object key = keys[i];
                    char quote = json ? '"' : '\'';
                    if (key is string ks)
                        AppendQuoted(text, ks, quote);
                    else
                        text.Append(quote).Append(Dump(key, -1, true)).Append(quote);
                    text.Append(": ");
                    Dump(text, dict.Get(key), indent, level + 1, json, budget, sortKeys);
                }
                Indent(level);
                text.Append('}');
                break;
            case JinjaFunction:
                throw new TemplateException("Cannot dump callable to JSON");
            case bool b:
                text.Append(json ? (b ? "true" : "false") : (b ? "True" : "False"));
                break;
            case string s:
                AppendQuoted(text, s, json ? '"' : '\'');
                break;
            case long l:
                text.Append(l.ToString(CultureInfo.InvariantCulture));
                break;
            case double d:
                text.Append(FormatJsonNumber(d));
                break;
            default:
                throw new TemplateException($"Cannot print a value of type {v.GetType().Name}");
        }
    }

    /// <summary>A JSON string literal as nlohmann::json writes it: ", \ and control characters escaped, the rest (non-ASCII included) as is.</summary>
    public static string JsonString(string s)
    {
        var text = new TextBuilder(null);
        AppendQuoted(text, s, '"');
        return text.ToString();
    }

    /// <summary>
    /// Appends a JSON string literal; with a single quote wanted and no ' inside, the same literal in single quotes, where
    /// " needs no escape (minja's repr).
    /// </summary>
    private static void AppendQuoted(TextBuilder text, string s, char quote)
    {
        if (quote == '\'' && s.Contains('\''))
            quote = '"';
        text.Append(quote);
        int plain = 0; // start of the run of characters that need no escape
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c >= 0x20 && c != '\\' && c != quote)
                continue;
            text.Append(s.AsSpan(plain, i - plain));
            plain = i + 1;
            switch (c)
            {
                case '"': text.Append("\\\""); break;
                case '\\': text.Append("\\\\"); break;
                case '\b': text.Append("\\b"); break;
                case '\f': text.Append("\\f"); break;
                case '\n': text.Append("\\n"); break;
                case '\r': text.Append("\\r"); break;
                case '\t': text.Append("\\t"); break;
                default: text.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture)); break;
            }
        }
        text.Append(s.AsSpan(plain)).Append(quote);
    }

    /// <summary>A double as nlohmann::json writes it: the shortest round-trip form, with ".0" on integral values and a C-style exponent.</summary>
    public static string FormatJsonNumber(double d)
    {
        if (double.IsNaN(d) || double.IsInfinity(d))
            return "null";
        string r = d.ToString("R", CultureInfo.InvariantCulture);
        int e = r.IndexOf('E');
        if (e >= 0)
        {
            string mantissa = r[..e], exponent = r[(e + 1)..];
            char sign = exponent[0] == '-' ? '-' : '+';
            string digits = exponent.TrimStart('+', '-').PadLeft(2, '0');
            return mantissa + "e" + sign + digits;
        }
        return r.Contains('.') ? r : r + ".0";
    }

    /// <summary>C's %f: six decimals (std::to_string of a double).</summary>
    public static string FormatFixed(double d) =>
        double.IsNaN(d) ? "nan" : double.IsPositiveInfinity(d) ? "inf" : double.IsNegativeInfinity(d) ? "-inf" : d.ToString("F6", CultureInfo.InvariantCulture);

    /// <summary>Equality of primitives: numbers by value (1 == 1.0), strings ordinally, booleans; none equals none.</summary>
    public static bool PrimitiveEquals(object? a, object? b) => (a, b) switch
    {
        (null, null) => true,
        (null, _) or (_, null) => false,
        (long x, long y) => x == y,
        (long or double, long or double) => ToDouble(a) == ToDouble(b),
        (string x, string y) => string.Equals(x, y, StringComparison.Ordinal),
        (bool x, bool y) => x == y,
        _ => false,
    };

    /// <summary>minja's ==: lists and mappings element by element (where a falsy element never matches), primitives by value.</summary>
    public static bool Equal(object? a, object? b) => Equal(a, b, null, 0);

    /// <summary><see cref="Equal(object?, object?)"/> charging each pair of items it compares, and the characters of equal-length strings.</summary>
    internal static bool Equal(object? a, object? b, RenderBudget? budget) => Equal(a, b, budget, 0);

    private static bool Equal(object? a, object? b, RenderBudget? budget, int level)
    {
        CheckValueDepth(level);
        budget?.Items(1);
        if (a is JinjaFunction || b is JinjaFunction)
            return ReferenceEquals(a, b);
        if (a is JinjaList la)
        {
            if (b is not JinjaList lb || la.Count != lb.Count)
                return false;
            for (int i = 0; i < la.Count; i++)
            {
                if (!ToBool(la[i]) || !ToBool(lb[i]) || !Equal(la[i], lb[i], budget, level + 1))
                    return false;
            }
            return true;
        }
        if (a is JinjaDict da)
        {
            if (b is not JinjaDict db || da.Count != db.Count)
                return false;
            foreach (object key in da.Keys)
            {
                var value = da.Get(key);
                if (!ToBool(value) || !db.ContainsKey(key) || !Equal(value, db.Get(key), budget, level + 1))
                    return false;
            }
            return true;
        }
        if (b is JinjaList or JinjaDict)
            return false;
        if (a is string sa && b is string sb && sa.Length == sb.Length)
            budget?.Characters(sa.Length);
        return PrimitiveEquals(a, b);
    }

    /// <summary>Throws when a recursion through nested values (or a list that holds itself) goes deeper than <see cref="JinjaTemplate.MaxValueDepth"/> or the stack allows.</summary>
    internal static void CheckValueDepth(int level)
    {
        if (level > JinjaTemplate.MaxValueDepth)
            throw new TemplateException(Nesting.TooDeep("Values", JinjaTemplate.MaxValueDepth));
        Nesting.EnsureStack();
    }

    /// <summary>a &lt; b for two numbers or two strings (ordinal on UTF-8 bytes, as C++ compares); anything else throws.</summary>
    public static bool Less(object? a, object? b) => Compare(a, b, null) < 0;

    public static bool Greater(object? a, object? b) => Compare(a, b, null, ">") > 0;

    internal static bool Less(object? a, object? b, RenderBudget? budget) => Compare(a, b, budget) < 0;

    internal static bool Greater(object? a, object? b, RenderBudget? budget) => Compare(a, b, budget, ">") > 0;

    /// <summary>
    /// The order of two numbers (0 when either is NaN) or two strings, charged as one item and the characters it may scan;
    /// anything else throws, naming <paramref name="op"/>.
    /// </summary>
    internal static int Compare(object? a, object? b, RenderBudget? budget, string op = "<")
    {
        if (a is null)
            throw new TemplateException("Undefined value or reference");
        if (a is string sa && b is string sb)
            return CompareStrings(sa, sb, budget);
        budget?.Items(1);
        if (IsNumber(a) && IsNumber(b))
        {
            double x = ToDouble(a), y = ToDouble(b);
            return x < y ? -1 : x > y ? 1 : 0;
        }
        throw new TemplateException($"Cannot compare values: {Describe(a)} {op} {Describe(b)}");
    }

    /// <summary>How many of start, start + step, ... lie before <paramref name="end"/> (after it, for a negative step); no overflow on any long.</summary>
    internal static long StepCount(long start, long end, long step)
    {
        Int128 span = step > 0 ? (Int128)end - start : (Int128)start - end, stride = Int128.Abs(step);
        return span <= 0 ? 0 : (long)Int128.Min((span + stride - 1) / stride, long.MaxValue);
    }

    /// <summary>Ordinal order of two strings, charged as one item and the characters it may scan.</summary>
    internal static int CompareStrings(string a, string b, RenderBudget? budget)
    {
        budget?.Items(1);
        budget?.Characters(Math.Min(a.Length, b.Length));
        return string.CompareOrdinal(a, b);
    }

    /// <summary>
    /// The items in the order of their keys (stable), compared by <paramref name="compare"/>; a <see cref="TemplateException"/>
    /// it throws comes out as it is (sorting wraps it in an <see cref="InvalidOperationException"/>).
    /// </summary>
    internal static List<T> Sorted<T, TKey>(IEnumerable<T> items, Func<T, TKey> key, Comparison<TKey> compare)
    {
        try
        {
            return items.OrderBy(key, Comparer<TKey>.Create(compare)).ToList();
        }
        catch (InvalidOperationException e) when (e.InnerException is TemplateException inner)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(inner);
            throw;
        }
    }

    /// <summary>x in container: a list holds it (truthy items only), a mapping has the key, or a substring.</summary>
    public static bool In(object? value, object? container) => In(value, container, null);

    /// <summary><see cref="In(object?, object?)"/> charging the comparisons it makes and the characters it scans or hashes.</summary>
    internal static bool In(object? value, object? container, RenderBudget? budget)
    {
        switch (container)
        {
            case JinjaList list:
                return list.Exists(item => ToBool(item) && Equal(item, value, budget));
            case JinjaDict dict:
                if (value is null)
                    return false;
                if (value is JinjaList or JinjaDict or JinjaFunction)
                    throw new TemplateException($"Unhashable type: {Describe(value)}");
                budget?.Hash(value);
                return dict.ContainsKey(value);
            case string s when value is string v:
                budget?.Characters((long)s.Length + v.Length);
                return Methods.IndexOf(s, v) >= 0;
            default:
                return false;
        }
    }

    /// <summary>The items a for loop visits: list items, mapping keys, or the characters of a string.</summary>
    public static IEnumerable<object?> Iterate(object? v) => v switch
    {
        null => throw new TemplateException("Undefined value or reference"),
        JinjaList list => list,
        JinjaDict dict => dict.Keys,
        string s => s.EnumerateRunes().Select(r => (object?)r.ToString()),
        _ => throw new TemplateException($"Value is not iterable: {Describe(v)}"),
    };

    /// <summary><see cref="Iterate(object?)"/> charging each item as it is visited (fails at once on a value that is not iterable).</summary>
    internal static IEnumerable<object?> Iterate(object? v, RenderBudget budget)
    {
        var items = Iterate(v);
        return Charged();

        IEnumerable<object?> Charged()
        {
            foreach (var item in items)
            {
                budget.Items(1);
                yield return item;
            }
        }
    }

    /// <summary>A JSON document (System.Text.Json) as template values, keys in document order.</summary>
    public static object? FromJson(System.Text.Json.Nodes.JsonNode? node) => node switch
    {
        null => null,
        System.Text.Json.Nodes.JsonObject o => FromJsonObject(o),
        System.Text.Json.Nodes.JsonArray a => new JinjaList(a.Select(FromJson)),
        System.Text.Json.Nodes.JsonValue v => FromJsonValue(v),
        _ => throw new ArgumentException("Unsupported JSON node."),
    };

    private static JinjaDict FromJsonObject(System.Text.Json.Nodes.JsonObject o)
    {
        var d = new JinjaDict();
        foreach (var (k, v) in o)
            d.Set(k, FromJson(v));
        return d;
    }

    private static object? FromJsonValue(System.Text.Json.Nodes.JsonValue v) => v.GetValueKind() switch
    {
        System.Text.Json.JsonValueKind.String => v.GetValue<string>(),
        System.Text.Json.JsonValueKind.True => true,
        System.Text.Json.JsonValueKind.False => false,
        System.Text.Json.JsonValueKind.Null => null,
        System.Text.Json.JsonValueKind.Number => Number(v),
        var kind => throw new ArgumentException($"Unsupported JSON value {kind}."),
    };

    // An integer stays an integer (1, not 1.0), as in the JSON text.
    private static object Number(System.Text.Json.Nodes.JsonValue v)
    {
        if (v.TryGetValue(out System.Text.Json.JsonElement e))
            return e.TryGetInt64(out long parsed) ? (object)parsed : e.GetDouble();
        return v.TryGetValue(out long l) ? (object)l : v.TryGetValue(out int i) ? (long)i : v.GetValue<double>();
    }
}

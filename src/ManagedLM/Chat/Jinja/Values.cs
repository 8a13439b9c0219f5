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
    private sealed class KeyComparer : IEqualityComparer<object>
    {
        public static readonly KeyComparer Instance = new();
        public new bool Equals(object? a, object? b) => Values.PrimitiveEquals(a, b);
        public int GetHashCode(object o) => o switch
        {
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
    internal object? Invoke(RenderContext context, Arguments args) => call(context, args);
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
        _ => throw new TemplateException($"Expected a number, got {Dump(v)}"),
    };

    public static long ToLong(object? v) => v switch
    {
        long l => l,
        double d => (long)d,
        bool b => b ? 1 : 0,
        _ => throw new TemplateException($"Expected an integer, got {Dump(v)}"),
    };

    /// <summary>minja's <c>to_str</c>: strings as they are, integers in decimal, floats as C's %f, booleans True/False, none None, the rest as their repr.</summary>
    public static string ToStr(object? v) => v switch
    {
        string s => s,
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => FormatFixed(d),
        bool b => b ? "True" : "False",
        null => "None",
        _ => Dump(v),
    };

    /// <summary>What <c>{{ value }}</c> prints: nothing for none, True/False, strings raw, anything else its repr.</summary>
    public static string Print(object? v) => v switch
    {
        null => "",
        string s => s,
        bool b => b ? "True" : "False",
        _ => Dump(v),
    };

    /// <summary>Length of a string (UTF-8 bytes, as minja counts), list or mapping.</summary>
    public static long Size(object? v) => v switch
    {
        string s => Encoding.UTF8.GetByteCount(s),
        JinjaList l => l.Count,
        JinjaDict d => d.Count,
        _ => throw new TemplateException($"Value is not an array or object: {Dump(v)}"),
    };

    public static bool IsIterable(object? v) => v is string or JinjaList or JinjaDict;

    /// <summary>Python-style repr (single-quoted strings, True/False), or JSON when <paramref name="json"/>; <paramref name="indent"/> &gt; 0 breaks lines.</summary>
    public static string Dump(object? v, int indent = -1, bool json = false)
    {
        var sb = new StringBuilder();
        Dump(sb, v, indent, 0, json);
        return sb.ToString();
    }

    private static void Dump(StringBuilder sb, object? v, int indent, int level, bool json)
    {
        CheckValueDepth(level);
        void Indent(int lvl)
        {
            if (indent > 0)
            {
                sb.Append('\n');
                sb.Append(' ', lvl * indent);
            }
        }
        void Separator()
        {
            sb.Append(',');
            if (indent < 0)
                sb.Append(' ');
            else
                Indent(level + 1);
        }

        switch (v)
        {
            case null:
                sb.Append("null");
                break;
            case JinjaList list:
                sb.Append('[');
                Indent(level + 1);
                for (int i = 0; i < list.Count; i++)
                {
                    if (i > 0)
                        Separator();
                    Dump(sb, list[i], indent, level + 1, json);
                }
                Indent(level);
                sb.Append(']');
                break;
            case JinjaDict dict:
                sb.Append('{');
                Indent(level + 1);
                for (int i = 0; i < dict.Count; i++)
                {
                    if (i > 0)
                        Separator();
                    object key = dict.Keys[i];
                    if (key is string ks)
                        sb.Append(QuoteString(ks, json ? '"' : '\''));
                    else
                        sb.Append(json ? '"' : '\'').Append(Dump(key, -1, true)).Append(json ? '"' : '\'');
                    sb.Append(": ");
                    Dump(sb, dict.Get(key), indent, level + 1, json);
                }
                Indent(level);
                sb.Append('}');
                break;
            case JinjaFunction:
                throw new TemplateException("Cannot dump callable to JSON");
            case bool b:
                sb.Append(json ? (b ? "true" : "false") : (b ? "True" : "False"));
                break;
            case string s:
                sb.Append(QuoteString(s, json ? '"' : '\''));
                break;
            case long l:
                sb.Append(l.ToString(CultureInfo.InvariantCulture));
                break;
            case double d:
                sb.Append(FormatJsonNumber(d));
                break;
            default:
                throw new TemplateException($"Cannot print a value of type {v.GetType().Name}");
        }
    }

    /// <summary>A JSON string literal; with a single quote wanted and no ' inside, the same literal in single quotes (minja's repr).</summary>
    private static string QuoteString(string s, char quote)
    {
        string json = JsonString(s);
        if (quote == '"' || s.Contains('\''))
            return json;
        var sb = new StringBuilder(json.Length);
        sb.Append('\'');
        for (int i = 1; i < json.Length - 1; i++)
        {
            if (json[i] == '\\' && json[i + 1] == '"')
            {
                sb.Append('"');
                i++;
            }
            else
                sb.Append(json[i]);
        }
        sb.Append('\'');
        return sb.ToString();
    }

    /// <summary>A JSON string literal as nlohmann::json writes it: ", \ and control characters escaped, the rest (non-ASCII included) as is.</summary>
    public static string JsonString(string s)
    {
        var sb = new StringBuilder(s.Length + 2);
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c < 0x20)
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else
                        sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
        return sb.ToString();
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
    public static bool Equal(object? a, object? b) => Equal(a, b, 0);

    private static bool Equal(object? a, object? b, int level)
    {
        CheckValueDepth(level);
        if (a is JinjaFunction || b is JinjaFunction)
            return ReferenceEquals(a, b);
        if (a is JinjaList la)
        {
            if (b is not JinjaList lb || la.Count != lb.Count)
                return false;
            for (int i = 0; i < la.Count; i++)
            {
                if (!ToBool(la[i]) || !ToBool(lb[i]) || !Equal(la[i], lb[i], level + 1))
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
                if (!ToBool(value) || !db.ContainsKey(key) || !Equal(value, db.Get(key), level + 1))
                    return false;
            }
            return true;
        }
        if (b is JinjaList or JinjaDict)
            return false;
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
    public static bool Less(object? a, object? b)
    {
        if (a is null)
            throw new TemplateException("Undefined value or reference");
        if (IsNumber(a) && IsNumber(b))
            return ToDouble(a) < ToDouble(b);
        if (a is string sa && b is string sb)
            return string.CompareOrdinal(sa, sb) < 0;
        throw new TemplateException($"Cannot compare values: {Dump(a)} < {Dump(b)}");
    }

    public static bool Greater(object? a, object? b)
    {
        if (a is null)
            throw new TemplateException("Undefined value or reference");
        if (IsNumber(a) && IsNumber(b))
            return ToDouble(a) > ToDouble(b);
        if (a is string sa && b is string sb)
            return string.CompareOrdinal(sa, sb) > 0;
        throw new TemplateException($"Cannot compare values: {Dump(a)} > {Dump(b)}");
    }

    /// <summary>x in container: a list holds it (truthy items only), a mapping has the key, or a substring.</summary>
    public static bool In(object? value, object? container) => container switch
    {
        JinjaList list => list.Exists(item => ToBool(item) && Equal(item, value)),
        JinjaDict dict => value is not (JinjaList or JinjaDict or JinjaFunction) && value is not null
            ? dict.ContainsKey(value)
            : value is null ? false : throw new TemplateException($"Unhashable type: {Dump(value)}"),
        string s when value is string v => s.Contains(v, StringComparison.Ordinal),
        _ => false,
    };

    /// <summary>The items a for loop visits: list items, mapping keys, or the characters of a string.</summary>
    public static IEnumerable<object?> Iterate(object? v) => v switch
    {
        null => throw new TemplateException("Undefined value or reference"),
        JinjaList list => list,
        JinjaDict dict => dict.Keys,
        string s => s.EnumerateRunes().Select(r => (object?)r.ToString()),
        _ => throw new TemplateException($"Value is not iterable: {Dump(v)}"),
    };

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

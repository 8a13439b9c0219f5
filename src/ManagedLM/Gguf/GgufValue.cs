using System.Globalization;

namespace ManagedLM.Gguf;

/// <summary>
/// One metadata value: its GGUF type and the value as a CLR object (<c>byte, sbyte, ushort, short,
/// uint, int, float, bool, string, ulong, long, double</c>, or <see cref="GgufArray"/>).
/// </summary>
public sealed class GgufValue
{
    /// <summary>The GGUF type.</summary>
    public GgufValueType Type { get; }
    /// <summary>The value: the CLR type listed above for <see cref="Type"/>.</summary>
    public object Value { get; }

    /// <summary>A value of <paramref name="type"/>; <paramref name="value"/> must be of the CLR type listed for it.</summary>
    /// <exception cref="ArgumentException">The CLR type of <paramref name="value"/> is not the one listed for <paramref name="type"/>.</exception>
    public GgufValue(GgufValueType type, object value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (!Matches(type, value))
            throw new ArgumentException($"A {type} value cannot hold a {value.GetType().Name}.", nameof(value));
        Type = type;
        Value = value;
    }

    /// <summary>A string value.</summary>
    public static GgufValue Of(string s) => new(GgufValueType.String, s);
    /// <summary>A uint8 value.</summary>
    public static GgufValue Of(byte v) => new(GgufValueType.UInt8, v);
    /// <summary>An int8 value.</summary>
    public static GgufValue Of(sbyte v) => new(GgufValueType.Int8, v);
    /// <summary>A uint16 value.</summary>
    public static GgufValue Of(ushort v) => new(GgufValueType.UInt16, v);
    /// <summary>An int16 value.</summary>
    public static GgufValue Of(short v) => new(GgufValueType.Int16, v);
    /// <summary>A uint32 value.</summary>
    public static GgufValue Of(uint v) => new(GgufValueType.UInt32, v);
    /// <summary>An int32 value.</summary>
    public static GgufValue Of(int v) => new(GgufValueType.Int32, v);
    /// <summary>A uint64 value.</summary>
    public static GgufValue Of(ulong v) => new(GgufValueType.UInt64, v);
    /// <summary>An int64 value.</summary>
    public static GgufValue Of(long v) => new(GgufValueType.Int64, v);
    /// <summary>A float32 value.</summary>
    public static GgufValue Of(float v) => new(GgufValueType.Float32, v);
    /// <summary>A float64 value.</summary>
    public static GgufValue Of(double v) => new(GgufValueType.Float64, v);
    /// <summary>A bool value.</summary>
    public static GgufValue Of(bool v) => new(GgufValueType.Bool, v);
    /// <summary>An array value.</summary>
    public static GgufValue Of(GgufArray a) => new(GgufValueType.Array, a);

    /// <summary>The array, or null when the value is not an array.</summary>
    public GgufArray? AsArray => Value as GgufArray;

    /// <summary>True for the eight integer types.</summary>
    public bool IsInteger => Type is GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.UInt16
        or GgufValueType.Int16 or GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.UInt64 or GgufValueType.Int64;

    /// <summary>An integer value of any integer type widened to long; null when not an integer or out of range.</summary>
    public long? AsInt64 => Value switch
    {
        byte v => v,
        sbyte v => v,
        ushort v => v,
        short v => v,
        uint v => v,
        int v => v,
        long v => v,
        ulong v when v <= long.MaxValue => (long)v,
        _ => null,
    };

    /// <summary>A float or integer value as double; null for other types.</summary>
    public double? AsDouble => Value switch
    {
        float v => v,
        double v => v,
        _ => AsInt64,
    };

    /// <summary>The value as text: strings unquoted and whole, arrays abbreviated.</summary>
    public override string ToString() => Value is string s ? s : Format(Value, 6, 40);

    /// <summary>
    /// Display text: strings quoted, escaped and cut after <paramref name="maxStringChars"/> characters;
    /// arrays as element type, count and the first <paramref name="maxItems"/> items.
    /// </summary>
    public string Describe(int maxItems = 6, int maxStringChars = 120) => Format(Value, maxItems, maxStringChars);

    internal static string Format(object? value, int maxItems, int maxStringChars) => value switch
    {
        string s => Quote(s, maxStringChars),
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        GgufArray a => a.Describe(maxItems, maxStringChars),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };

    private static string Quote(string s, int maxChars)
    {
        var sb = new System.Text.StringBuilder(Math.Min(s.Length, maxChars) + 24).Append('"');
        int shown = Math.Min(s.Length, Math.Max(0, maxChars));
        foreach (char c in s.AsSpan(0, shown))
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case < ' ': sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture)); break;
                default: sb.Append(c); break;
            }
        }
        sb.Append('"');
        if (shown < s.Length)
            sb.Append("... (").Append(s.Length).Append(" chars)");
        return sb.ToString();
    }

    internal static bool Matches(GgufValueType type, object value) => type switch
    {
        GgufValueType.UInt8 => value is byte,
        GgufValueType.Int8 => value is sbyte,
        GgufValueType.UInt16 => value is ushort,
        GgufValueType.Int16 => value is short,
        GgufValueType.UInt32 => value is uint,
        GgufValueType.Int32 => value is int,
        GgufValueType.Float32 => value is float,
        GgufValueType.Bool => value is bool,
        GgufValueType.String => value is string,
        GgufValueType.Array => value is GgufArray,
        GgufValueType.UInt64 => value is ulong,
        GgufValueType.Int64 => value is long,
        GgufValueType.Float64 => value is double,
        _ => false,
    };
}

/// <summary>
/// A metadata array: element type and the elements as a typed CLR array (<c>string[]</c>, <c>float[]</c>,
/// <c>int[]</c>, ..., or <c>GgufArray[]</c> for nested arrays).
/// </summary>
public sealed class GgufArray
{
    /// <summary>The type of every element.</summary>
    public GgufValueType ElementType { get; }
    /// <summary>The elements: a one-dimensional array of the CLR type of <see cref="ElementType"/>, never written.</summary>
    internal Array Items { get; }
    /// <summary>Number of elements.</summary>
    public int Count => Items.Length;

    /// <summary>An array of <paramref name="elementType"/> elements: a copy of <paramref name="items"/>, so that the value stays immutable.</summary>
    /// <exception cref="ArgumentException"><paramref name="items"/> is not a one-dimensional array of the CLR type listed for <paramref name="elementType"/>.</exception>
    public GgufArray(GgufValueType elementType, Array items) : this(elementType, items, copy: true)
    {
    }

    private GgufArray(GgufValueType elementType, Array items, bool copy)
    {
        ArgumentNullException.ThrowIfNull(items);
        var expected = ClrType(elementType);
        if (!items.GetType().IsSZArray || items.GetType().GetElementType() != expected)
            throw new ArgumentException($"A {elementType} array must be a {expected.Name}[]; got {items.GetType().Name}.", nameof(items));
        ElementType = elementType;
        Items = copy ? (Array)items.Clone() : items;
    }

    /// <summary>Takes <paramref name="items"/> without a copy: for arrays nothing else references (the reader's).</summary>
    internal static GgufArray Wrap(GgufValueType elementType, Array items) => new(elementType, items, copy: false);

    /// <summary>The elements as <typeparamref name="T"/>, which must be the CLR type of <see cref="ElementType"/> (<see cref="ClrType"/>).</summary>
    /// <exception cref="InvalidOperationException"><typeparamref name="T"/> is not the element type.</exception>
    public ReadOnlySpan<T> AsSpan<T>() =>
        Items is T[] items && items.GetType() == typeof(T[]) ? items
        : throw new InvalidOperationException($"This array holds {ElementType} elements ({Items.GetType().Name}), not {typeof(T).Name}.");

    /// <summary>An array of strings.</summary>
    public static GgufArray Of(string[] items) => new(GgufValueType.String, items);
    /// <summary>An array of float32.</summary>
    public static GgufArray Of(float[] items) => new(GgufValueType.Float32, items);
    /// <summary>An array of int32.</summary>
    public static GgufArray Of(int[] items) => new(GgufValueType.Int32, items);
    /// <summary>An array of uint32.</summary>
    public static GgufArray Of(uint[] items) => new(GgufValueType.UInt32, items);
    /// <summary>An array of arrays (each with its own element type).</summary>
    public static GgufArray Of(GgufArray[] items) => new(GgufValueType.Array, items);

    /// <summary>The CLR element type used for a GGUF element type.</summary>
    public static Type ClrType(GgufValueType t) => t switch
    {
        GgufValueType.UInt8 => typeof(byte),
        GgufValueType.Int8 => typeof(sbyte),
        GgufValueType.UInt16 => typeof(ushort),
        GgufValueType.Int16 => typeof(short),
        GgufValueType.UInt32 => typeof(uint),
        GgufValueType.Int32 => typeof(int),
        GgufValueType.Float32 => typeof(float),
        GgufValueType.Bool => typeof(bool),
        GgufValueType.String => typeof(string),
        GgufValueType.Array => typeof(GgufArray),
        GgufValueType.UInt64 => typeof(ulong),
        GgufValueType.Int64 => typeof(long),
        GgufValueType.Float64 => typeof(double),
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "Not a GGUF value type."),
    };

    /// <summary>Abbreviated text: the element type, count, and the first few items.</summary>
    public override string ToString() => Describe(6);

    /// <summary>The element type, count, and the first <paramref name="maxItems"/> items (strings cut after <paramref name="maxStringChars"/> characters).</summary>
    public string Describe(int maxItems, int maxStringChars = 40)
    {
        var shown = new List<string>();
        for (int i = 0; i < Math.Min(maxItems, Count); i++)
            shown.Add(GgufValue.Format(Items.GetValue(i), maxItems, maxStringChars));
        string more = Count > maxItems ? $", ... ({Count - maxItems} more)" : "";
        return $"[{ElementType} x {Count}: {string.Join(", ", shown)}{more}]";
    }
}

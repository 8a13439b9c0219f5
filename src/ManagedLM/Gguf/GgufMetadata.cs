using System.Collections;
using System.Diagnostics.CodeAnalysis;

namespace ManagedLM.Gguf;

/// <summary>One metadata key/value pair and the byte offset of its value in the file.</summary>
public sealed record GgufMetadataEntry(string Key, GgufValue Value, long Offset);

/// <summary>
/// A GGUF file's metadata in file order, with typed accessors. Required-key accessors raise
/// <see cref="GgufFormatException"/> naming the key and the type expected; integer accessors accept
/// any integer type whose value fits (files write hyper-parameters as uint32, int32 or uint64).
/// </summary>
public sealed class GgufMetadata : IReadOnlyList<GgufMetadataEntry>
{
    private readonly List<GgufMetadataEntry> _entries;
    private readonly Dictionary<string, GgufMetadataEntry> _byKey;
    private readonly long _endOffset;

    internal GgufMetadata(List<GgufMetadataEntry> entries, long endOffset)
    {
        _entries = entries;
        _byKey = entries.ToDictionary(e => e.Key, StringComparer.Ordinal);
        _endOffset = endOffset;
    }

    /// <summary>Number of key/value pairs.</summary>
    public int Count => _entries.Count;
    /// <summary>The pair at <paramref name="index"/> in file order.</summary>
    public GgufMetadataEntry this[int index] => _entries[index];
    /// <summary>The pairs in file order.</summary>
    public IEnumerator<GgufMetadataEntry> GetEnumerator() => _entries.GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>A mutable copy of the pairs in file order: edit it and hand it to <see cref="GgufWriter"/>.</summary>
    public List<KeyValuePair<string, GgufValue>> ToKeyValueList() => _entries.Select(e => KeyValuePair.Create(e.Key, e.Value)).ToList();

    /// <summary>The keys in file order.</summary>
    public IEnumerable<string> Keys => _entries.Select(e => e.Key);
    /// <summary>True when <paramref name="key"/> is present.</summary>
    public bool ContainsKey(string key) => _byKey.ContainsKey(key);
    /// <summary>The entry of <paramref name="key"/> (with its file offset), or null.</summary>
    public GgufMetadataEntry? FindEntry(string key) => _byKey.GetValueOrDefault(key);

    /// <summary>The value of <paramref name="key"/>, if present.</summary>
    public bool TryGetValue(string key, [NotNullWhen(true)] out GgufValue? value)
    {
        value = _byKey.TryGetValue(key, out var e) ? e.Value : null;
        return value is not null;
    }

    /// <summary>The value of <paramref name="key"/>; <see cref="GgufFormatException"/> when missing.</summary>
    public GgufValue Get(string key) => Required(key, "a value").Value;

    /// <summary>A required string.</summary>
    public string GetString(string key) => As<string>(Required(key, "a string"), "a string");
    /// <summary>A string, or null when the key is absent.</summary>
    public string? GetStringOrNull(string key) => FindEntry(key) is { } e ? As<string>(e, "a string") : null;

    /// <summary>A required integer of any integer type.</summary>
    public long GetInt64(string key) => Integer(Required(key, "an integer"), long.MinValue, long.MaxValue);
    /// <summary>A required integer of any integer type that fits an int.</summary>
    public int GetInt32(string key) => (int)Integer(Required(key, "an integer"), int.MinValue, int.MaxValue);
    /// <summary>An integer that fits an int, or <paramref name="defaultValue"/> when the key is absent.</summary>
    public int GetInt32(string key, int defaultValue) => FindEntry(key) is { } e ? (int)Integer(e, int.MinValue, int.MaxValue) : defaultValue;
    /// <summary>An integer that fits an int, or null when the key is absent.</summary>
    public int? GetInt32OrNull(string key) => FindEntry(key) is { } e ? (int)Integer(e, int.MinValue, int.MaxValue) : null;

    /// <summary>A required number (float, double or integer) as float.</summary>
    public float GetSingle(string key) => Real(Required(key, "a number"));
    /// <summary>A number as float, or <paramref name="defaultValue"/> when the key is absent.</summary>
    public float GetSingle(string key, float defaultValue) => FindEntry(key) is { } e ? Real(e) : defaultValue;
    /// <summary>A number as float, or null when the key is absent.</summary>
    public float? GetSingleOrNull(string key) => FindEntry(key) is { } e ? Real(e) : null;

    /// <summary>A bool, or <paramref name="defaultValue"/> when the key is absent.</summary>
    public bool GetBoolean(string key, bool defaultValue) => FindEntry(key) is { } e ? As<bool>(e, "a bool") : defaultValue;
    /// <summary>A bool, or null when the key is absent.</summary>
    public bool? GetBooleanOrNull(string key) => FindEntry(key) is { } e ? As<bool>(e, "a bool") : null;

    /// <summary>A copy of an array whose elements are of type <typeparamref name="T"/> (string, float, int, ...).</summary>
    public T[] GetArray<T>(string key) => ArrayOf<T>(Required(key, $"an array of {typeof(T).Name}"));
    /// <summary>A copy of an array of exactly <typeparamref name="T"/> elements, or null when the key is absent.</summary>
    public T[]? GetArrayOrNull<T>(string key) => FindEntry(key) is { } e ? ArrayOf<T>(e) : null;

    /// <summary>An integer array of any integer element type, as int32 values.</summary>
    public int[]? GetInt32ArrayOrNull(string key)
    {
        if (FindEntry(key) is not { } e)
            return null;
        if (e.Value.Value is not GgufArray a)
            throw Wrong(e, "an integer array");
        var result = new int[a.Count];
        for (int i = 0; i < a.Count; i++)
        {
            var item = new GgufValue(a.ElementType, a.Items.GetValue(i)!);
            long? v = item.AsInt64;
            if (v is null || v < int.MinValue || v > int.MaxValue)
                throw Wrong(e, "an integer array with int32 values");
            result[i] = (int)v.Value;
        }
        return result;
    }

    private GgufMetadataEntry Required(string key, string expected) =>
        _byKey.TryGetValue(key, out var e) ? e
        : throw new GgufFormatException(_endOffset, $"missing required metadata key \"{key}\" ({expected})");

    private static T As<T>(GgufMetadataEntry e, string expected) =>
        e.Value.Value is T v ? v : throw Wrong(e, expected);

    private static long Integer(GgufMetadataEntry e, long min, long max)
    {
        long? v = e.Value.AsInt64;
        if (v is null)
            throw Wrong(e, "an integer");
        if (v < min || v > max)
            throw new GgufFormatException(e.Offset, $"metadata \"{e.Key}\" = {v} is outside [{min}, {max}]");
        return v.Value;
    }

    private static float Real(GgufMetadataEntry e) =>
        e.Value.AsDouble is double d ? (float)d : throw Wrong(e, "a number");

    // A copy, since the metadata is shared (a loaded model's with every thread). Exact element type: the runtime's
    // array covariance would let a uint[] pass as int[] (and string[] as object[]).
    private static T[] ArrayOf<T>(GgufMetadataEntry e) =>
        e.Value.Value is GgufArray { Items: T[] items } && items.GetType() == typeof(T[]) ? (T[])items.Clone()
        : throw Wrong(e, $"an array of {typeof(T).Name}");

    private static GgufFormatException Wrong(GgufMetadataEntry e, string expected) =>
        new(e.Offset, $"metadata \"{e.Key}\" should be {expected}, found {Describe(e.Value)}");

    private static string Describe(GgufValue v) =>
        v.Value is GgufArray a ? $"an array of {a.ElementType}" : v.Type.ToString();
}

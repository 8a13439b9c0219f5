using System.Globalization;
using System.Text.Json;

namespace ManagedLM.Grammars;

/// <summary>
/// The lower and upper bound of a numeric schema from <c>minimum</c>, <c>maximum</c> and <c>exclusiveMinimum</c>/
/// <c>exclusiveMaximum</c> (numbers, or the booleans of draft 4), the tighter bound winning.
/// </summary>
internal readonly record struct NumericBounds(
    decimal? Low, bool LowInclusive, string? LowPath, decimal? High, bool HighInclusive, string? HighPath)
{
    /// <summary>Magnitude standing in for bounds too large for <see cref="decimal"/>; far beyond what the grammar writes.</summary>
    const decimal Huge = 1e20m;

    public bool IsEmpty => Low is null && High is null;

    public string Describe() =>
        $"{(Low is null ? "-infinity" : (LowInclusive ? "[" : "(") + Low.Value.ToString(CultureInfo.InvariantCulture))}" +
        $" and {(High is null ? "infinity" : High.Value.ToString(CultureInfo.InvariantCulture) + (HighInclusive ? "]" : ")"))}";

    public static NumericBounds Read(JsonElement schema, string path)
    {
        var (low, lowInclusive, lowPath) = Side(schema, path, "minimum", "exclusiveMinimum", lower: true);
        var (high, highInclusive, highPath) = Side(schema, path, "maximum", "exclusiveMaximum", lower: false);
        return new NumericBounds(low, lowInclusive, lowPath, high, highInclusive, highPath);
    }

    static (decimal?, bool, string?) Side(JsonElement schema, string path, string inclusiveKeyword, string exclusiveKeyword, bool lower)
    {
        decimal? inclusive = Number(schema, path, inclusiveKeyword);
        bool draft4Exclusive = false;
        decimal? exclusive = null;
        if (schema.TryGetProperty(exclusiveKeyword, out var value))
        {
            if (value.ValueKind is JsonValueKind.True or JsonValueKind.False)
            {
                draft4Exclusive = value.ValueKind == JsonValueKind.True;
                if (draft4Exclusive && inclusive is null)
                    throw JsonSchemaConverter.Error(JsonSchemaConverter.Pointer(path, exclusiveKeyword), $"true without {inclusiveKeyword}");
            }
            else exclusive = Number(schema, path, exclusiveKeyword);
        }
        if (draft4Exclusive) return (inclusive, false, JsonSchemaConverter.Pointer(path, inclusiveKeyword));
        if (exclusive is { } e && (inclusive is not { } i || (lower ? e >= i : e <= i)))
            return (e, false, JsonSchemaConverter.Pointer(path, exclusiveKeyword));
        return inclusive is null ? (null, true, null) : (inclusive, true, JsonSchemaConverter.Pointer(path, inclusiveKeyword));
    }

    static decimal? Number(JsonElement schema, string path, string keyword)
    {
        if (!schema.TryGetProperty(keyword, out var value)) return null;
        if (value.ValueKind != JsonValueKind.Number) throw JsonSchemaConverter.Error(JsonSchemaConverter.Pointer(path, keyword), "must be a number");
        if (value.TryGetDecimal(out var d)) return d;
        return value.GetDouble() > 0 ? Huge : -Huge;
    }
}

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
    /// <summary>Magnitude standing in for bounds of 1e17 and more; far beyond what the grammar writes.</summary>
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
        var keywordPath = JsonSchemaConverter.Pointer(path, keyword);
        if (value.ValueKind != JsonValueKind.Number) throw JsonSchemaConverter.Error(keywordPath, "must be a number");
        var raw = Normalize(value.GetRawText());
        if (raw.Digits.Length > 0 && raw.Exponent > 17) return raw.Negative ? -Huge : Huge;
        // A bound decimal would round could let a numeral just past it through.
        if (!value.TryGetDecimal(out var d) || Normalize(d.ToString(CultureInfo.InvariantCulture)) != raw)
            throw JsonSchemaConverter.Error(keywordPath, $"{value.GetRawText()} has more precision than the 28 significant digits supported");
        return d;
    }

    /// <summary>
    /// A JSON numeral as sign, significant digits (no leading or trailing zeros) and the exponent that puts the decimal
    /// point before them: value = 0.Digits × 10^Exponent. Zero has no digits.
    /// </summary>
    static (bool Negative, string Digits, long Exponent) Normalize(string numeral)
    {
        bool negative = numeral.StartsWith('-');
        if (negative) numeral = numeral[1..];
        long exponent = 0;
        int e = numeral.IndexOfAny(['e', 'E']);
        if (e >= 0)
        {
            // Exponents beyond long are far past any bound the grammar can write; saturate.
            if (!long.TryParse(numeral.AsSpan(e + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out exponent))
                exponent = numeral[e + 1] == '-' ? long.MinValue / 2 : long.MaxValue / 2;
            numeral = numeral[..e];
        }
        int dot = numeral.IndexOf('.');
        string integer = dot < 0 ? numeral : numeral[..dot], fraction = dot < 0 ? "" : numeral[(dot + 1)..];
        string digits = integer + fraction;
        int leadingZeros = digits.Length - digits.TrimStart('0').Length;
        digits = digits.TrimStart('0').TrimEnd('0');
        if (digits.Length == 0) return (false, "", 0);
        return (negative, digits, exponent + integer.Length - leadingZeros);
    }
}

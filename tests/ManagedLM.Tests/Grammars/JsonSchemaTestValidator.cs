using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace ManagedLM.Tests.Grammars;

/// <summary>
/// Test-only JSON Schema validator for the keywords the converter supports, written from the specification and
/// independent of the converter: the judge of whether a sentence of a schema's grammar is a valid instance.
/// Patterns run on .NET's ECMAScript regex mode.
/// </summary>
internal static class JsonSchemaTestValidator
{
    public static bool IsValid(string schemaJson, string instanceJson)
    {
        using var schema = JsonDocument.Parse(schemaJson);
        JsonDocument instance;
        try
        {
            instance = JsonDocument.Parse(instanceJson);
        }
        catch (JsonException)
        {
            return false;
        }
        using (instance) return Valid(schema.RootElement, instance.RootElement, schema.RootElement);
    }

    static bool Valid(JsonElement s, JsonElement v, JsonElement root)
    {
        if (s.ValueKind == JsonValueKind.True) return true;
        if (s.ValueKind == JsonValueKind.False) return false;
        foreach (var keyword in s.EnumerateObject())
        {
            var k = keyword.Value;
            bool ok = keyword.Name switch
            {
                "$ref" => Valid(Resolve(root, k.GetString()!), v, root),
                "type" => k.ValueKind == JsonValueKind.String ? HasType(v, k.GetString()!) : k.EnumerateArray().Any(t => HasType(v, t.GetString()!)),
                "enum" => k.EnumerateArray().Any(e => Equal(e, v)),
                "const" => Equal(k, v),
                "anyOf" => k.EnumerateArray().Any(b => Valid(b, v, root)),
                "oneOf" => k.EnumerateArray().Count(b => Valid(b, v, root)) == 1,
                "allOf" => k.EnumerateArray().All(b => Valid(b, v, root)),
                "properties" => v.ValueKind != JsonValueKind.Object || k.EnumerateObject().All(p => !v.TryGetProperty(p.Name, out var pv) || Valid(p.Value, pv, root)),
                "required" => v.ValueKind != JsonValueKind.Object || k.EnumerateArray().All(r => v.TryGetProperty(r.GetString()!, out _)),
                "additionalProperties" => v.ValueKind != JsonValueKind.Object || v.EnumerateObject().All(p =>
                    (s.TryGetProperty("properties", out var ps) && ps.TryGetProperty(p.Name, out _)) || Valid(k, p.Value, root)),
                "prefixItems" => v.ValueKind != JsonValueKind.Array || k.EnumerateArray().Zip(v.EnumerateArray()).All(pair => Valid(pair.First, pair.Second, root)),
                "items" when k.ValueKind == JsonValueKind.Array =>
                    v.ValueKind != JsonValueKind.Array || k.EnumerateArray().Zip(v.EnumerateArray()).All(pair => Valid(pair.First, pair.Second, root)),
                "items" => v.ValueKind != JsonValueKind.Array || v.EnumerateArray()
                    .Skip(s.TryGetProperty("prefixItems", out var prefix) ? prefix.GetArrayLength() : 0).All(item => Valid(k, item, root)),
                "additionalItems" => v.ValueKind != JsonValueKind.Array || !s.TryGetProperty("items", out var positional)
                    || positional.ValueKind != JsonValueKind.Array || v.EnumerateArray().Skip(positional.GetArrayLength()).All(item => Valid(k, item, root)),
                "minItems" => v.ValueKind != JsonValueKind.Array || v.GetArrayLength() >= k.GetInt32(),
                "maxItems" => v.ValueKind != JsonValueKind.Array || v.GetArrayLength() <= k.GetInt32(),
                "minLength" => v.ValueKind != JsonValueKind.String || v.GetString()!.EnumerateRunes().Count() >= k.GetInt32(),
                "maxLength" => v.ValueKind != JsonValueKind.String || v.GetString()!.EnumerateRunes().Count() <= k.GetInt32(),
                "pattern" => v.ValueKind != JsonValueKind.String || Regex.IsMatch(v.GetString()!, k.GetString()!, RegexOptions.ECMAScript),
                "format" => v.ValueKind != JsonValueKind.String || FormatValid(k.GetString()!, v.GetString()!),
                "minimum" => v.ValueKind != JsonValueKind.Number || Number(v) >= Number(k),
                "maximum" => v.ValueKind != JsonValueKind.Number || Number(v) <= Number(k),
                "exclusiveMinimum" => v.ValueKind != JsonValueKind.Number || Number(v) > Number(k),
                "exclusiveMaximum" => v.ValueKind != JsonValueKind.Number || Number(v) < Number(k),
                "$defs" or "definitions" or "title" or "description" => true,
                _ => throw new NotSupportedException($"test validator lacks '{keyword.Name}'"),
            };
            if (!ok) return false;
        }
        return true;
    }

    static JsonElement Resolve(JsonElement root, string reference)
    {
        var current = root;
        if (reference == "#") return current;
        foreach (var segment in reference[2..].Split('/'))
        {
            var name = segment.Replace("~1", "/").Replace("~0", "~");
            current = current.ValueKind == JsonValueKind.Array ? current[int.Parse(name, CultureInfo.InvariantCulture)] : current.GetProperty(name);
        }
        return current;
    }

    static decimal Number(JsonElement e) => e.TryGetDecimal(out var d) ? d : (decimal)Math.Clamp(e.GetDouble(), -1e28, 1e28);

    static bool HasType(JsonElement v, string type) => type switch
    {
        "object" => v.ValueKind == JsonValueKind.Object,
        "array" => v.ValueKind == JsonValueKind.Array,
        "string" => v.ValueKind == JsonValueKind.String,
        "number" => v.ValueKind == JsonValueKind.Number,
        "integer" => v.ValueKind == JsonValueKind.Number && Number(v) == decimal.Truncate(Number(v)),
        "boolean" => v.ValueKind is JsonValueKind.True or JsonValueKind.False,
        "null" => v.ValueKind == JsonValueKind.Null,
        _ => throw new NotSupportedException(type),
    };

    static bool Equal(JsonElement a, JsonElement b)
    {
        if (a.ValueKind == JsonValueKind.Number && b.ValueKind == JsonValueKind.Number) return Number(a) == Number(b);
        if (a.ValueKind != b.ValueKind) return false;
        return a.ValueKind switch
        {
            JsonValueKind.String => a.GetString() == b.GetString(),
            JsonValueKind.Array => a.GetArrayLength() == b.GetArrayLength() && a.EnumerateArray().Zip(b.EnumerateArray()).All(p => Equal(p.First, p.Second)),
            JsonValueKind.Object => a.EnumerateObject().Count() == b.EnumerateObject().Count()
                && a.EnumerateObject().All(p => b.TryGetProperty(p.Name, out var q) && Equal(p.Value, q)),
            _ => true,
        };
    }

    static bool FormatValid(string format, string value) => format switch
    {
        "date" => DateTime.TryParseExact(value, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out _),
        "time" => TimeValid(value),
        "date-time" => value.Length > 11 && value[10] == 'T' && FormatValid("date", value[..10]) && TimeValid(value[11..]),
        "uuid" => value.Length == 36 && Guid.TryParseExact(value, "D", out _),
        "email" => Regex.IsMatch(value, @"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$", RegexOptions.ECMAScript),
        "hostname" => value.Split('.').All(l => l.Length is > 0 and <= 63 && Regex.IsMatch(l, "^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$", RegexOptions.ECMAScript)),
        "ipv4" => value.Split('.') is { Length: 4 } parts && parts.All(p => p.Length > 0 && (p == "0" || p[0] != '0') && p.All(char.IsAsciiDigit) && int.Parse(p, CultureInfo.InvariantCulture) <= 255)
            && IPAddress.TryParse(value, out _),
        _ => throw new NotSupportedException(format),
    };

    // RFC 3339 full-time: HH:MM:SS[.frac](Z|±HH:MM), no leap second.
    static bool TimeValid(string value)
    {
        var match = Regex.Match(value, @"^(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-](\d\d):(\d\d))$", RegexOptions.ECMAScript);
        if (!match.Success) return false;
        int Part(int i) => int.Parse(match.Groups[i].Value, CultureInfo.InvariantCulture);
        return Part(1) < 24 && Part(2) < 60 && Part(3) < 60 && (!match.Groups[6].Success || (Part(6) < 24 && Part(7) < 60));
    }
}

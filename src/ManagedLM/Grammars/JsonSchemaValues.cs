using System.Text;
using System.Text.Json;

namespace ManagedLM.Grammars;

/// <summary>JSON values inside schemas (<c>enum</c>, <c>const</c>, property names): their text and their types.</summary>
internal static class JsonSchemaValues
{
    /// <summary>Compact JSON text of <paramref name="value"/>, strings escaped as the grammar's string rules write them.</summary>
    public static string Canonical(JsonElement value, string path)
    {
        var sb = new StringBuilder();
        Write(sb, value, path, 0);
        return sb.ToString();
    }

    static void Write(StringBuilder sb, JsonElement value, string path, int depth)
    {
        if (depth > JsonSchemaGrammar.MaxDepth) throw JsonSchemaConverter.Error(path, $"value nested deeper than {JsonSchemaGrammar.MaxDepth}");
        switch (value.ValueKind)
        {
            case JsonValueKind.Object:
                sb.Append('{');
                bool first = true;
                foreach (var property in value.EnumerateObject())
                {
                    if (!first) sb.Append(',');
                    first = false;
                    sb.Append(JsonString(property.Name, path)).Append(':');
                    Write(sb, property.Value, path, depth + 1);
                }
                sb.Append('}');
                break;
            case JsonValueKind.Array:
                sb.Append('[');
                int i = 0;
                foreach (var item in value.EnumerateArray())
                {
                    if (i++ > 0) sb.Append(',');
                    Write(sb, item, path, depth + 1);
                }
                sb.Append(']');
                break;
            case JsonValueKind.String:
                sb.Append(JsonString(value.GetString()!, path));
                break;
            default:
                sb.Append(value.GetRawText());
                break;
        }
    }

    /// <summary>The JSON string literal of <paramref name="text"/>; an unpaired surrogate (no character at all) is an error.</summary>
    public static string JsonString(string text, string path)
    {
        for (int i = 0; i < text.Length; i++)
        {
            if (!char.IsSurrogate(text[i])) continue;
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) i++;
            else throw JsonSchemaConverter.Error(path, "string with an unpaired surrogate");
        }
        return GbnfText.JsonString(text);
    }

    /// <summary>Whether <paramref name="value"/> is of JSON Schema type <paramref name="type"/> (1.0 is an integer).</summary>
    public static bool HasType(JsonElement value, string type) => (value.ValueKind, type) switch
    {
        (JsonValueKind.Object, "object") or (JsonValueKind.Array, "array") or (JsonValueKind.String, "string")
            or (JsonValueKind.True or JsonValueKind.False, "boolean") or (JsonValueKind.Null, "null")
            or (JsonValueKind.Number, "number") => true,
        (JsonValueKind.Number, "integer") => value.TryGetDecimal(out var d) ? d == decimal.Truncate(d) : value.GetDouble() == Math.Floor(value.GetDouble()),
        _ => false,
    };
}

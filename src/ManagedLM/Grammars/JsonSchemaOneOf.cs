using System.Text.Json;

namespace ManagedLM.Grammars;

/// <summary>
/// <c>oneOf</c> requires a value to match exactly one branch, so the grammar (which writes any branch) is only sound
/// when no value the grammar writes for one branch also matches another. This proves that for each pair of branches,
/// conservatively: their types differ, their constants differ, or (objects) a required property has disjoint constant
/// values, or each requires a property the other never writes. Otherwise the schema is an error suggesting anyOf.
/// </summary>
internal static class JsonSchemaOneOf
{
    const int MaxRefHops = 32;

    public static void CheckExclusive(JsonSchemaConverter converter, List<JsonElement> branches, string path)
    {
        var resolved = branches.Select((b, i) => Follow(converter, b, JsonSchemaConverter.Pointer(path, i))).ToList();
        for (int i = 0; i < resolved.Count; i++)
            for (int j = i + 1; j < resolved.Count; j++)
                if (!Exclusive(converter, resolved[i], resolved[j], JsonSchemaConverter.Pointer(path, i), JsonSchemaConverter.Pointer(path, j)))
                    throw JsonSchemaConverter.Error(path,
                        $"oneOf branches {i} and {j} may both match the same value; use anyOf, or tell them apart by type or by a required property with a const");
    }

    /// <summary>The schema a branch stands for once plain $ref chains are followed and allOf merged.</summary>
    static JsonElement Follow(JsonSchemaConverter converter, JsonElement schema, string path)
    {
        for (int hops = 0; hops < MaxRefHops && schema.ValueKind == JsonValueKind.Object; hops++)
        {
            bool hasRef = schema.TryGetProperty("$ref", out var reference);
            if (hasRef && reference.ValueKind == JsonValueKind.String && schema.EnumerateObject().Count() == 1)
                schema = converter.Resolve(reference.GetString()!, path);
            else if (hasRef || schema.TryGetProperty("allOf", out _))
                return JsonSchemaAllOf.Merge(converter, schema, path);
            else break;
        }
        return schema;
    }

    static bool Exclusive(JsonSchemaConverter converter, JsonElement a, JsonElement b, string pathA, string pathB)
    {
        var kindsA = Kinds(a, pathA);
        var kindsB = Kinds(b, pathB);
        if (kindsA is not null && kindsB is not null && !kindsA.Overlaps(kindsB)) return true;
        var constantsA = Constants(a);
        var constantsB = Constants(b);
        if (constantsA is not null && constantsB is not null && !constantsA.Overlaps(constantsB)) return true;
        if (kindsA is { Count: 1 } && kindsA.Contains("object") && kindsB is { Count: 1 } && kindsB.Contains("object"))
            return ObjectsExclusive(converter, a, b);
        return false;
    }

    /// <summary>The JSON kinds a schema's values can have (integer counted as number); null when not evident.</summary>
    static HashSet<string>? Kinds(JsonElement schema, string path)
    {
        if (schema.ValueKind != JsonValueKind.Object) return null;
        if (schema.TryGetProperty("anyOf", out _) || schema.TryGetProperty("oneOf", out _) || schema.TryGetProperty("allOf", out _)
            || schema.TryGetProperty("$ref", out _)) return null;
        IEnumerable<string> kinds;
        if (schema.TryGetProperty("const", out var constant)) kinds = [Kind(constant)];
        else if (schema.TryGetProperty("enum", out var values) && values.ValueKind == JsonValueKind.Array) kinds = values.EnumerateArray().Select(Kind);
        else
        {
            var types = JsonSchemaConverter.Types(schema, path);
            if (types.Count == 0) return null;
            kinds = types.Select(t => t == "integer" ? "number" : t);
        }
        return kinds.ToHashSet();
    }

    static string Kind(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        _ => "null",
    };

    /// <summary>Canonical texts of a schema's const/enum values; null when it has neither.</summary>
    static HashSet<string>? Constants(JsonElement schema)
    {
        if (schema.ValueKind != JsonValueKind.Object) return null;
        if (schema.TryGetProperty("const", out var constant)) return [JsonSchemaValues.Canonical(constant, "#")];
        if (schema.TryGetProperty("enum", out var values) && values.ValueKind == JsonValueKind.Array)
            return values.EnumerateArray().Select(v => JsonSchemaValues.Canonical(v, "#")).ToHashSet();
        return null;
    }

    static bool ObjectsExclusive(JsonSchemaConverter converter, JsonElement a, JsonElement b)
    {
        var requiredA = Required(a);
        var requiredB = Required(b);
        foreach (var name in requiredA.Intersect(requiredB))
        {
            var constantsA = Constants(Follow(converter, Property(a, name), "#"));
            var constantsB = Constants(Follow(converter, Property(b, name), "#"));
            if (constantsA is not null && constantsB is not null && !constantsA.Overlaps(constantsB)) return true;
        }
        return requiredB.Any(name => !Writes(a, name)) && requiredA.Any(name => !Writes(b, name));
    }

    static HashSet<string> Required(JsonElement schema) =>
        schema.TryGetProperty("required", out var required) && required.ValueKind == JsonValueKind.Array
            ? required.EnumerateArray().Where(r => r.ValueKind == JsonValueKind.String).Select(r => r.GetString()!).ToHashSet()
            : [];

    static JsonElement Property(JsonElement schema, string name) =>
        schema.TryGetProperty("properties", out var properties) && properties.ValueKind == JsonValueKind.Object
            && properties.TryGetProperty(name, out var property) ? property : default;

    /// <summary>Whether the grammar for this object schema can write a property called <paramref name="name"/>.</summary>
    static bool Writes(JsonElement schema, string name)
    {
        bool declared = Property(schema, name).ValueKind != JsonValueKind.Undefined || Required(schema).Contains(name);
        if (schema.TryGetProperty("additionalProperties", out var additional)) return declared || additional.ValueKind != JsonValueKind.False;
        // Without additionalProperties only declared properties are written, unless none are: then any object is.
        return declared || (!schema.TryGetProperty("properties", out _) && Required(schema).Count == 0);
    }
}

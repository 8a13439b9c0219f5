using System.Collections.Frozen;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ManagedLM.Grammars;

/// <summary>
/// Folds <c>allOf</c> (and a <c>$ref</c> with sibling keywords) into one schema: properties united (a property in
/// several parts becomes the allOf of its schemas), required names united, types intersected, bounds tightened, enums
/// intersected. An <c>anyOf</c>/<c>oneOf</c> in a part is distributed over the others. Keywords the parts disagree on
/// and that cannot be combined are errors.
/// </summary>
internal static class JsonSchemaAllOf
{
    const int MaxParts = 256;

    static readonly FrozenSet<string> TakeLargest = FrozenSet.Create(StringComparer.Ordinal, "minimum", "exclusiveMinimum", "minLength", "minItems");
    static readonly FrozenSet<string> TakeSmallest = FrozenSet.Create(StringComparer.Ordinal, "maximum", "exclusiveMaximum", "maxLength", "maxItems");

    /// <summary>A branch of <paramref name="keyword"/> combined with the keywords beside it in <paramref name="schema"/>.</summary>
    public static JsonElement WithSiblings(JsonElement schema, string keyword, JsonElement branch)
    {
        var siblings = (JsonObject)JsonNode.Parse(schema.GetRawText())!;
        siblings.Remove(keyword);
        return JsonSerializer.SerializeToElement(new JsonObject { ["allOf"] = new JsonArray(siblings, JsonNode.Parse(branch.GetRawText())) });
    }

    /// <summary>
    /// One schema equivalent to <paramref name="schema"/> (which has allOf and/or $ref) with no allOf or $ref at its top.
    /// </summary>
    public static JsonElement Merge(JsonSchemaConverter converter, JsonElement schema, string path)
    {
        var parts = new List<(JsonObject Part, string Path)>();
        Flatten(converter, schema, path, parts, [], 0);
        // An alternative in one part: the allOf of the other parts with each alternative in turn.
        for (int i = 0; i < parts.Count; i++)
        {
            var keyword = parts[i].Part.ContainsKey("anyOf") ? "anyOf" : parts[i].Part.ContainsKey("oneOf") ? "oneOf" : null;
            if (keyword is null) continue;
            var alternatives = parts[i].Part[keyword] as JsonArray ?? throw JsonSchemaConverter.Error(JsonSchemaConverter.Pointer(parts[i].Path, keyword), "must be an array of schemas");
            var others = new JsonArray();
            for (int j = 0; j < parts.Count; j++)
            {
                var other = parts[j].Part.DeepClone().AsObject();
                if (j == i) other.Remove(keyword);
                others.Add(other);
            }
            var distributed = new JsonArray();
            foreach (var alternative in alternatives)
            {
                var all = (JsonArray)others.DeepClone();
                all.Add(alternative?.DeepClone());
                distributed.Add(new JsonObject { ["allOf"] = all });
            }
            return JsonSerializer.SerializeToElement(new JsonObject { [keyword] = distributed });
        }
        var merged = new JsonObject();
        foreach (var (part, partPath) in parts) MergeInto(merged, part, partPath);
        CheckAdditionalProperties(merged, parts);
        return JsonSerializer.SerializeToElement(merged);
    }

    static void Flatten(JsonSchemaConverter converter, JsonElement schema, string path, List<(JsonObject, string)> parts, HashSet<string> refs, int depth)
    {
        if (parts.Count > MaxParts) throw JsonSchemaConverter.Error(path, $"allOf with more than {MaxParts} parts");
        if (depth > JsonSchemaGrammar.MaxDepth) throw JsonSchemaConverter.Error(path, $"allOf and $ref nested deeper than {JsonSchemaGrammar.MaxDepth}");
        if (schema.ValueKind == JsonValueKind.True) return;
        if (schema.ValueKind == JsonValueKind.False) throw JsonSchemaConverter.Error(path, "schema false admits no value");
        if (schema.ValueKind != JsonValueKind.Object) throw JsonSchemaConverter.Error(path, "a schema must be an object or a boolean");
        // A $ref's target first: the keywords beside it refine it.
        if (schema.TryGetProperty("$ref", out var reference))
        {
            var refPath = JsonSchemaConverter.Pointer(path, "$ref");
            var target = reference.ValueKind == JsonValueKind.String ? reference.GetString()! : throw JsonSchemaConverter.Error(refPath, "must be a string");
            if (!refs.Add(target)) throw JsonSchemaConverter.Error(refPath, $"$ref '{target}' includes itself through allOf");
            Flatten(converter, converter.Resolve(target, refPath), target, parts, refs, depth + 1);
            refs.Remove(target);
        }
        var own = new JsonObject();
        foreach (var property in schema.EnumerateObject())
            if (property.Name is not ("allOf" or "$ref") && !JsonSchemaConverter.IsAnnotation(property.Name))
                own[property.Name] = JsonNode.Parse(property.Value.GetRawText());
        if (own.Count > 0) parts.Add((own, path));
        if (schema.TryGetProperty("allOf", out var allOf))
        {
            var allOfPath = JsonSchemaConverter.Pointer(path, "allOf");
            if (allOf.ValueKind != JsonValueKind.Array || allOf.GetArrayLength() == 0) throw JsonSchemaConverter.Error(allOfPath, "must be a non-empty array of schemas");
            int i = 0;
            foreach (var item in allOf.EnumerateArray()) Flatten(converter, item, JsonSchemaConverter.Pointer(allOfPath, i++), parts, refs, depth + 1);
        }
    }

    static void MergeInto(JsonObject merged, JsonObject part, string path)
    {
        foreach (var (keyword, value) in part)
        {
            var keywordPath = JsonSchemaConverter.Pointer(path, keyword);
            if (!merged.TryGetPropertyValue(keyword, out var existing))
            {
                merged[keyword] = value?.DeepClone();
                continue;
            }
            if (JsonNode.DeepEquals(existing, value)) continue;
            switch (keyword)
            {
                case "properties":
                    if (existing is not JsonObject existingProperties || value is not JsonObject properties)
                        throw JsonSchemaConverter.Error(keywordPath, "must be an object");
                    foreach (var (name, schema) in properties)
                        existingProperties[name] = existingProperties.TryGetPropertyValue(name, out var other)
                            ? new JsonObject { ["allOf"] = new JsonArray(other!.DeepClone(), schema?.DeepClone()) }
                            : schema?.DeepClone();
                    break;
                case "required":
                    var names = new JsonArray();
                    foreach (var name in Strings(existing, keywordPath).Union(Strings(value, keywordPath))) names.Add(name);
                    merged[keyword] = names;
                    break;
                case "type":
                    var types = Types(existing, keywordPath).Intersect(Types(value, keywordPath)).ToList();
                    if (Types(existing, keywordPath).Contains("number") && Types(value, keywordPath).Contains("integer")
                        || Types(existing, keywordPath).Contains("integer") && Types(value, keywordPath).Contains("number"))
                        types.Add("integer");
                    if (types.Count == 0) throw JsonSchemaConverter.Error(keywordPath, "allOf parts allow no common type");
                    var typeArray = new JsonArray();
                    foreach (var type in types.Distinct()) typeArray.Add(type);
                    merged[keyword] = typeArray;
                    break;
                case "enum":
                    var common = new JsonArray();
                    foreach (var item in (JsonArray)existing!)
                        if (((value as JsonArray) ?? throw JsonSchemaConverter.Error(keywordPath, "must be an array")).Any(v => JsonNode.DeepEquals(v, item)))
                            common.Add(item?.DeepClone());
                    if (common.Count == 0) throw JsonSchemaConverter.Error(keywordPath, "allOf parts share no enum value");
                    merged[keyword] = common;
                    break;
                case "items" or "additionalProperties" when existing is JsonObject && value is JsonObject:
                    merged[keyword] = new JsonObject { ["allOf"] = new JsonArray(existing.DeepClone(), value.DeepClone()) };
                    break;
                default:
                    if (TakeLargest.Contains(keyword) || TakeSmallest.Contains(keyword))
                    {
                        if (existing is not JsonValue a || value is not JsonValue b || !a.TryGetValue<decimal>(out var x) || !b.TryGetValue<decimal>(out var y))
                            throw JsonSchemaConverter.Error(keywordPath, "allOf parts disagree on it");
                        merged[keyword] = TakeLargest.Contains(keyword) ? Math.Max(x, y) : Math.Min(x, y);
                        break;
                    }
                    throw JsonSchemaConverter.Error(keywordPath, "allOf parts disagree on it");
            }
        }
    }

    /// <summary>
    /// A part that limits additional properties must declare every property of the merged object, or the merged
    /// grammar could write one that part rejects.
    /// </summary>
    static void CheckAdditionalProperties(JsonObject merged, List<(JsonObject Part, string Path)> parts)
    {
        if (merged["properties"] is not JsonObject properties) return;
        foreach (var (part, path) in parts)
        {
            if (!part.TryGetPropertyValue("additionalProperties", out var additional) || additional is JsonValue v && v.GetValueKind() == JsonValueKind.True)
                continue;
            var declared = part["properties"] as JsonObject;
            foreach (var (name, _) in properties)
                if (declared is null || !declared.ContainsKey(name))
                    throw JsonSchemaConverter.Error(JsonSchemaConverter.Pointer(path, "additionalProperties"),
                        $"allOf: property '{name}' of another part is not allowed here");
        }
    }

    static IEnumerable<string> Strings(JsonNode? node, string path) =>
        node is JsonArray array && array.All(item => item is JsonValue v && v.GetValueKind() == JsonValueKind.String)
            ? array.Select(item => item!.GetValue<string>())
            : throw JsonSchemaConverter.Error(path, "must be an array of strings");

    static List<string> Types(JsonNode? node, string path) => node switch
    {
        JsonValue v when v.GetValueKind() == JsonValueKind.String => [v.GetValue<string>()],
        JsonArray => Strings(node, path).ToList(),
        _ => throw JsonSchemaConverter.Error(path, "must be a type name or an array of them"),
    };
}

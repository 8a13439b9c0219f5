using System.Collections.Frozen;
using System.Collections.Immutable;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace ManagedLM.Grammars;

/// <summary>
/// One conversion of a schema to GBNF: the rules made so far (by name, in order), the rules of <c>$ref</c> targets, and
/// which <c>$ref</c> rules each rule may enter before it has consumed any input (a cycle there would never progress).
/// </summary>
internal sealed class JsonSchemaConverter
{
    const string Comma = "\",\" space";
    const string Quote = "\"\\\"\"";
    // Bounds the work of distributing anyOf over allOf, which can multiply branches.
    const int MaxVisits = 20_000;
    // Names an additional property must not spell nest one group per character in the grammar.
    const int MaxExcludedKeyLength = 256;

    static readonly FrozenSet<string> Annotations = FrozenSet.Create(StringComparer.Ordinal,
        "$schema", "$id", "$comment", "$defs", "definitions", "title", "description", "default", "examples",
        "readOnly", "writeOnly", "deprecated", "contentEncoding", "contentMediaType");

    static readonly FrozenSet<string> Supported = FrozenSet.Create(StringComparer.Ordinal,
        "type", "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "properties", "required", "additionalProperties",
        "items", "prefixItems", "additionalItems", "minItems", "maxItems", "minLength", "maxLength", "pattern", "format",
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum");

    static readonly ImmutableArray<string> ObjectKeywords = ["properties", "required", "additionalProperties"];
    static readonly ImmutableArray<string> ArrayKeywords = ["items", "prefixItems", "additionalItems", "minItems", "maxItems"];
    static readonly ImmutableArray<string> StringKeywords = ["minLength", "maxLength", "pattern", "format"];
    static readonly ImmutableArray<string> NumberKeywords = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"];

    static JsonElement TrueSchema => JsonSerializer.SerializeToElement(true);

    /// <summary>Keywords that describe without constraining (and "x-" extensions): ignored.</summary>
    internal static bool IsAnnotation(string keyword) => Annotations.Contains(keyword) || keyword.StartsWith("x-", StringComparison.Ordinal);

    readonly JsonElement _root;
    readonly Dictionary<string, string?> _rules = new(StringComparer.Ordinal);
    readonly List<string> _order = [];
    readonly Dictionary<string, string> _ruleByBody = new(StringComparer.Ordinal);
    readonly Dictionary<string, string> _refRules = new(StringComparer.Ordinal);
    readonly Dictionary<string, List<(string Rule, string Path)>> _leadingRefs = new(StringComparer.Ordinal);
    int _length;
    int _visits;

    JsonSchemaConverter(JsonElement root) => _root = root;

    public static string Convert(JsonElement schema)
    {
        var converter = new JsonSchemaConverter(schema);
        converter._rules["root"] = null;
        converter._order.Add("root");
        converter._refRules["#"] = "root";
        converter.Primitive("space");
        converter.SetBody("root", converter.VisitBody(schema, "#", "root", 0, "root"));
        converter.CheckLeadingCycles();
        var sb = new StringBuilder();
        foreach (var name in converter._order) sb.Append(name).Append(" ::= ").Append(converter._rules[name]).Append('\n');
        return sb.ToString();
    }

    internal JsonElement Root => _root;

    internal static JsonSchemaException Error(string path, string message) => new(path, message);

    // ---- rules ----

    string AddRule(string name, string body)
    {
        if (_ruleByBody.TryGetValue(body, out var same)) return same;
        string key = RuleName(name);
        for (int i = 1; _rules.TryGetValue(key, out var existing); i++)
        {
            if (existing == body) return key;
            key = RuleName(name) + i.ToString(CultureInfo.InvariantCulture);
        }
        SetBody(key, body);
        return key;
    }

    string Reserve(string name)
    {
        string key = RuleName(name);
        for (int i = 1; _rules.ContainsKey(key); i++) key = RuleName(name) + i.ToString(CultureInfo.InvariantCulture);
        _rules[key] = null;
        _order.Add(key);
        return key;
    }

    void SetBody(string key, string body)
    {
        if (!_rules.ContainsKey(key)) _order.Add(key);
        _rules[key] = body;
        _ruleByBody.TryAdd(body, key);
        _length += key.Length + body.Length + 6;
        if (_length > JsonSchemaGrammar.MaxGrammarLength)
            throw Error("#", $"the grammar would exceed {JsonSchemaGrammar.MaxGrammarLength} characters");
    }

    /// <summary>A rule name: letters, digits and '-'; never one of the primitive rules' names.</summary>
    static string RuleName(string name)
    {
        var sb = new StringBuilder(name.Length);
        foreach (char c in name)
        {
            if (char.IsAsciiLetterOrDigit(c)) sb.Append(c);
            else if (sb.Length > 0 && sb[^1] != '-') sb.Append('-');
        }
        var key = sb.ToString().TrimEnd('-');
        if (key.Length == 0) key = "schema";
        return JsonSchemaPrimitives.IsPrimitive(key) ? key + "-schema" : key;
    }

    string Primitive(string name)
    {
        foreach (var dependency in JsonSchemaPrimitives.Dependencies(name))
            if (!_rules.ContainsKey(dependency)) SetBody(dependency, JsonSchemaPrimitives.Body(dependency));
        return name;
    }

    /// <summary>A rule for <paramref name="schema"/>, or the expression itself when it is already a single rule name.</summary>
    string Visit(JsonElement schema, string path, string name, int depth, string? leading)
    {
        var body = VisitBody(schema, path, name, depth, leading);
        return IsRuleName(body) ? body : AddRule(name, body);
    }

    static bool IsRuleName(string expression) => expression.All(c => char.IsAsciiLetterOrDigit(c) || c == '-');

    // ---- schemas ----

    string VisitBody(JsonElement schema, string path, string name, int depth, string? leading)
    {
        if (depth > JsonSchemaGrammar.MaxDepth)
            throw Error(path, $"subschemas nested deeper than {JsonSchemaGrammar.MaxDepth}");
        if (++_visits > MaxVisits) throw Error(path, $"the schema expands to more than {MaxVisits} subschemas");
        switch (schema.ValueKind)
        {
            case JsonValueKind.True: return Primitive("value");
            case JsonValueKind.False: throw Error(path, "schema false admits no value");
            case JsonValueKind.Object: break;
            default: throw Error(path, $"a schema must be an object or a boolean, not {schema.ValueKind}");
        }
        foreach (var property in schema.EnumerateObject())
            if (!Supported.Contains(property.Name) && !IsAnnotation(property.Name))
                throw Error(Pointer(path, property.Name), $"keyword '{property.Name}' is not supported");

        bool hasRef = schema.TryGetProperty("$ref", out var reference);
        if (hasRef && !HasConstraintsBesides(schema, "$ref")) return VisitRef(reference, path, depth, leading);
        if (hasRef || schema.TryGetProperty("allOf", out _))
            return VisitBody(JsonSchemaAllOf.Merge(this, schema, path), path, name, depth + 1, leading);

        bool hasAnyOf = schema.TryGetProperty("anyOf", out var anyOf), hasOneOf = schema.TryGetProperty("oneOf", out var oneOf);
        if (hasAnyOf && hasOneOf) throw Error(path, "anyOf together with oneOf is not supported");
        if (hasAnyOf || hasOneOf) return VisitAlternatives(schema, hasAnyOf ? "anyOf" : "oneOf", hasAnyOf ? anyOf : oneOf, path, name, depth, leading);

        if (schema.TryGetProperty("const", out _) || schema.TryGetProperty("enum", out _)) return VisitEnum(schema, path);

        var types = Types(schema, path);
        if (types.Count == 0) return Primitive("value");
        if (types.Count == 1) return VisitTyped(schema, types[0], path, name, depth);
        // A typed value consumes input before any $ref inside it, so no leading rule is passed on.
        return string.Join(" | ", types.Select(type => VisitTypedRule(schema, type, path, name + "-" + type, depth + 1)).Distinct());
    }

    string VisitTypedRule(JsonElement schema, string type, string path, string name, int depth)
    {
        var body = VisitTyped(schema, type, path, name, depth);
        return IsRuleName(body) ? body : AddRule(name, body);
    }

    static bool HasConstraintsBesides(JsonElement schema, string keyword)
    {
        foreach (var property in schema.EnumerateObject())
            if (property.Name != keyword && Supported.Contains(property.Name)) return true;
        return false;
    }

    string VisitRef(JsonElement reference, string path, int depth, string? leading)
    {
        var target = reference.ValueKind == JsonValueKind.String ? reference.GetString()! : throw Error(Pointer(path, "$ref"), "must be a string");
        if (!_refRules.TryGetValue(target, out var rule))
        {
            var resolved = Resolve(target, Pointer(path, "$ref"));
            int slash = target.LastIndexOf('/');
            rule = Reserve(slash >= 0 ? UnescapePointerSegment(target[(slash + 1)..]) : "ref");
            _refRules[target] = rule;
            SetBody(rule, VisitBody(resolved, target, rule, depth + 1, rule));
        }
        if (leading is not null)
        {
            if (!_leadingRefs.TryGetValue(leading, out var edges)) _leadingRefs[leading] = edges = [];
            edges.Add((rule, Pointer(path, "$ref")));
        }
        return rule;
    }

    /// <summary>The subschema a local reference ("#" or "#/json/pointer") points at.</summary>
    internal JsonElement Resolve(string reference, string path)
    {
        if (reference == "#") return _root;
        if (!reference.StartsWith("#/", StringComparison.Ordinal))
            throw Error(path, $"$ref '{reference}' is not supported: only local references (#/...) are");
        var current = _root;
        foreach (var rawSegment in reference[2..].Split('/'))
        {
            var segment = UnescapePointerSegment(rawSegment);
            if (current.ValueKind == JsonValueKind.Object && current.TryGetProperty(segment, out var child)) current = child;
            else if (current.ValueKind == JsonValueKind.Array && int.TryParse(segment, NumberStyles.None, CultureInfo.InvariantCulture, out int index)
                && index < current.GetArrayLength()) current = current[index];
            else throw Error(path, $"$ref '{reference}' points at nothing");
        }
        return current;
    }

    static string UnescapePointerSegment(string segment) =>
        Uri.UnescapeDataString(segment).Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal);

    internal static string Pointer(string path, string segment) =>
        path + "/" + segment.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal);

    internal static string Pointer(string path, int index) => path + "/" + index.ToString(CultureInfo.InvariantCulture);

    void CheckLeadingCycles()
    {
        var state = new Dictionary<string, int>(StringComparer.Ordinal); // 1: on the stack, 2: done
        var stack = new List<string>();
        void Walk(string rule)
        {
            state[rule] = 1;
            stack.Add(rule);
            if (_leadingRefs.TryGetValue(rule, out var edges))
                foreach (var (next, path) in edges)
                {
                    if (state.GetValueOrDefault(next) == 1)
                    {
                        var cycle = string.Join(" -> ", stack.Skip(stack.IndexOf(next)).Append(next));
                        throw Error(path, $"$ref cycle that never consumes input: {cycle}");
                    }
                    if (state.GetValueOrDefault(next) == 0) Walk(next);
                }
            stack.RemoveAt(stack.Count - 1);
            state[rule] = 2;
        }
        foreach (var rule in _leadingRefs.Keys.Order(StringComparer.Ordinal).Prepend("root"))
            if (state.GetValueOrDefault(rule) == 0) Walk(rule);
    }

    string VisitAlternatives(JsonElement schema, string keyword, JsonElement branches, string path, string name, int depth, string? leading)
    {
        var keywordPath = Pointer(path, keyword);
        if (branches.ValueKind != JsonValueKind.Array || branches.GetArrayLength() == 0)
            throw Error(keywordPath, "must be a non-empty array of schemas");
        var list = branches.EnumerateArray().ToList();
        if (HasConstraintsBesides(schema, keyword))
            list = list.Select(branch => JsonSchemaAllOf.WithSiblings(schema, keyword, branch)).ToList();
        if (keyword == "oneOf") JsonSchemaOneOf.CheckExclusive(this, list, keywordPath);
        var alternatives = list.Select((branch, i) => Visit(branch, Pointer(keywordPath, i), name + "-" + i, depth + 1, leading));
        return string.Join(" | ", alternatives.Distinct());
    }

    string VisitEnum(JsonElement schema, string path)
    {
        List<JsonElement> values;
        string keyword;
        if (schema.TryGetProperty("const", out var constant))
        {
            if (schema.TryGetProperty("enum", out _)) throw Error(path, "const together with enum is not supported");
            (values, keyword) = ([constant], "const");
        }
        else
        {
            var list = schema.GetProperty("enum");
            if (list.ValueKind != JsonValueKind.Array || list.GetArrayLength() == 0) throw Error(Pointer(path, "enum"), "must be a non-empty array");
            (values, keyword) = (list.EnumerateArray().ToList(), "enum");
        }
        foreach (var property in schema.EnumerateObject())
            if (Supported.Contains(property.Name) && property.Name is not ("type" or "const" or "enum"))
                throw Error(Pointer(path, property.Name), $"{keyword} together with '{property.Name}' is not supported");
        if (schema.TryGetProperty("type", out _))
        {
            var types = Types(schema, path);
            values = values.Where(v => types.Any(t => JsonSchemaValues.HasType(v, t))).ToList();
            if (values.Count == 0) throw Error(Pointer(path, keyword), "no value has the schema's type");
        }
        var literals = values.Select(v => GbnfText.Literal(JsonSchemaValues.Canonical(v, Pointer(path, keyword)))).Distinct();
        return "(" + string.Join(" | ", literals) + ") space";
    }

    /// <summary>The types the schema allows: its "type", else those its type-specific keywords imply; empty: any.</summary>
    internal static List<string> Types(JsonElement schema, string path)
    {
        if (schema.TryGetProperty("type", out var type))
        {
            var types = new List<string>();
            if (type.ValueKind == JsonValueKind.String) types.Add(type.GetString()!);
            else if (type.ValueKind == JsonValueKind.Array && type.GetArrayLength() > 0)
            {
                foreach (var t in type.EnumerateArray())
                    types.Add(t.ValueKind == JsonValueKind.String ? t.GetString()! : throw Error(Pointer(path, "type"), "must hold type names"));
            }
            else throw Error(Pointer(path, "type"), "must be a type name or a non-empty array of them");
            foreach (var t in types)
                if (t is not ("object" or "array" or "string" or "integer" or "number" or "boolean" or "null"))
                    throw Error(Pointer(path, "type"), $"unknown type '{t}'");
            return types.Distinct().ToList();
        }
        var inferred = new List<string>();
        if (ObjectKeywords.Any(k => schema.TryGetProperty(k, out _))) inferred.Add("object");
        if (ArrayKeywords.Any(k => schema.TryGetProperty(k, out _))) inferred.Add("array");
        if (StringKeywords.Any(k => schema.TryGetProperty(k, out _))) inferred.Add("string");
        if (NumberKeywords.Any(k => schema.TryGetProperty(k, out _))) inferred.Add("number");
        return inferred;
    }

    string VisitTyped(JsonElement schema, string type, string path, string name, int depth) => type switch
    {
        "object" => ObjectBody(schema, path, name, depth),
        "array" => ArrayBody(schema, path, name, depth),
        "string" => StringBody(schema, path),
        "integer" => IntegerBody(schema, path),
        "number" => NumberBody(schema, path),
        "boolean" => Primitive("boolean"),
        _ => Primitive("null"),
    };

    // ---- objects ----

    string ObjectBody(JsonElement schema, string path, string name, int depth)
    {
        var properties = new List<(string Key, JsonElement Schema)>();
        if (schema.TryGetProperty("properties", out var declared))
        {
            if (declared.ValueKind != JsonValueKind.Object) throw Error(Pointer(path, "properties"), "must be an object");
            foreach (var property in declared.EnumerateObject()) properties.Add((property.Name, property.Value));
        }
        bool hasAdditional = schema.TryGetProperty("additionalProperties", out var additional);
        var required = new HashSet<string>(StringComparer.Ordinal);
        if (schema.TryGetProperty("required", out var requiredList))
        {
            if (requiredList.ValueKind != JsonValueKind.Array) throw Error(Pointer(path, "required"), "must be an array of names");
            foreach (var item in requiredList.EnumerateArray())
            {
                var key = item.ValueKind == JsonValueKind.String ? item.GetString()! : throw Error(Pointer(path, "required"), "must be an array of names");
                if (!required.Add(key) || properties.Any(p => p.Key == key)) continue;
                // Required but undeclared: an additional property, so additionalProperties says what its value may be.
                if (hasAdditional && additional.ValueKind == JsonValueKind.False)
                    throw Error(Pointer(path, "required"), $"required property '{key}' is not declared and additionalProperties is false");
                properties.Add((key, hasAdditional ? additional : TrueSchema));
            }
        }
        if (properties.Count == 0 && (!hasAdditional || additional.ValueKind == JsonValueKind.True)) return Primitive("object");

        var requiredKvs = new List<string>();
        var optionalKvs = new List<(string Key, string Rule, bool Repeats)>();
        foreach (var (key, propertySchema) in properties)
        {
            var valuePath = Pointer(Pointer(path, "properties"), key);
            if (propertySchema.ValueKind == JsonValueKind.False)
            {
                // A property that may not appear: never written, and still no additional property's name.
                if (required.Contains(key)) throw Error(valuePath, $"required property '{key}' has schema false");
                continue;
            }
            var value = Visit(propertySchema, valuePath, name + "-" + key, depth + 1, null);
            var kv = AddRule(name + "-" + key + "-kv", GbnfText.Literal(JsonSchemaValues.JsonString(key, valuePath)) + " space \":\" space " + value);
            if (required.Contains(key)) requiredKvs.Add(kv);
            else optionalKvs.Add((key, kv, false));
        }
        if (hasAdditional && additional.ValueKind != JsonValueKind.False)
        {
            var value = additional.ValueKind == JsonValueKind.True
                ? Primitive("value")
                : Visit(additional, Pointer(path, "additionalProperties"), name + "-additional", depth + 1, null);
            var key = properties.Count == 0
                ? Primitive("string")
                : AddRule(name + "-additional-key", Quote + " " + KeyNotIn(properties.Select(p => p.Key), Pointer(path, "additionalProperties")) + " " + Quote + " space");
            optionalKvs.Add(("additional", AddRule(name + "-additional-kv", key + " \":\" space " + value), true));
        }

        var body = new StringBuilder("\"{\" space");
        if (requiredKvs.Count > 0) body.Append(' ').AppendJoin(" " + Comma + " ", requiredKvs);
        if (optionalKvs.Count > 0)
        {
            var alternatives = Enumerable.Range(0, optionalKvs.Count).Select(i => OptionalChain(optionalKvs, i, false, name));
            var choice = string.Join(" | ", alternatives);
            body.Append(requiredKvs.Count > 0 ? $" ( {Comma} ( {choice} ) )?" : $" ( {choice} )?");
        }
        return body.Append(" \"}\" space").ToString();
    }

    /// <summary>Optional properties from index <paramref name="from"/> on, in order, any subset, comma separated.</summary>
    string OptionalChain(List<(string Key, string Rule, bool Repeats)> kvs, int from, bool firstIsOptional, string name)
    {
        var (key, rule, repeats) = kvs[from];
        var withComma = $"( {Comma} {rule} )";
        var text = firstIsOptional ? withComma + (repeats ? "*" : "?") : rule + (repeats ? " " + withComma + "*" : "");
        if (from + 1 < kvs.Count) text += " " + AddRule(name + "-" + key + "-rest", OptionalChain(kvs, from + 1, true, name));
        return text;
    }

    /// <summary>
    /// The characters of a property name that is none of <paramref name="keys"/>, written without escapes (so that no
    /// escaped spelling of a declared name slips through).
    /// </summary>
    string KeyNotIn(IEnumerable<string> keys, string path)
    {
        var root = new KeyTrie();
        foreach (var key in keys)
        {
            if (key.EnumerateRunes().Any(r => !IsRaw(r.Value))) continue; // never spelled by raw characters
            if (key.Length > MaxExcludedKeyLength)
                throw Error(path, $"property name longer than {MaxExcludedKeyLength} characters beside additionalProperties");
            var node = root;
            foreach (var rune in key.EnumerateRunes())
            {
                if (!node.Children.TryGetValue(rune.Value, out var child)) node.Children[rune.Value] = child = new KeyTrie();
                node = child;
            }
            node.IsKey = true;
        }
        var rawChar = Primitive("raw-char");
        string NotIn(KeyTrie node)
        {
            var alternatives = new List<string>();
            foreach (var (c, child) in node.Children.OrderBy(kv => kv.Key))
                alternatives.Add(GbnfText.Literal(char.ConvertFromUtf32(c)) + " " + NotIn(child));
            alternatives.Add(GbnfText.RawCharClassExcept(node.Children.Keys) + " " + rawChar + "*");
            var choice = "(" + string.Join(" | ", alternatives) + ")";
            return node.IsKey ? choice : choice + "?";
        }
        return NotIn(root);
    }

    static bool IsRaw(int c) => GbnfText.RawJsonStringChars.Any(r => r.Item1 <= c && c <= r.Item2);

    sealed class KeyTrie
    {
        public readonly Dictionary<int, KeyTrie> Children = [];
        public bool IsKey;
    }

    // ---- arrays ----

    string ArrayBody(JsonElement schema, string path, string name, int depth)
    {
        int min = Count(schema, "minItems", path) ?? 0;
        int? max = Count(schema, "maxItems", path);
        if (max < min) throw Error(Pointer(path, "maxItems"), $"maxItems {max} is below minItems {min}");

        List<JsonElement> prefix = [];
        JsonElement? rest;
        string restPath;
        bool hasItems = schema.TryGetProperty("items", out var items);
        if (schema.TryGetProperty("prefixItems", out var prefixItems) || (hasItems && items.ValueKind == JsonValueKind.Array))
        {
            bool draft2020 = prefixItems.ValueKind != JsonValueKind.Undefined;
            var list = draft2020 ? prefixItems : items;
            if (list.ValueKind != JsonValueKind.Array) throw Error(Pointer(path, "prefixItems"), "must be an array of schemas");
            prefix = list.EnumerateArray().ToList();
            // Items after the prefix only where a schema asks for them (as llama.cpp, absent means none).
            var after = draft2020 ? (hasItems ? items : default) : schema.TryGetProperty("additionalItems", out var additionalItems) ? additionalItems : default;
            restPath = Pointer(path, draft2020 ? "items" : "additionalItems");
            rest = after.ValueKind is JsonValueKind.Undefined or JsonValueKind.False ? null : after;
            if (rest is null && min > prefix.Count)
            {
                if (after.ValueKind == JsonValueKind.False) throw Error(Pointer(path, "minItems"), $"minItems {min} needs more items than the {prefix.Count} allowed");
                rest = TrueSchema;
            }
        }
        else
        {
            restPath = Pointer(path, "items");
            rest = hasItems ? (items.ValueKind == JsonValueKind.False ? null : items) : TrueSchema;
            if (rest is null && min > 0) throw Error(Pointer(path, "items"), $"items false allows no item but minItems is {min}");
        }

        int prefixUsed = max is { } m ? Math.Min(prefix.Count, m) : prefix.Count;
        string tail = "";
        if (rest is { } restSchema && (max is null || max > prefix.Count))
        {
            var item = Visit(restSchema, restPath, name + "-item", depth + 1, null);
            int restMin = Math.Max(min - prefix.Count, 0);
            int? restMax = max - prefix.Count;
            tail = prefix.Count == 0
                ? Repetition(item, restMin, restMax)
                : $"( {Comma} {item} ){Quantifier(restMin, restMax)}";
        }
        for (int i = prefixUsed - 1; i >= 0; i--)
        {
            var item = Visit(prefix[i], Pointer(Pointer(path, schema.TryGetProperty("prefixItems", out _) ? "prefixItems" : "items"), i), name + "-" + i, depth + 1, null);
            var element = i > 0 ? Comma + " " + item : item;
            if (tail.Length > 0) element += " " + (i + 1 < min || i + 1 == prefix.Count ? tail : "( " + tail + " )?");
            tail = element;
        }
        if (prefixUsed > 0 && min == 0) tail = "( " + tail + " )?";
        return tail.Length == 0 ? "\"[\" space \"]\" space" : $"\"[\" space {tail} \"]\" space";
    }

    /// <summary>Between <paramref name="min"/> and <paramref name="max"/> items, comma separated.</summary>
    static string Repetition(string item, int min, int? max)
    {
        if (max == 0) return "";
        if (min == 0) return $"( {item} ( {Comma} {item} ){Quantifier(0, max - 1)} )?";
        return $"{item} ( {Comma} {item} ){Quantifier(min - 1, max - 1)}";
    }

    static string Quantifier(int min, int? max) => (min, max) switch
    {
        (0, null) => "*",
        (1, null) => "+",
        (_, null) => $"{{{min},}}",
        (0, 1) => "?",
        _ when min == max => $"{{{min}}}",
        _ => $"{{{min},{max}}}",
    };

    static int? Count(JsonElement schema, string keyword, string path)
    {
        if (!schema.TryGetProperty(keyword, out var value)) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetDecimal(out var count) || count < 0 || count != decimal.Truncate(count))
            throw Error(Pointer(path, keyword), "must be a non-negative integer");
        if (count > JsonSchemaGrammar.MaxRepetition)
            throw Error(Pointer(path, keyword), $"{keyword} {count} is above the limit of {JsonSchemaGrammar.MaxRepetition}");
        return (int)count;
    }

    // ---- strings ----

    string StringBody(JsonElement schema, string path)
    {
        int? min = Count(schema, "minLength", path), max = Count(schema, "maxLength", path);
        if (max < min) throw Error(Pointer(path, "maxLength"), $"maxLength {max} is below minLength {min}");
        bool hasLength = min is not null || max is not null;
        if (schema.TryGetProperty("pattern", out var pattern))
        {
            var patternPath = Pointer(path, "pattern");
            if (hasLength || schema.TryGetProperty("format", out _))
                throw Error(patternPath, "pattern together with minLength, maxLength or format is not supported");
            if (pattern.ValueKind != JsonValueKind.String) throw Error(patternPath, "must be a string");
            var expression = RegexGrammar.ToGbnf(pattern.GetString()!, patternPath, "char", JsonSchemaGrammar.MaxRepetition);
            if (expression.Contains("char*", StringComparison.Ordinal)) Primitive("char"); // unanchored
            return expression.Length == 0 ? $"{Quote} {Quote} space" : $"{Quote} {expression} {Quote} space";
        }
        if (schema.TryGetProperty("format", out var format))
        {
            var formatPath = Pointer(path, "format");
            if (hasLength) throw Error(formatPath, "format together with minLength or maxLength is not supported");
            var formatName = format.ValueKind == JsonValueKind.String ? format.GetString()! : throw Error(formatPath, "must be a string");
            if (!JsonSchemaPrimitives.IsFormat(formatName)) throw Error(formatPath, $"format '{formatName}' is not supported");
            return Primitive(formatName + "-string");
        }
        if (!hasLength) return Primitive("string");
        if (max == 0) return $"{Quote} {Quote} space";
        return $"{Quote} {Primitive("char")}{Quantifier(min ?? 0, max)} {Quote} space";
    }

    // ---- numbers ----

    string IntegerBody(JsonElement schema, string path)
    {
        var bounds = NumericBounds.Read(schema, path);
        if (bounds.IsEmpty) return Primitive("integer");
        long cap = NumberRangeGrammar.MaxMagnitude;
        long min = -cap, max = cap;
        if (bounds.Low is { } low)
        {
            decimal lowest = bounds.LowInclusive ? decimal.Ceiling(low) : decimal.Floor(low) + 1;
            if (lowest > cap) throw Error(bounds.LowPath!, $"{low} is beyond the {NumberRangeGrammar.MaxIntegerDigits}-digit integers the grammar writes");
            min = (long)Math.Max(lowest, -cap);
        }
        if (bounds.High is { } high)
        {
            decimal highest = bounds.HighInclusive ? decimal.Floor(high) : decimal.Ceiling(high) - 1;
            if (highest < -cap) throw Error(bounds.HighPath!, $"{high} is beyond the {NumberRangeGrammar.MaxIntegerDigits}-digit integers the grammar writes");
            max = (long)Math.Min(highest, cap);
        }
        var expression = NumberRangeGrammar.Integers(min, max)
            ?? throw Error(path, $"no integer lies between {bounds.Describe()}");
        return $"( {expression} ) space";
    }

    string NumberBody(JsonElement schema, string path)
    {
        var bounds = NumericBounds.Read(schema, path);
        if (bounds.IsEmpty) return Primitive("number");
        decimal limit = NumberRangeGrammar.MaxMagnitude + 1m;
        decimal? low = bounds.Low, high = bounds.High;
        if (low >= limit) throw Error(bounds.LowPath!, $"{low} is beyond the {NumberRangeGrammar.MaxIntegerDigits}-digit numbers the grammar writes");
        if (high <= -limit) throw Error(bounds.HighPath!, $"{high} is beyond the {NumberRangeGrammar.MaxIntegerDigits}-digit numbers the grammar writes");
        if (low <= -limit) low = null;
        if (high >= limit) high = null;
        var expression = NumberRangeGrammar.Decimals(low, bounds.LowInclusive, high, bounds.HighInclusive)
            ?? throw Error(path, $"no number lies between {bounds.Describe()}");
        return $"( {expression} ) space";
    }
}

using System.Text.Json;

namespace ManagedLM.Grammars;

/// <summary>
/// Turns a JSON Schema into GBNF grammar text (llama.cpp's dialect, start rule <c>root</c>) whose every sentence is a
/// JSON document that validates against the schema. Follows llama.cpp's json-schema-to-grammar: properties in the
/// order given (required ones first), bounded whitespace between tokens, no additional properties unless
/// <c>additionalProperties</c> asks for them, at most <see cref="MaxRepetition"/> repetitions of anything. Integer and
/// number bounds are enforced exactly, digit by digit; numerals have at most 16 integer and 16 fraction digits.
/// Supported: <c>type</c> (one or an array), <c>properties</c>, <c>required</c>, <c>additionalProperties</c>,
/// <c>enum</c>, <c>const</c>, <c>anyOf</c>, <c>oneOf</c> (when its branches provably exclude each other), <c>allOf</c>
/// (merged), local <c>$ref</c> with <c>$defs</c>/<c>definitions</c> (recursion included), <c>items</c>,
/// <c>prefixItems</c>, <c>minItems</c>, <c>maxItems</c>, <c>minLength</c>, <c>maxLength</c>, <c>pattern</c> (the
/// regular subset of ECMA-262), <c>format</c> (date, time, date-time, uuid, email, hostname, ipv4), <c>minimum</c>,
/// <c>maximum</c>, <c>exclusiveMinimum</c>, <c>exclusiveMaximum</c>.
/// A keyword this converter cannot honour is a <see cref="JsonSchemaException"/> naming it and its path — never ignored.
/// Only annotations (title, description, default, examples, ...) and "x-" extensions are ignored.
/// </summary>
public static class JsonSchemaGrammar
{
    /// <summary>Largest count a schema may ask to repeat something (<c>maxItems</c>, <c>maxLength</c>, <c>{m,n}</c>, ...).</summary>
    public const int MaxRepetition = 4096;

    /// <summary>Deepest nesting of subschemas accepted.</summary>
    public const int MaxDepth = 64;

    /// <summary>Largest grammar, in characters, a schema may produce.</summary>
    public const int MaxGrammarLength = 1 << 20;

    /// <summary>GBNF for JSON mode: any JSON object.</summary>
    public static string JsonObjectGbnf { get; } = JsonSchemaConverter.Convert(JsonDocument.Parse("""{"type":"object"}""").RootElement);

    /// <summary>GBNF text for the JSON Schema in <paramref name="schemaJson"/>.</summary>
    /// <exception cref="JsonSchemaException">The text is not JSON, or the schema is invalid or unsupported.</exception>
    public static string ToGbnf(string schemaJson)
    {
        ArgumentNullException.ThrowIfNull(schemaJson);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(schemaJson, new JsonDocumentOptions { MaxDepth = 2 * MaxDepth + 8 });
        }
        catch (JsonException e)
        {
            throw new JsonSchemaException("#", $"not valid JSON: {e.Message}");
        }
        using (document) return ToGbnf(document.RootElement);
    }

    /// <summary>GBNF text for the JSON Schema <paramref name="schema"/>.</summary>
    /// <exception cref="JsonSchemaException">The schema is invalid or unsupported.</exception>
    public static string ToGbnf(JsonElement schema)
    {
        try
        {
            return JsonSchemaConverter.Convert(schema);
        }
        catch (JsonException e)
        {
            // Re-reading a part of the schema (allOf merging) went past System.Text.Json's own depth limit.
            throw new JsonSchemaException("#", $"not valid JSON: {e.Message}");
        }
    }
}

using System.Text.Json;
using ManagedLM.Grammars;

namespace ManagedLM.Server;

/// <summary>
/// The grammar a request constrains its reply with, from OpenAI's <c>response_format</c> (<c>text</c>,
/// <c>json_object</c>, <c>json_schema</c> with <c>{name, schema, strict}</c>) or llama.cpp's <c>grammar</c> (GBNF) and
/// <c>json_schema</c> fields; at most one of them. Invalid or unsupported schemas and grammars are a 400 naming the field
/// and the problem.
/// </summary>
internal static class RequestGrammar
{
    /// <summary>The request's grammar, as GBNF text and parsed, or null when it asks for free text.</summary>
    public static RequestConstraint? Read(JsonElement root)
    {
        var found = new List<(string Param, Func<RequestConstraint> Build)>();
        if (ApiRequest.String(root, "grammar") is { } gbnf)
            found.Add(("grammar", () => Parse("grammar", () => gbnf)));
        if (ApiRequest.Object(root, "json_schema") is { } schema)
            found.Add(("json_schema", () => FromSchema("json_schema", schema)));
        if (ApiRequest.Object(root, "response_format") is { } format && FromResponseFormat(format) is { } build)
            found.Add(("response_format", build));
        if (found.Count > 1)
            throw new ApiException(400, $"Give at most one of response_format, json_schema and grammar; this request has {string.Join(" and ", found.Select(f => f.Param))}.",
                found[1].Param);
        return found.Count == 0 ? null : found[0].Build();
    }

    // null for {"type": "text"}.
    private static Func<RequestConstraint>? FromResponseFormat(JsonElement format)
    {
        string type = ApiRequest.String(format, "type", "response_format.type")
            ?? throw new ApiException(400, "response_format.type is required: text, json_object or json_schema.", "response_format.type");
        switch (type)
        {
            case "text":
                return null;
            case "json_object":
                // llama.cpp also takes a schema here.
                if (ApiRequest.Object(format, "schema", "response_format.schema") is { } inline)
                    return () => FromSchema("response_format.schema", inline);
                return () => Parse("response_format", () => JsonSchemaGrammar.JsonObjectGbnf);
            case "json_schema":
                var spec = ApiRequest.Object(format, "json_schema", "response_format.json_schema")
                    ?? throw new ApiException(400, "response_format.json_schema is required for type json_schema.", "response_format.json_schema");
                ApiRequest.String(spec, "name", "response_format.json_schema.name");
                ApiRequest.Bool(spec, "strict", "response_format.json_schema.strict");
                if (!spec.TryGetProperty("schema", out var schema) || schema.ValueKind == JsonValueKind.Null)
                    return () => Parse("response_format", () => JsonSchemaGrammar.JsonObjectGbnf);
                if (schema.ValueKind is not (JsonValueKind.Object or JsonValueKind.True))
                    throw new ApiException(400, "response_format.json_schema.schema must be an object.", "response_format.json_schema.schema");
                return () => FromSchema("response_format.json_schema.schema", schema);
            default:
                throw new ApiException(400, $"response_format.type \"{type}\" is not one of text, json_object and json_schema.", "response_format.type");
        }
    }

    private static RequestConstraint FromSchema(string param, JsonElement schema) => Parse(param, () => JsonSchemaGrammar.ToGbnf(schema));

    // The GBNF text build gives and its grammar, parsed here (once, through the grammar cache) so that an invalid one is a 400.
    private static RequestConstraint Parse(string param, Func<string> build)
    {
        try
        {
            string gbnf = build();
            return new RequestConstraint(gbnf, Grammar.FromGbnfCached(gbnf));
        }
        catch (JsonSchemaException e)
        {
            throw new ApiException(400, $"{param}: {e.Message}", param, code: "invalid_schema");
        }
        catch (GrammarException e)
        {
            throw new ApiException(400, $"{param}: {e.Message}", param, code: "invalid_grammar");
        }
    }
}

/// <summary>A request's grammar: its GBNF text (to embed beside tool calls) and the grammar parsed from it.</summary>
internal sealed record RequestConstraint(string Gbnf, Grammar Grammar);

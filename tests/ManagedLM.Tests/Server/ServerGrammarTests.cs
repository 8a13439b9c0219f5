using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using ManagedLM.Tests.Grammars;

namespace ManagedLM.Tests.Server;

/// <summary>
/// Structured output over HTTP: OpenAI's response_format (json_object, json_schema) and llama.cpp's grammar and
/// json_schema fields constrain the reply; invalid or conflicting ones are a 400 naming the field.
/// </summary>
public class ServerGrammarTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const string Schema = """
        {"type": "object", "properties": {"name": {"type": "string", "maxLength": 8}, "age": {"type": "integer", "minimum": 1, "maximum": 9},
         "pet": {"enum": ["cat", "dog"]}}, "required": ["name", "age", "pet"]}
        """;

    private HttpClient Http => fixture.Http;

    private static string Chat(string extra, int seed) =>
        $$"""{"messages": [{"role": "user", "content": "Tell me about Lily."}], "max_tokens": 300, "temperature": 1, "seed": {{seed}}, {{extra}}}""";

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task Json_schema_response_format_replies_with_valid_json(int seed)
    {
        var r = await Api.Post(Http, "/v1/chat/completions",
            Chat("\"response_format\": {\"type\": \"json_schema\", \"json_schema\": {\"name\": \"person\", \"strict\": true, \"schema\": " + Schema + "}}", seed));
        Assert.Equal(HttpStatusCode.OK, r.Status);
        var choice = r.Body.GetProperty("choices")[0];
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        string content = choice.GetProperty("message").GetProperty("content").GetString()!;
        Assert.True(JsonSchemaTestValidator.IsValid(Schema, content), content);
    }

    [Fact]
    public async Task Json_object_response_format_replies_with_a_json_object_or_its_prefix()
    {
        var r = await Api.Post(Http, "/v1/chat/completions", Chat("""  "response_format": {"type": "json_object"}  """, 4));
        var choice = r.Body.GetProperty("choices")[0];
        string content = choice.GetProperty("message").GetProperty("content").GetString()!;
        if (choice.GetProperty("finish_reason").GetString() == "stop")
        {
            using var doc = JsonDocument.Parse(content);
            Assert.Equal(JsonValueKind.Object, doc.RootElement.ValueKind);
        }
        else
        {
            Assert.StartsWith("{", content);
        }
    }

    [Fact]
    public async Task Text_response_format_changes_nothing()
    {
        string plain = """{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 12, "temperature": 0}""";
        var a = await Api.Post(Http, "/v1/chat/completions", plain);
        var b = await Api.Post(Http, "/v1/chat/completions", plain.Replace("\"temperature\": 0", "\"temperature\": 0, \"response_format\": {\"type\": \"text\"}"));
        Assert.Equal(Content(a), Content(b));
    }

    [Fact]
    public async Task Grammar_field_constrains_a_completion()
    {
        var r = await Api.Post(Http, "/v1/completions",
            """{"prompt": "Once upon a time", "max_tokens": 50, "temperature": 1, "seed": 9, "grammar": "root ::= (\"yes\" | \"no\") \", \" [a-z]{2,6} \".\""}""");
        Assert.Equal(HttpStatusCode.OK, r.Status);
        Assert.Matches(new Regex("^(yes|no), [a-z]{2,6}\\.$"), r.Body.GetProperty("choices")[0].GetProperty("text").GetString()!);
    }

    [Fact]
    public async Task Json_schema_field_constrains_a_completion()
    {
        var r = await Api.Post(Http, "/v1/completions", $$"""{"prompt": "Once", "max_tokens": 300, "temperature": 1, "seed": 5, "json_schema": {{Schema}}}""");
        Assert.Equal(HttpStatusCode.OK, r.Status);
        string text = r.Body.GetProperty("choices")[0].GetProperty("text").GetString()!;
        Assert.True(JsonSchemaTestValidator.IsValid(Schema, text), text);
    }

    [Fact]
    public async Task Streamed_structured_reply_adds_up_to_valid_json()
    {
        var events = await Api.Stream(Http, "/v1/chat/completions",
            Chat("\"stream\": true, \"response_format\": {\"type\": \"json_schema\", \"json_schema\": {\"name\": \"p\", \"schema\": " + Schema + "}}", 6));
        Assert.Equal("[DONE]", events[^1]);
        var text = new StringBuilder();
        foreach (string e in events.SkipLast(1))
        {
            using var doc = JsonDocument.Parse(e);
            if (doc.RootElement.GetProperty("choices")[0].GetProperty("delta").TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String)
                text.Append(c.GetString());
        }
        Assert.True(JsonSchemaTestValidator.IsValid(Schema, text.ToString()), text.ToString());
    }

    [Theory]
    [InlineData("""  "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "array", "uniqueItems": true}}}  """,
        "response_format.json_schema.schema", "uniqueItems")]
    [InlineData("""  "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "strange"}}}  """,
        "response_format.json_schema.schema", "strange")]
    [InlineData("""  "response_format": {"type": "xml"}  """, "response_format.type", "xml")]
    [InlineData("""  "response_format": {"type": "json_schema"}  """, "response_format.json_schema", "required")]
    [InlineData("""  "response_format": "json"  """, "response_format", "object")]
    [InlineData("""  "grammar": "root ::= \"x"  """, "grammar", "line 1, column 10")]
    [InlineData("""  "grammar": "root ::= undefined-rule"  """, "grammar", "undefined-rule")]
    [InlineData("""  "json_schema": {"$ref": "http://example.com/s.json"}  """, "json_schema", "$ref")]
    [InlineData("""  "grammar": "root ::= \"x\"", "json_schema": {}  """, "json_schema", "at most one")]
    [InlineData("""  "functions": [{"name": "f"}]  """, "functions", "not supported")]
    [InlineData("""  "audio": {"voice": "alloy"}  """, "audio", "not supported")]
    [InlineData("""  "modalities": ["text", "audio"]  """, "modalities", "text")]
    public async Task Invalid_or_conflicting_constraints_are_a_400_naming_the_field(string extra, string param, string message)
    {
        var r = await Api.Post(Http, "/v1/chat/completions", Chat(extra, 1));
        Assert.Equal(HttpStatusCode.BadRequest, r.Status);
        Assert.Equal(param, r.ErrorParam);
        Assert.Contains(message, r.ErrorMessage);
    }

    private static string Content(JsonReply r) => r.Body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
}

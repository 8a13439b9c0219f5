using System.Text;
using ManagedLM.Grammars;

namespace ManagedLM.Tests.Grammars;

public class JsonSchemaErrorTests
{
    static JsonSchemaException Fails(string schema) => Assert.Throws<JsonSchemaException>(() => JsonSchemaGrammar.ToGbnf(schema));

    [Theory]
    [InlineData("""{"type":"object",""", "#", "not valid JSON")]
    [InlineData("""{"type":"array","uniqueItems":true}""", "#/uniqueItems", "keyword 'uniqueItems' is not supported")]
    [InlineData("""{"properties":{"a":{"not":{"type":"string"}}}}""", "#/properties/a/not", "keyword 'not' is not supported")]
    [InlineData("""{"if":{},"then":{}}""", "#/if", "keyword 'if' is not supported")]
    [InlineData("""{"type":"object","patternProperties":{"^x":{}}}""", "#/patternProperties", "keyword 'patternProperties' is not supported")]
    [InlineData("""{"type":"object","minProperties":1}""", "#/minProperties", "keyword 'minProperties' is not supported")]
    [InlineData("""{"type":"array","contains":{"const":1}}""", "#/contains", "keyword 'contains' is not supported")]
    [InlineData("""{"type":"string","nullable":true}""", "#/nullable", "keyword 'nullable' is not supported")]
    [InlineData("""{"properties":{"a/b~c":{"multipleOf":2}}}""", "#/properties/a~1b~0c/multipleOf", "keyword 'multipleOf' is not supported")]
    [InlineData("""{"properties":{"a":false},"required":["a"]}""", "#/properties/a", "required property 'a' has schema false")]
    [InlineData("""{"properties":{"a":{}},"required":["b"],"additionalProperties":false}""", "#/required", "required property 'b' is not declared and additionalProperties is false")]
    [InlineData("""{"type":"array","items":false,"prefixItems":[false]}""", "#/prefixItems/0", "schema false admits no value")]
    [InlineData("false", "#", "schema false admits no value")]
    [InlineData("3", "#", "a schema must be an object or a boolean")]
    [InlineData("""{"type":"int"}""", "#/type", "unknown type 'int'")]
    [InlineData("""{"type":"string","format":"uri"}""", "#/format", "format 'uri' is not supported")]
    [InlineData("""{"$ref":"https://example.com/s.json"}""", "#/$ref", "only local references")]
    [InlineData("""{"$ref":"#/$defs/missing"}""", "#/$ref", "points at nothing")]
    [InlineData("""{"type":"array","minItems":5000}""", "#/minItems", "minItems 5000 is above the limit of 4096")]
    [InlineData("""{"type":"string","maxLength":100000}""", "#/maxLength", "maxLength 100000 is above the limit of 4096")]
    [InlineData("""{"type":"array","minItems":3,"maxItems":2}""", "#/maxItems", "maxItems 2 is below minItems 3")]
    [InlineData("""{"type":"string","minLength":-1}""", "#/minLength", "must be a non-negative integer")]
    [InlineData("""{"type":"array","items":false,"minItems":1}""", "#/items", "items false allows no item but minItems is 1")]
    [InlineData("""{"type":"array","prefixItems":[{}],"items":false,"minItems":2}""", "#/minItems", "needs more items than the 1 allowed")]
    [InlineData("""{"enum":[]}""", "#/enum", "must be a non-empty array")]
    [InlineData("""{"type":"string","enum":["a"],"minLength":1}""", "#/minLength", "enum together with 'minLength' is not supported")]
    [InlineData("""{"type":"integer","const":"a"}""", "#/const", "no value has the schema's type")]
    [InlineData("""{"anyOf":[]}""", "#/anyOf", "must be a non-empty array")]
    [InlineData("""{"anyOf":[{}],"oneOf":[{}]}""", "#", "anyOf together with oneOf is not supported")]
    [InlineData("""{"oneOf":[{"type":"string"},{"type":"string","maxLength":3}]}""", "#/oneOf", "oneOf branches 0 and 1 may both match")]
    [InlineData("""{"oneOf":[{"type":"number"},{"type":"integer"}]}""", "#/oneOf", "oneOf branches 0 and 1 may both match")]
    [InlineData("""{"allOf":[{"type":"string"},{"type":"integer"}]}""", "#/allOf/1/type", "allOf parts allow no common type")]
    [InlineData("""{"allOf":[{"type":"string","pattern":"^a"},{"pattern":"b$"}]}""", "#/allOf/1/pattern", "allOf parts disagree on it")]
    [InlineData("""{"allOf":[{"enum":[1,2]},{"enum":[3]}]}""", "#/allOf/1/enum", "allOf parts share no enum value")]
    [InlineData("""{"allOf":[{"properties":{"a":{}},"additionalProperties":false},{"properties":{"b":{}}}]}""", "#/allOf/0/additionalProperties", "property 'b' of another part is not allowed here")]
    [InlineData("""{"allOf":[{"$ref":"#"}]}""", "#/allOf/0/$ref", "$ref '#' includes itself through allOf")]
    public void Invalid_or_unsupported_schemas_are_errors_naming_keyword_and_path(string schema, string path, string message)
    {
        var error = Fails(schema);
        Assert.Equal(path, error.Path);
        Assert.Contains(message, error.Message);
        Assert.StartsWith($"JSON schema at {path}: ", error.Message);
        Assert.IsAssignableFrom<ArgumentException>(error);
    }

    [Theory]
    [InlineData("""{"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"}""", "a -> b -> a")]
    [InlineData("""{"$defs":{"e":{"anyOf":[{"$ref":"#/$defs/e"},{"type":"integer"}]}},"$ref":"#/$defs/e"}""", "e -> e")]
    [InlineData("""{"anyOf":[{"type":"null"},{"$ref":"#"}]}""", "root -> root")]
    [InlineData("""{"type":["object","null"],"$defs":{"x":{"oneOf":[{"type":"null"},{"$ref":"#/$defs/y"}]},"y":{"type":"array","items":{"$ref":"#/$defs/x"}}},"properties":{"p":{"$ref":"#/$defs/z"}},"allOf":[{"$ref":"#/$defs/z"}]}""", "")]
    public void Ref_cycles_that_consume_nothing_are_errors_not_hangs(string schema, string cycle)
    {
        if (cycle.Length == 0)
        {
            Assert.Contains("points at nothing", Fails(schema).Message);
            return;
        }
        var error = Fails(schema);
        Assert.Contains("$ref cycle that never consumes input: " + cycle, error.Message);
    }

    [Fact]
    public void Recursion_through_objects_and_arrays_is_fine()
    {
        var gbnf = JsonSchemaGrammar.ToGbnf("""{"$defs":{"x":{"anyOf":[{"type":"null"},{"$ref":"#/$defs/y"}]},"y":{"type":"array","items":{"$ref":"#/$defs/x"}}},"$ref":"#/$defs/x"}""");
        var grammar = new JsonSchemaGbnfRecognizer(gbnf);
        Assert.True(grammar.Accepts("[[null,[]],null]"));
        Assert.False(grammar.Accepts("[1]"));
    }

    [Fact]
    public void Deep_schemas_are_an_error_not_a_stack_overflow()
    {
        var items = new StringBuilder();
        for (int i = 0; i < 100; i++) items.Append("{\"type\":\"array\",\"items\":");
        items.Append("{}").Append('}', 100);
        Assert.Contains("nested deeper than 64", Fails(items.ToString()).Message);

        var properties = new StringBuilder();
        for (int i = 0; i < 500; i++) properties.Append("{\"properties\":{\"a\":");
        properties.Append("{}").Append('}', 1000);
        Assert.Contains("not valid JSON", Fails(properties.ToString()).Message);
    }

    [Fact]
    public void Schemas_that_would_make_huge_grammars_are_errors()
    {
        var words = Enumerable.Range(0, 1500).Select(i => "\"" + new string((char)('a' + i % 26), 800) + i + "\"");
        var error = Fails("{\"enum\":[" + string.Join(",", words) + "]}");
        Assert.Contains("the grammar would exceed 1048576 characters", error.Message);

        // allOf over parts with alternatives multiplies branches: 8^6 combinations.
        var part = "{\"anyOf\":[" + string.Join(",", Enumerable.Range(0, 8).Select(i => $"{{\"minimum\":{i}}}")) + "]}";
        var blowUp = Fails("{\"allOf\":[" + string.Join(",", Enumerable.Repeat(part, 6)) + "]}");
        Assert.Contains("expands to more than 20000 subschemas", blowUp.Message);

        var longName = new string('k', 300);
        var named = Fails($"{{\"properties\":{{\"{longName}\":{{}}}},\"additionalProperties\":true}}");
        Assert.Equal("#/additionalProperties", named.Path);
        Assert.Contains("property name longer than 256 characters", named.Message);
    }
}

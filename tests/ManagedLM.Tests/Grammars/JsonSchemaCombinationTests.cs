using System.Globalization;
using ManagedLM.Grammars;

namespace ManagedLM.Tests.Grammars;

public class JsonSchemaCombinationTests
{
    [Fact]
    public void OneOf_branches_told_apart_by_required_properties_are_accepted()
    {
        JsonSchemaAssert.GrammarMatches("""{"oneOf":[{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]},{"type":"object","properties":{"b":{"type":"integer"}},"required":["b"]}]}""",
            ["""{"a":1}""", """{"b":2}"""], ["""{"a":1,"b":2}""", "{}"]);
    }

    [Fact]
    public void OneOf_branches_told_apart_by_type_or_constant_are_accepted()
    {
        JsonSchemaAssert.GrammarMatches("""{"oneOf":[{"type":"string"},{"type":"integer"},{"const":true},{"enum":[false,null]}]}""",
            ["\"x\"", "5", "true", "false", "null"], ["1.5", "[]"]);
    }

    [Fact]
    public void AnyOf_with_sibling_keywords_applies_them_to_every_branch()
    {
        JsonSchemaAssert.GrammarMatches("""{"type":"object","properties":{"id":{"type":"integer","minimum":1}},"required":["id"],"anyOf":[{"properties":{"name":{"type":"string"}},"required":["name"]},{"properties":{"code":{"type":"integer"}},"required":["code"]}]}""",
            ["""{"id":1,"name":"x"}""", """{"id":2,"code":7}"""], ["""{"id":1}""", """{"id":0,"name":"x"}"""]);
    }

    [Fact]
    public void Ref_with_sibling_keywords_is_their_allOf()
    {
        JsonSchemaAssert.GrammarMatches("""{"$defs":{"base":{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]}},"$ref":"#/$defs/base","properties":{"b":{"type":"boolean"}},"required":["b"]}""",
            ["""{"a":1,"b":true}"""], ["""{"a":1}""", """{"b":true}"""]);
    }

    [Fact]
    public void AllOf_with_alternatives_is_distributed()
    {
        JsonSchemaAssert.GrammarMatches("""{"allOf":[{"type":"object","properties":{"x":{"type":"integer","minimum":0,"maximum":5}},"required":["x"]},{"anyOf":[{"properties":{"x":{"minimum":3}}},{"properties":{"y":{"type":"null"}},"required":["y"]}]}]}""",
            ["""{"x":3}""", """{"x":0,"y":null}"""], ["""{"x":2}""", """{"x":6,"y":null}"""]);
    }

    [Fact]
    public void AllOf_merges_nested_property_schemas_and_tightens_bounds()
    {
        JsonSchemaAssert.GrammarMatches("""{"allOf":[{"type":"object","properties":{"s":{"type":"string","minLength":1,"maxLength":5}},"required":["s"]},{"properties":{"s":{"maxLength":2},"n":{"type":["integer","string"]}}},{"properties":{"n":{"type":"number","exclusiveMaximum":10}}}]}""",
            ["""{"s":"ab"}""", """{"s":"a","n":9}"""], ["""{"s":"abc"}""", """{"s":""}""", """{"s":"a","n":10}""", """{"s":"a","n":"x"}"""]);
    }

    [Fact]
    public void Draft4_items_array_and_additionalItems()
    {
        JsonSchemaAssert.GrammarMatches("""{"type":"array","items":[{"type":"integer"},{"type":"string"}],"additionalItems":{"type":"null"},"maxItems":4}""",
            ["[]", "[1]", "[1,\"a\"]", "[1,\"a\",null,null]"], ["[1,\"a\",null,null,null]", "[\"a\"]", "[1,\"a\",2]"]);
    }

    [Fact]
    public void Type_array_with_per_type_keywords()
    {
        JsonSchemaAssert.GrammarMatches("""{"type":["string","integer","boolean","null","array"],"maxLength":2,"minimum":10,"maxItems":1,"items":{"type":"boolean"}}""",
            ["\"ab\"", "10", "true", "null", "[]", "[false]"], ["\"abc\"", "9", "[true,true]"]);
    }

    [Fact]
    public void Properties_with_schema_false_are_never_written()
    {
        JsonSchemaAssert.GrammarMatches("""{"type":"object","properties":{"a":false,"b":{"type":"integer"}},"additionalProperties":{"type":"string"}}""",
            ["{}", """{"b":1}""", """{"b":1,"c":"x"}"""], ["""{"a":"x"}""", """{"b":1,"a":"x"}"""]);
    }

    [Fact]
    public void Required_names_without_property_schemas_take_any_value()
    {
        JsonSchemaAssert.GrammarMatches("""{"type":"object","required":["x"]}""", ["""{"x":1}""", """{"x":{"y":[true]}}"""], ["{}", """{"y":1}"""]);
        // Undeclared, so additionalProperties governs its value.
        JsonSchemaAssert.GrammarMatches("""{"type":"object","properties":{"a":{"type":"null"}},"required":["x"],"additionalProperties":{"type":"integer"}}""",
            ["""{"x":1}""", """{"x":1,"a":null,"y":2}"""], ["""{"x":"s"}""", "{}"]);
    }

    [Fact]
    public void Property_names_and_enum_strings_with_escapes_are_written_as_json()
    {
        JsonSchemaAssert.GrammarMatches("""{"type":"object","properties":{"a\"b\\c\nd":{"enum":["q\"r","\u00e9\t"]}},"required":["a\"b\\c\nd"]}""",
            ["""{"a\"b\\c\nd":"q\"r"}""", """{"a\"b\\c\nd":"é\t"}"""], ["""{"a\"b\\c\nd":"qr"}"""]);
    }

    [Fact]
    public void Random_number_bounds_admit_only_numbers_in_range()
    {
        var random = new Random(2024);
        for (int trial = 0; trial < 60; trial++)
        {
            decimal RandomBound() => Math.Round((decimal)(random.NextDouble() * 200 - 100), random.Next(0, 5));
            decimal a = RandomBound(), b = RandomBound();
            if (a > b) (a, b) = (b, a);
            bool integer = random.Next(3) == 0;
            bool loExclusive = random.Next(2) == 0, hiExclusive = random.Next(2) == 0;
            if (a == b) loExclusive = hiExclusive = false;
            string lo = random.Next(5) == 0 ? "" : $",\"{(loExclusive ? "exclusiveMinimum" : "minimum")}\":{a.ToString(CultureInfo.InvariantCulture)}";
            string hi = random.Next(5) == 0 ? "" : $",\"{(hiExclusive ? "exclusiveMaximum" : "maximum")}\":{b.ToString(CultureInfo.InvariantCulture)}";
            string schema = $"{{\"type\":\"{(integer ? "integer" : "number")}\"{lo}{hi}}}";
            string gbnf;
            try
            {
                gbnf = JsonSchemaGrammar.ToGbnf(schema);
            }
            catch (JsonSchemaException e) when (integer && e.Message.Contains("no integer lies between"))
            {
                continue;
            }
            var grammar = new JsonSchemaGbnfRecognizer(gbnf);
            for (int i = 0; i < 40; i++)
            {
                var sentence = grammar.Sample(random);
                Assert.True(JsonSchemaTestValidator.IsValid(schema, sentence), $"sampled {sentence} violates {schema}");
            }
            foreach (var edge in new[] { a, b })
                foreach (var delta in new[] { -0.001m, 0m, 0.001m, -1m, 1m })
                {
                    var x = edge + delta;
                    if (integer && x != decimal.Truncate(x)) continue;
                    var numeral = integer ? ((long)x).ToString(CultureInfo.InvariantCulture) : x.ToString(CultureInfo.InvariantCulture);
                    Assert.True(JsonSchemaTestValidator.IsValid(schema, numeral) == grammar.Accepts(numeral), $"{numeral} for {schema}");
                }
        }
    }
}

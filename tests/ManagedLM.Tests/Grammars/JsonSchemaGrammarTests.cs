using System.Text.Json;
using ManagedLM.Grammars;

namespace ManagedLM.Tests.Grammars;

public class JsonSchemaGrammarTests
{
    static JsonSchemaGbnfRecognizer Grammar(string schema) => new(JsonSchemaGrammar.ToGbnf(schema));

    public static TheoryData<string, string[], string[]> Cases => new()
    {
        {
            """{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":0}},"required":["name","age"]}""",
            ["""{"name":"Ann","age":31}""", """{ "name": "A\"b\\c\u00e9", "age": 0 }""", "{\n  \"name\": \"x\",\n  \"age\": 7\n}"],
            ["""{"name":"Ann"}""", """{"name":"Ann","age":-1}""", """{"name":1,"age":1}"""]
        },
        {
            """{"properties":{"a":{"type":"boolean"},"b":{"type":"null"},"c":{"const":"k"}}}""",
            ["{}", """{"a":true}""", """{"b":null}""", """{"a":false,"c":"k"}""", """{"a":true,"b":null,"c":"k"}""", """{"c":"k"}"""],
            ["""{"c":"q"}""", """{"a":true,}"""]
        },
        {
            """{"type":"object","properties":{"id":{"type":"integer"}},"required":["id"],"additionalProperties":{"type":"number","maximum":10}}""",
            ["""{"id":1}""", """{"id":1,"x":2.5,"y":-3}""", """{"id":1,"idx":1}""", """{"id":1,"i":1}"""],
            ["""{"id":1,"x":"s"}""", """{"id":1,"x":11}""", """{"x":1}"""]
        },
        {
            """{"type":"object","additionalProperties":{"type":"string"}}""",
            ["{}", """{"a":"b"}""", """{"a":"b","c":"d"}"""],
            ["""{"a":1}"""]
        },
        {
            """{"type":"object","properties":{"a":{"type":"integer"}},"additionalProperties":true}""",
            ["""{"a":1}""", """{"z":[1,{"q":null}]}""", """{"a":1,"b":"x"}"""],
            ["""{"a":"x"}""", """{"b":"x","a":"y"}"""]
        },
        {
            """{"type":"array","items":{"type":"integer","minimum":1,"maximum":3},"minItems":2,"maxItems":4}""",
            ["[1,2]", "[3, 3, 3]", "[1,2,3,1]"],
            ["[]", "[1]", "[1,2,3,1,2]", "[1,4]", "[1,,2]"]
        },
        {
            """{"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":{"type":"boolean"},"maxItems":3}""",
            ["[]", """["a"]""", """["a",1]""", """["a",1,true]"""],
            ["""[1]""", """["a","b"]""", """["a",1,true,false]""", """["a",1,2]"""]
        },
        {
            """{"type":"array","prefixItems":[{"const":1},{"const":2}],"minItems":3}""",
            ["[1,2,3]", """[1,2,"x",{}]"""],
            ["[1,2]", "[2,1,3]"]
        },
        {
            """{"type":"string","minLength":2,"maxLength":3}""",
            ["\"ab\"", "\"abc\"", "\"a\\nb\"", "\"\\u00e9\\u00e9\"", "\"😀😀\""],
            ["\"a\"", "\"abcd\"", "\"\""]
        },
        {
            """{"enum":["red","green",3,null,{"a":[1]}]}""",
            ["\"red\"", "3", "null", """{"a":[1]}"""],
            ["\"blue\"", "4", "\"3\""]
        },
        {
            """{"type":"string","enum":["a","b",1]}""",
            ["\"a\"", "\"b\""],
            ["1", "\"c\""]
        },
        {
            """{"type":["integer","null"],"maximum":5}""",
            ["5", "-3", "null"],
            ["6", "\"x\"", "5.5"]
        },
        {
            """{"anyOf":[{"type":"string","maxLength":1},{"type":"array","items":{"type":"null"}}]}""",
            ["\"a\"", "[]", "[null,null]"],
            ["\"ab\"", "[1]"]
        },
        {
            """{"oneOf":[{"type":"object","properties":{"kind":{"const":"circle"},"r":{"type":"number"}},"required":["kind","r"]},{"type":"object","properties":{"kind":{"const":"square"},"side":{"type":"number"}},"required":["kind","side"]}]}""",
            ["""{"kind":"circle","r":1.5}""", """{"kind":"square","side":2}"""],
            ["""{"kind":"circle","side":2}""", """{"kind":"square","r":1}"""]
        },
        {
            """{"allOf":[{"type":"object","properties":{"a":{"type":"integer","minimum":0}},"required":["a"]},{"properties":{"a":{"maximum":9},"b":{"type":"string"}}}]}""",
            ["""{"a":0}""", """{"a":9,"b":"x"}"""],
            ["""{"a":10}""", """{"b":"x"}""", """{"a":-1}"""]
        },
        {
            """{"$defs":{"node":{"type":"object","properties":{"value":{"type":"integer"},"next":{"anyOf":[{"$ref":"#/$defs/node"},{"type":"null"}]}},"required":["value","next"]}},"$ref":"#/$defs/node"}""",
            ["""{"value":1,"next":null}""", """{"value":1,"next":{"value":2,"next":{"value":3,"next":null}}}"""],
            ["""{"value":1}""", """{"value":1,"next":{"value":2}}"""]
        },
        {
            """{"type":"object","properties":{"children":{"type":"array","items":{"$ref":"#"}}},"required":["children"]}""",
            ["""{"children":[]}""", """{"children":[{"children":[]},{"children":[{"children":[]}]}]}"""],
            ["""{"children":[{}]}"""]
        },
        {
            """{"definitions":{"Pos":{"type":"integer","minimum":1}},"type":"array","items":{"$ref":"#/definitions/Pos"}}""",
            ["[1,2]", "[]"],
            ["[0]"]
        },
        {
            """{"type":"string","format":"date"}""",
            ["\"2024-02-28\"", "\"1999-12-31\"", "\"2023-04-30\""],
            ["\"2024-02-30\"", "\"2023-04-31\"", "\"2023-13-01\"", "\"2023-1-01\""]
        },
        {
            """{"type":"string","format":"date-time"}""",
            ["\"2024-01-05T10:20:30Z\"", "\"2024-01-05T23:59:59.123+05:30\""],
            ["\"2024-01-05 10:20:30Z\"", "\"2024-01-05T24:00:00Z\"", "\"2024-01-05T10:20:30\""]
        },
        {
            """{"type":"string","format":"uuid"}""",
            ["\"123e4567-e89b-12d3-a456-426614174000\""],
            ["\"123e4567e89b12d3a456426614174000\"", "\"123e4567-e89b-12d3-a456-42661417400g\""]
        },
        {
            """{"type":"string","format":"email"}""",
            ["\"a.b+c@example.com\"", "\"x@y.io\""],
            ["\"a..b@example.com\"", "\"@example.com\"", "\"a@b\"", "\"a@-b.com\""]
        },
        {
            """{"type":"string","format":"ipv4"}""",
            ["\"192.168.0.1\"", "\"255.255.255.255\"", "\"0.0.0.0\""],
            ["\"256.1.1.1\"", "\"01.1.1.1\"", "\"1.1.1\""]
        },
        {
            """{"type":"string","format":"hostname"}""",
            ["\"example.com\"", "\"a-b.c.d.e\"", "\"localhost\""],
            ["\"-a.com\"", "\"a..b\"", "\"a_b.com\""]
        },
        {
            """{"type":"string","format":"time"}""",
            ["\"23:59:59Z\"", "\"00:00:00.5-12:30\""],
            ["\"24:00:00Z\"", "\"12:60:00Z\"", "\"12:00:00\""]
        },
        {
            "true",
            ["1", "\"s\"", "[1,[2]]", """{"a":{"b":null}}""", "-0.5e+3", "false"],
            ["", "tru", "[1,]", "{a:1}"]
        },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Grammar_accepts_valid_instances_rejects_invalid_ones_and_writes_only_valid_ones(string schema, string[] valid, string[] invalid) =>
        JsonSchemaAssert.GrammarMatches(schema, valid, invalid);

    [Fact]
    public void Properties_keep_their_order_with_required_ones_first()
    {
        var grammar = Grammar("""{"type":"object","properties":{"b":{"type":"integer"},"a":{"type":"integer"},"c":{"type":"integer"}},"required":["c","a"]}""");
        Assert.True(grammar.Accepts("""{"a":1,"c":2}"""));
        Assert.True(grammar.Accepts("""{"a":1,"c":2,"b":3}"""));
        Assert.False(grammar.Accepts("""{"c":2,"a":1}"""));
        Assert.False(grammar.Accepts("""{"b":3,"a":1,"c":2}"""));
    }

    [Fact]
    public void Undeclared_properties_are_written_only_where_additionalProperties_asks_for_them()
    {
        var closedByDefault = Grammar("""{"type":"object","properties":{"a":{"type":"integer"}}}""");
        Assert.True(closedByDefault.Accepts("""{"a":1}"""));
        Assert.False(closedByDefault.Accepts("""{"a":1,"b":2}"""));
        Assert.False(closedByDefault.Accepts("""{"b":2}"""));
        var open = Grammar("""{"type":"object","properties":{"a":{"type":"integer"}},"additionalProperties":true}""");
        Assert.True(open.Accepts("""{"a":1,"b":2}"""));
        // An extra key never spells a declared one, escaped or not.
        Assert.False(open.Accepts("""{"a":1,"a":"x"}"""));
        Assert.False(open.Accepts("""{"\u0061":"x"}"""));
    }

    [Fact]
    public void Whitespace_between_tokens_is_bounded()
    {
        var grammar = Grammar("""{"type":"array","items":{"type":"integer"}}""");
        Assert.True(grammar.Accepts("[1, 2,\n 3]"));
        Assert.True(grammar.Accepts("[\n\n" + new string(' ', 20) + "1]"));
        Assert.False(grammar.Accepts("[\n\n" + new string(' ', 21) + "1]"));
        Assert.False(grammar.Accepts("[1,\n\n\n2]"));
    }

    [Fact]
    public void Json_mode_accepts_any_object_and_nothing_else()
    {
        var grammar = new JsonSchemaGbnfRecognizer(JsonSchemaGrammar.JsonObjectGbnf);
        Assert.True(grammar.Accepts("{}"));
        Assert.True(grammar.Accepts("""{"a":[1,2,{"b":null}],"c":"d","e":-1.5e3,"f":true}"""));
        Assert.False(grammar.Accepts("[]"));
        Assert.False(grammar.Accepts("\"x\""));
        Assert.False(grammar.Accepts("""{"a":}"""));
    }

    [Fact]
    public void Output_is_gbnf_with_a_root_rule_and_primitive_rules_only_as_needed()
    {
        var gbnf = JsonSchemaGrammar.ToGbnf("""{"type":"object","properties":{"n":{"type":"integer","minimum":1,"maximum":12}},"required":["n"]}""");
        Assert.StartsWith("root ::= ", gbnf);
        var rules = new JsonSchemaGbnfRecognizer(gbnf).RuleNames;
        Assert.Contains("space", rules);
        Assert.DoesNotContain("string", rules);
        Assert.DoesNotContain("value", rules);
    }

    [Fact]
    public void Element_and_text_overloads_agree()
    {
        const string schema = """{"type":"array","items":{"enum":[1,2]}}""";
        using var document = JsonDocument.Parse(schema);
        Assert.Equal(JsonSchemaGrammar.ToGbnf(schema), JsonSchemaGrammar.ToGbnf(document.RootElement));
    }

    [Fact]
    public void A_def_named_like_a_primitive_rule_does_not_replace_it()
    {
        const string schema = """{"$defs":{"string":{"type":"integer"}},"type":"array","items":{"anyOf":[{"$ref":"#/$defs/string"},{"type":"string"}]}}""";
        JsonSchemaAssert.GrammarMatches(schema, ["[1,\"a\"]", "[]"], ["[1.5]", "[true]"]);
    }
}

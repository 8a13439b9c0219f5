using System.Text.Json.Nodes;
using ManagedLM.Chat;
using ManagedLM.Chat.Jinja;

namespace ManagedLM.Tests.Chat;

/// <summary>The Jinja subset, construct by construct, with minja's semantics where they differ from Python Jinja2.</summary>
public class JinjaTemplateTests
{
    private static string R(string template, string? json = null, TemplateOptions? options = null, RenderLimits? limits = null)
    {
        var vars = json is null ? new JinjaDict() : (JinjaDict)Values.FromJson(JsonNode.Parse(json))!;
        return JinjaTemplate.Parse(template, options).Render(vars.Keys.Select(k => KeyValuePair.Create((string)k, vars.Get(k))), limits);
    }

    [Theory]
    [InlineData("{{ 1 + 2 * 3 }}", "7")]
    [InlineData("{{ (1 + 2) * 3 }}", "9")]
    [InlineData("{{ 7 // 2 }}|{{ 7 % 3 }}|{{ 2 ** 3 }}|{{ 7 / 2 }}", "3|1|8.0|3")]
    [InlineData("{{ 1.5 + 1 }}", "2.5")]
    [InlineData("{{ -3 + 1 }}", "-2")]
    [InlineData("{{ 'a' ~ 1 ~ none }}", "a1None")]
    [InlineData("{{ 'a' + none }}|{{ 'x' + true }}", "aNone|xTrue")]
    [InlineData("{{ none }}|{{ undefined_name }}|{{ true }}", "||True")]
    [InlineData("{{ [1, 'a', none] }}", "[1, 'a', null]")]
    [InlineData("{{ {'k': \"it's\"} }}", "{'k': \"it's\"}")]
    [InlineData("{{ 'ab' * 3 }}", "ababab")]
    [InlineData("{{ [1, 2] + [3] }}", "[1, 2, 3]")]
    [InlineData("{{ 1 if true else 2 }}{{ 3 if false }}", "1")]
    [InlineData("{{ 'b' in 'abc' }}{{ 2 in [1, 2] }}{{ 'k' in {'k': 1} }}{{ 3 not in [1] }}", "TrueTrueTrueTrue")]
    [InlineData("{{ 1 == 1.0 }}{{ 'a' < 'b' }}{{ 2 >= 3 }}{{ [1, 2] == [1, 2] }}", "TrueTrueFalseTrue")]
    [InlineData("{{ not false and (true or x.y) }}", "True")]
    [InlineData("{{ 0 or 'fallback' }}|{{ 'x' and 'y' }}", "fallback|True")]
    public void Expressions_evaluate_as_minja_does(string template, string expected) => Assert.Equal(expected, R(template));

    [Theory]
    [InlineData("{{ s[1:3] }}|{{ s[-2:] }}|{{ s[::-1] }}|{{ l[1:] }}|{{ l[-1] }}", "bc|de|edcba|[2, 3]|3")]
    [InlineData("{{ d.a }}|{{ d['b'] }}|{{ d.missing is defined }}|{{ d.items() }}", "1|2|False|[['a', 1], ['b', 2]]")]
    [InlineData("{{ d.get('a') }}|{{ d.get('z', 'dflt') }}|{{ d.keys() }}|{{ d.values() }}", "1|dflt|['a', 'b']|[1, 2]")]
    public void Subscripts_slices_and_mapping_methods(string template, string expected) =>
        Assert.Equal(expected, R(template, """{"s": "abcde", "l": [1, 2, 3], "d": {"a": 1, "b": 2}}"""));

    [Theory]
    [InlineData("{{ '  x \\t'|trim }}|{{ 'aBc'|upper }}|{{ 'aBc'|lower }}|{{ 'hello world'|title }}|{{ 'hELLO'|capitalize }}", "x|ABC|abc|Hello World|Hello")]
    [InlineData("{{ [3, 1, 2]|length }}|{{ 'héllo'|length }}|{{ {'a': 1}|length }}", "3|6|1")]
    [InlineData("{{ ['a', 'b']|join(', ') }}|{{ [1, 2]|join }}|{{ [1, 2]|first }}|{{ [1, 2]|last }}", "a, b|12|1|2")]
    [InlineData("{{ x|default('d') }}|{{ ''|default('d') }}|{{ ''|default('d', true) }}", "d||d")]
    [InlineData("{{ 'a-b-a'|replace('a', 'x') }}|{{ 'a-b-a'.replace('a', 'x', 1) }}", "x-b-x|x-b-a")]
    [InlineData("{{ [1, 2, 2, 1]|unique|list }}|{{ 'ab'|list }}|{{ 3|string }}|{{ '42'|int + 1 }}|{{ 'x'|safe }}", "[1, 2]|['a', 'b']|3|43|x")]
    [InlineData("{{ {'b': 1, 'a': [1, 'é']}|tojson }}", "{\"b\": 1, \"a\": [1, \"é\"]}")]
    [InlineData("{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }}", "{\"a\": 2, \"b\": 1}")]
    [InlineData("{{ {'a': [1, 2]}|tojson(indent=2) }}", "{\n  \"a\": [\n    1,\n    2\n  ]\n}")]
    [InlineData("{{ 'line1\\nline2'|indent(2) }}|{{ 'a\\nb'|indent(2, first=true) }}", "line1\n  line2|  a\n  b")]
    [InlineData("{{ {'b': 2, 'a': 1}|dictsort }}|{{ {'k': 'v'}|items|list }}", "[['a', 1], ['b', 2]]|[['k', 'v']]")]
    [InlineData("{{ [1, 2, 3, 4]|select('odd')|list }}|{{ [1, 2, 3, 4]|reject('even')|list }}|{{ [1, 2]|reject('equalto', 1)|list }}", "[1, 3]|[1, 3]|[2]")]
    [InlineData("{{ [3, 1, 2]|sort }}|{{ [1, 2]|reverse }}|{{ [1, 2, 3]|sum }}|{{ range(3)|list }}|{{ range(1, 7, 2)|list }}", "[1, 2, 3]|[2, 1]|6|[0, 1, 2]|[1, 3, 5]")]
    public void Filters(string template, string expected) => Assert.Equal(expected, R(template));

    [Fact]
    public void Attribute_filters_over_lists_of_mappings()
    {
        const string data = """{"tools": [{"type": "function", "name": "a"}, {"type": "code", "name": "b"}, {"name": "c"}]}""";
        Assert.Equal("['a']|['b', 'c']|['a', 'b', 'c']|['function', 'code', 'x']|['function', 'code']",
            R("{{ tools|selectattr('type', 'equalto', 'function')|map(attribute='name')|list }}|" +
              "{{ tools|rejectattr('type', 'equalto', 'function')|map(attribute='name')|list }}|" +
              "{{ tools|map(attribute='name')|list }}|{{ tools|map(attribute='type', default='x')|list }}|" +
              "{{ tools|selectattr('type', 'defined')|map(attribute='type')|list }}", data));
    }

    [Theory]
    [InlineData("{{ s.startswith('ab') }}{{ s.endswith('x') }}{{ s.upper() }}{{ ' p '.strip() }}{{ 'xxpxx'.strip('x') }}", "TrueFalseABCpp")]
    [InlineData("{{ 'a,b,,c'.split(',') }}|{{ 'a b  c'.split() }}|{{ 'a-b'.split('-', 1) }}", "['a', 'b', '', 'c']|['a', 'b', 'c']|['a', 'b']")]
    [InlineData("{{ ' a'.lstrip() }}|{{ 'a '.rstrip() }}|{{ 'hello world'.title() }}|{{ 'ab'.capitalize() }}", "a|a|Hello World|Ab")]
    [InlineData("{{ '{} and {name}'.format(1, name='x') }}", "1 and x")]
    public void String_methods(string template, string expected) => Assert.Equal(expected, R(template, """{"s": "abc"}"""));

    [Theory]
    [InlineData("{{ x is defined }}{{ y is defined }}{{ y is none }}{{ n is none }}{{ n is defined }}", "TrueFalseTrueTrueFalse")]
    [InlineData("{{ x is string }}{{ 1 is number }}{{ 1 is integer }}{{ 1.5 is float }}{{ l is iterable }}{{ d is mapping }}{{ l is sequence }}", "TrueTrueTrueTrueTrueTrueTrue")]
    [InlineData("{{ x is not string }}{{ true is boolean }}{{ 0 is false }}{{ 'a' is true }}", "FalseTrueTrueTrue")]
    public void Tests_with_none_counting_as_undefined(string template, string expected) =>
        Assert.Equal(expected, R(template, """{"x": "s", "n": null, "l": [1], "d": {}}"""));

    [Fact]
    public void If_elif_else_and_for_with_loop_variables_and_else()
    {
        Assert.Equal("b", R("{% if x == 1 %}a{% elif x == 2 %}b{% else %}c{% endif %}", """{"x": 2}"""));
        Assert.Equal("1/3:a:first 2/3:b: 3/3:c:last ", R(
            "{% for v in l %}{{ loop.index }}/{{ loop.length }}:{{ v }}:{% if loop.first %}first{% elif loop.last %}last{% endif %} {% endfor %}",
            """{"l": ["a", "b", "c"]}"""));
        Assert.Equal("0-2 1-1 2-0 ", R("{% for v in l %}{{ loop.index0 }}-{{ loop.revindex0 }} {% endfor %}", """{"l": [1, 2, 3]}"""));
        Assert.Equal("empty", R("{% for v in l %}{{ v }}{% else %}empty{% endfor %}", """{"l": []}"""));
        Assert.Equal("2,4,", R("{% for v in l if v % 2 == 0 %}{{ v }},{% endfor %}", """{"l": [1, 2, 3, 4]}"""));
        Assert.Equal("a=1;b=2;", R("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", """{"d": {"a": 1, "b": 2}}"""));
        Assert.Equal("12", R("{% for v in [1, 2, 3, 4] %}{% if v == 3 %}{% break %}{% endif %}{{ v }}{% endfor %}"));
        Assert.Equal("134", R("{% for v in [1, 2, 3, 4] %}{% if v == 2 %}{% continue %}{% endif %}{{ v }}{% endfor %}"));
        Assert.Equal("a b a ", R("{% for v in [1, 2, 3] %}{{ loop.cycle('a', 'b') }} {% endfor %}"));
    }

    [Fact]
    public void Set_scopes_namespaces_and_blocks()
    {
        Assert.Equal("2", R("{% set x = 1 %}{% set x = x + 1 %}{{ x }}"));
        // A loop's assignments stay in the loop; a namespace carries values out.
        Assert.Equal("0|3", R("{% set n = 0 %}{% set ns = namespace(total=0) %}{% for v in [1, 2] %}{% set n = n + v %}{% set ns.total = ns.total + v %}{% endfor %}{{ n }}|{{ ns.total }}"));
        Assert.Equal("[ab]", R("{% set s %}a{{ 'b' }}{% endset %}[{{ s }}]"));
        Assert.Equal("1-2", R("{% set a, b = [1, 2] %}{{ a }}-{{ b }}"));
        // As in minja, the loop variable keeps the last item after the loop.
        Assert.Equal("3", R("{% for m in [1, 2, 3] %}{% endfor %}{{ m }}"));
    }

    [Fact]
    public void Macros_calls_and_filter_blocks()
    {
        Assert.Equal("<x=1 y=2><x=3 y=9>", R("{% macro p(x, y=9) %}<x={{ x }} y={{ y }}>{% endmacro %}{{ p(1, 2) }}{{ p(x=3) }}"));
        Assert.Equal("[inner]", R("{% macro wrap() %}[{{ caller() }}]{% endmacro %}{% call wrap() %}inner{% endcall %}"));
        Assert.Equal("HELLO", R("{% filter upper %}hello{% endfilter %}"));
        Assert.Equal("3", R("{% macro count(n) %}{% if n > 0 %}{{ count(n - 1) }}{% else %}3{% endif %}{% endmacro %}{{ count(5) }}"));
    }

    [Fact]
    public void Whitespace_control_and_trim_and_lstrip_blocks()
    {
        Assert.Equal("a|b", R("a  {{- '|' -}}  \n b"));
        // trim_blocks drops the newline after a block tag; lstrip_blocks the indentation before one.
        Assert.Equal("    x\ny\n", R("{% if true %}\n    x\n{% endif %}\n    {% if true %}\ny\n    {% endif %}\n",
            options: TemplateOptions.ChatDefaults with { KeepTrailingNewline = true }));
        Assert.Equal("\n    x\n\n    \ny\n    \n", R("{% if true %}\n    x\n{% endif %}\n    {% if true %}\ny\n    {% endif %}\n",
            options: new TemplateOptions { TrimBlocks = false, LStripBlocks = false, KeepTrailingNewline = true }));
        Assert.Equal("a\nb", R("a\n{# comment #}\nb"));
        Assert.Equal("ab", R("a\n{#- comment -#}\nb"));
        // The final newline goes unless kept.
        Assert.Equal("x", R("x\n"));
    }

    [Fact]
    public void Raise_exception_carries_the_template_message()
    {
        var e = Assert.Throws<TemplateException>(() => R("line one\n{{ raise_exception('Roles must alternate user/assistant') }}"));
        Assert.Equal("Roles must alternate user/assistant", e.Message);
        Assert.True(e.RaisedByTemplate);
        Assert.Equal(2, e.Line);
    }

    [Theory]
    [InlineData("{% if x %}unterminated", 1, 1)]
    [InlineData("ok\n{{ 1 + }}", 2)]
    [InlineData("{% for %}{% endfor %}", 1)]
    [InlineData("{{ x.y.z }}", 1)]
    [InlineData("{% endif %}", 1)]
    [InlineData("{{ 'unterminated }}", 1)]
    [InlineData("{# no end", 1)]
    [InlineData("{{ foo() }}", 1)]
    [InlineData("{{ 1 < 'a' }}", 1)]
    [InlineData("{% set x = [] %}{{ x.nope() }}", 1)]
    public void Errors_name_the_line_and_column(string template, int line, int column = 0)
    {
        var e = Assert.Throws<TemplateException>(() => R(template));
        Assert.Equal(line, e.Line);
        Assert.True(e.Column >= 1);
        if (column > 0)
            Assert.Equal(column, e.Column);
        Assert.False(e.RaisedByTemplate);
        Assert.Contains($"line {line}", e.MessageWithLocation);
    }

    [Theory]
    [InlineData("{% for i in range(100000000) %}{% endfor %}")]
    [InlineData("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}")]
    [InlineData("{{ 'x' * 100000000 }}")]
    [InlineData("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}")]
    [InlineData("{% for i in range(5000) %}{% for j in range(5000) %}{% endfor %}{% endfor %}")]
    public void Hostile_templates_stop_within_their_budget(string template)
    {
        var limits = new RenderLimits { MaxOutputLength = 1 << 20, MaxSteps = 100_000, MaxCallDepth = 64 };
        var e = Assert.Throws<TemplateException>(() => R(template, limits: limits));
        Assert.False(e.RaisedByTemplate);
    }

    [Fact]
    public void Strftime_now_formats_the_given_instant()
    {
        var t = ChatTemplate.Parse("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%Y-%m-%d %H:%M:%S %A %B %j') }}");
        string s = t.Render([], new ChatTemplateOptions { Now = new DateTime(2024, 7, 26, 13, 5, 9, DateTimeKind.Utc) });
        Assert.Equal("26 Jul 2024|2024-07-26 13:05:09 Friday July 208", s);
    }

    [Fact]
    public void A_template_renders_from_many_threads_at_once()
    {
        var t = JinjaTemplate.Parse("{% set ns = namespace(n=0) %}{% for v in l %}{% set ns.n = ns.n + v %}{% endfor %}{{ ns.n }}");
        var results = new string[64];
        Parallel.For(0, 64, i =>
        {
            var list = new JinjaList(Enumerable.Range(0, i + 1).Select(v => (object?)(long)v));
            results[i] = t.Render([KeyValuePair.Create<string, object?>("l", list)]);
        });
        for (int i = 0; i < 64; i++)
            Assert.Equal((i * (i + 1) / 2).ToString(), results[i]);
    }
}

using ManagedLM.Chat;
using ManagedLM.Chat.Jinja;

namespace ManagedLM.Tests.Chat;

/// <summary>
/// Templates are untrusted input: however a short template multiplies work (values that share parts, strings that
/// double, loops that scan long strings), rendering ends within the render's budgets with a <see cref="TemplateException"/>
/// naming the budget and where it was crossed, never a hang or an out-of-memory.
/// </summary>
public sealed class JinjaBudgetTests
{
    // Below the defaults (work and steps a tenth, output a quarter), so that each case reaches its budget in milliseconds;
    // the defaults are checked with the reproductions of the issue.
    private static readonly RenderLimits Limits = new() { MaxValueWork = 400_000, MaxSteps = 100_000, MaxOutputLength = 1 << 20 };

    private static string WorkExceeded(RenderLimits limits) =>
        $"The template did more than {limits.MaxValueWork} units of work on values (one per item visited or built, one per {RenderLimits.CharactersPerWorkUnit} characters).";

    private static string OutputExceeded(RenderLimits limits) => $"The template produced more than {limits.MaxOutputLength} characters.";

    private static readonly string Work = WorkExceeded(Limits), Output = OutputExceeded(Limits);

    private static readonly string Steps = $"The template ran more than {Limits.MaxSteps} loop iterations and macro calls.";

    // ns.a: a list of two references to the list before, 40 times over (2^40 leaves in 40 small steps); ns.d the same as mappings.
    private const string Doubled =
        "{% set ns = namespace(a=[1], d={'k': 1}) %}{% for i in range(40) %}{% set ns.a = [ns.a, ns.a] %}{% set ns.d = {'x': ns.d, 'y': ns.d} %}{% endfor %}";

    // A string of a million characters (62,500 units of work to build or scan), and a loop that scans it many times.
    private const string LongString = "{% set s = 'x' * 1000000 %}";
    private const string Loop = "{% for i in range(10000) %}";

    private static readonly Dictionary<string, (string Source, string Message)> Blowups = new()
    {
        ["shared list compared"] = (Doubled + "{{ ns.a == ns.a }}", Work),
        ["shared list searched"] = (Doubled + "{{ ns.a in [ns.a] }}", Work),
        ["shared list in a test"] = (Doubled + "{{ [ns.a]|select('eq', ns.a)|list }}", Work),
        ["shared mapping compared"] = (Doubled + "{{ ns.d != ns.d }}", Work),
        ["shared list printed"] = (Doubled + "{{ ns.a }}", Work),
        ["shared list as JSON"] = (Doubled + "{{ ns.a|tojson }}", Work),
        ["shared mapping as JSON with sorted keys"] = (Doubled + "{{ ns.d|tojson(sort_keys=true) }}", Output),
        ["shared list as a string"] = (Doubled + "{{ ns.a|string|length }}", Work),
        ["shared list concatenated"] = (Doubled + "{{ '' ~ ns.a }}", Work),
        ["shared list joined"] = (Doubled + "{{ ns.a|join(',') }}", Work),
        ["shared mapping sorted by value"] = (Doubled + "{{ {'v': ns.d}|dictsort(by='value') }}", Output),
        ["shared list raised"] = (Doubled + "{{ raise_exception(ns.a) }}", Work),
        ["shared list in a string method"] = (Doubled + "{{ 'a'.startswith(ns.a) }}", Work),
        ["string repeated a billion times"] = ("{{ 'x' * 1000000000 }}", Output),
        ["range of a billion"] = ("{{ range(1000000000)|length }}", Work),
        ["range over all integers"] = ("{{ range(-9223372036854775807, 9223372036854775807)|length }}", Work),
        ["batch filled to a billion"] = ("{{ [1]|batch(1000000000, 0)|length }}", Work),
        ["nested loops over ranges"] = ("{% for i in range(2000) %}{% for j in range(2000) %}{% endfor %}{% endfor %}", Steps),
        ["replace blowing up"] = ("{{ ('a' * 1000)|replace('a', 'a' * 1000)|replace('a', 'a' * 1000) }}", Output),
        ["replace method blowing up"] = ("{{ ('a' * 1000).replace('a', 'a' * 1000).replace('a', 'a' * 1000) }}", Output),
        ["format blowing up"] = ("{{ ('{0}' * 100000).format('x' * 1000) }}", Output),
        ["indent of many lines"] = ("{{ ('\\n' * 100000)|indent(4096, true) }}", Output),
        ["escape of many quotes"] = ("{{ ('<' * 1000000)|e }}", Output),
        ["JSON with a huge indent"] = ("{{ [[[1]]]|tojson(indent=2000000000) }}", Output),
        ["JSON escapes of non-ASCII"] = ("{{ ('é' * 500000)|tojson(ensure_ascii=true) }}", Output),
        ["join of long strings"] =
            ("{% set ns = namespace(l=['x' * 1000000]) %}{% for i in range(8) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l|join(',') }}", Output),
        ["recursive macro doubling a string"] =
            ("{% macro f(n) %}{% if n > 0 %}{% set s = f(n - 1) %}{{ s ~ s }}{% else %}x{% endif %}{% endmacro %}{{ f(40) }}", Output),
        ["recursive macro calling itself twice"] =
            ("{% set ns = namespace(depth=0) %}{% macro f() %}{% if ns.depth < 40 %}{% set ns.depth = ns.depth + 1 %}{{ f() }}{{ f() }}" +
             "{% set ns.depth = ns.depth - 1 %}{% endif %}{% endmacro %}{{ f() }}", Steps),
        ["string grown in a loop"] = ("{% set ns = namespace(s='') %}" + Loop + "{% set ns.s = ns.s ~ 'xxxxxxxxxx' %}{% endfor %}", Work),
        ["long strings kept in a list"] = ("{% set l = [] %}" + Loop + "{% set _ = l.append('x' * 1000000) %}{% endfor %}", Work),
        ["long string compared in a loop"] = (LongString + "{% set t = s ~ '' %}" + Loop + "{% if s == t %}{% endif %}{% endfor %}", Work),
        ["long string compared with less"] = (LongString + "{% set t = s ~ '' %}" + Loop + "{% if s < t %}{% endif %}{% endfor %}", Work),
        ["long string searched in a loop"] = (LongString + Loop + "{% if 'y' in s %}{% endif %}{% endfor %}", Work),
        ["long string method in a loop"] = (LongString + Loop + "{% if s.startswith('y') %}{% endif %}{% endfor %}", Work),
        ["long string filter in a loop"] = (LongString + Loop + "{% if s|length > 0 %}{% endif %}{% endfor %}", Work),
        ["long string sliced in a loop"] = (LongString + Loop + "{% set t = s[1:] %}{% endfor %}", Work),
        ["long string as a key in a loop"] = (LongString + "{% set d = {} %}" + Loop + "{% set v = d[s] %}{% endfor %}", Work),
        ["long string tested in a loop"] = (LongString + Loop + "{% if s is lower %}{% endif %}{% endfor %}", Work),
        ["macro output kept in a loop"] = (LongString + "{% macro big() %}{{ s }}{% endmacro %}" + Loop + "{% set t = big() %}{% endfor %}", Work),
        ["set block in a loop"] = (LongString + Loop + "{% set t %}{{ s }}{% endset %}{% endfor %}", Work),
        ["long list popped from the front"] = ("{% set l = range(100000) %}{% for i in range(1000) %}{% set _ = l.pop(0) %}{% endfor %}", Work),
        ["long list sorted"] = ("{{ range(100000)|sort|length }}", Work),
        ["mappings merged in a loop"] =
            ("{% set d = {} %}{% for i in range(1000) %}{% set _ = d.update({i: i}) %}{% endfor %}{% set m = {} %}" +
             "{% for i in range(1000) %}{% set _ = m.update(d) %}{% endfor %}", Work),
        ["mapping expanded in a loop"] =
            ("{% set d = {} %}{% for i in range(1000) %}{% set _ = d.update({'k' ~ i: i}) %}{% endfor %}" +
             "{% for i in range(1000) %}{% set n = namespace(**d) %}{% endfor %}", Work),
    };

    public static TheoryData<string> BlowupNames() => [.. Blowups.Keys];

    [Theory]
    [MemberData(nameof(BlowupNames))]
    public void A_render_that_multiplies_work_stops_at_its_budget(string name)
    {
        var (source, message) = Blowups[name];
        var template = JinjaTemplate.Parse(source);
        var e = Assert.Throws<TemplateException>(() => template.Render([], Limits));
        Assert.Equal(message, e.Message);
        Assert.Equal(1, e.Line);
        Assert.True(e.Column > 1, $"column {e.Column}");
        Assert.False(e.RaisedByTemplate);
        Assert.Equal("ok", JinjaTemplate.Parse("{{ 'o' ~ 'k' }}").Render([]));
    }

    // The reproductions of the issue, with the default limits.
    [Theory]
    [InlineData("{{ ns.a == ns.a }}", true)]
    [InlineData("{{ ns.a }}", false)]
    public void Shared_values_stop_at_the_default_budgets(string use, bool work)
    {
        var e = Assert.Throws<TemplateException>(() => JinjaTemplate.Parse(Doubled + use).Render([]));
        Assert.Equal(work ? WorkExceeded(RenderLimits.Default) : OutputExceeded(RenderLimits.Default), e.Message);
        Assert.Equal(1, e.Line);
        Assert.True(e.Column > Doubled.Length, $"column {e.Column}");
    }

    [Fact]
    public void The_work_budget_counts_items_and_characters()
    {
        var limits = new RenderLimits { MaxValueWork = 100 };
        Assert.Equal("", JinjaTemplate.Parse("{% set r = range(100) %}").Render([], limits));
        var items = Assert.Throws<TemplateException>(() => JinjaTemplate.Parse("{% set r = range(101) %}").Render([], limits));
        Assert.Equal(WorkExceeded(limits), items.Message);
        Assert.Equal("The template did more than 100 units of work on values (one per item visited or built, one per 16 characters).", items.Message);
        Assert.Equal((1, "{% set r = range(".Length), (items.Line, items.Column));

        int characters = 100 * RenderLimits.CharactersPerWorkUnit;
        Assert.Equal("", JinjaTemplate.Parse($"{{% set s = 'x' * {characters} %}}").Render([], limits));
        var chars = Assert.Throws<TemplateException>(() => JinjaTemplate.Parse($"{{% set s = 'x' * {characters + 1} %}}").Render([], limits));
        Assert.Equal(WorkExceeded(limits), chars.Message);
    }

    [Fact]
    public void Each_render_has_its_own_budget()
    {
        var limits = new RenderLimits { MaxValueWork = 1000 };
        var template = JinjaTemplate.Parse("{{ l|join(',')|length }}");
        var small = new JinjaList(Enumerable.Range(0, 100).Select(i => (object?)(long)i));
        var large = new JinjaList(Enumerable.Range(0, 10_000).Select(i => (object?)(long)i));
        for (int i = 0; i < 20; i++)
            Assert.Equal("289", template.Render([KeyValuePair.Create<string, object?>("l", small)], limits));
        Assert.Throws<TemplateException>(() => template.Render([KeyValuePair.Create<string, object?>("l", large)], limits));
        Assert.Equal("289", template.Render([KeyValuePair.Create<string, object?>("l", small)], limits));
    }

    [Fact]
    public void An_error_message_shows_a_huge_value_in_a_bounded_length()
    {
        var e = Assert.Throws<TemplateException>(() => JinjaTemplate.Parse(Doubled + "{{ ns.a + 1 }}").Render([]));
        Assert.StartsWith("Expected a number, got [[[[", e.Message);
        Assert.EndsWith("...", e.Message);
        Assert.Equal("Expected a number, got ".Length + 200 + "...".Length, e.Message.Length);
        var sorted = Assert.Throws<TemplateException>(() => JinjaTemplate.Parse(Doubled + "{{ [ns.a, ns.a]|sort }}").Render([]));
        Assert.StartsWith("Cannot compare values: [[[[", sorted.Message);
        Assert.True(sorted.Message.Length < 500, sorted.Message);
    }

    // As in minja, ** binds looser than * and gives a float, and lists do not repeat.
    [Theory]
    [InlineData("{{ 'x' * 10**9 }}", "Expected a number, got 'xxxxxxxxxx'")]
    [InlineData("{{ 'x' * (10**9) }}", "Expected a number, got 'x'")]
    [InlineData("{{ [0] * (10**9) }}", "Expected a number, got [0]")]
    public void Repetitions_that_are_no_operation_fail_without_building_anything(string source, string message)
    {
        var e = Assert.Throws<TemplateException>(() => JinjaTemplate.Parse(source).Render([]));
        Assert.Equal(message, e.Message);
    }

    [Theory]
    [InlineData("{{ range(9223372036854775800, 9223372036854775807, 100) }}", "[9223372036854775800]")]
    [InlineData("{{ range(-9223372036854775807, -9223372036854775808, -5) }}", "[-9223372036854775807]")]
    [InlineData("{{ range(3, 0, -1) }}|{{ range(0, 7, 3) }}|{{ range(0) }}", "[3, 2, 1]|[0, 3, 6]|[]")]
    public void Range_ends_at_the_limits_of_integers(string source, string expected) =>
        Assert.Equal(expected, JinjaTemplate.Parse(source).Render([]));

    [Fact]
    public void Large_work_within_the_budget_renders()
    {
        // unique over many items is linear; a string of the output limit may be built, copied and printed once.
        Assert.Equal("300000", JinjaTemplate.Parse("{{ range(300000)|unique|length }}").Render([]));
        int longest = RenderLimits.Default.MaxOutputLength;
        Assert.Equal(longest.ToString(), JinjaTemplate.Parse($"{{{{ ('x' * {longest})|trim|length }}}}").Render([]));
        Assert.Equal("a\n    b\n    \n    c\n", JinjaTemplate.Parse("{{ 'a\\nb\\n\\nc\\n'|indent }}").Render([]));
        Assert.Equal("    a", JinjaTemplate.Parse("{{ 'a'|indent(first=true) }}").Render([]));
        Assert.Equal("Hello World|A_b C", JinjaTemplate.Parse("{{ 'hELLO wORLD'|title }}|{{ 'a_B c'.title() }}").Render([]));
        Assert.Equal("['a', 'b', 'c']|['a', 'b', '', 'c']|3", JinjaTemplate.Parse("{{ ' a\\tb\\n c '.split() }}|{{ 'a,b,,c'.split(',') }}|{{ ' a b  c '|wordcount }}").Render([]));
    }

    // A conversation of 400,000 characters (some 100,000 tokens) renders with every reference template on a quarter of the
    // default work budget: the budget stops blowups, not long chats.
    [Fact]
    public void A_long_conversation_renders_well_within_the_work_budget()
    {
        var messages = new System.Text.Json.Nodes.JsonArray();
        for (int i = 0; i < 200; i++)
            messages.Add(new System.Text.Json.Nodes.JsonObject { ["role"] = i % 2 == 0 ? "user" : "assistant", ["content"] = $"{i}: " + new string('w', 2000) });
        var options = new ChatTemplateOptions
        {
            AddGenerationPrompt = true,
            Now = new DateTime(2024, 7, 26, 0, 0, 0, DateTimeKind.Utc),
            Limits = new RenderLimits { MaxValueWork = RenderLimits.Default.MaxValueWork / 4 },
        };
        var templates = Directory.GetFiles(Path.Combine(TestData.ModelsDir, "templates"), "*.jinja");
        Assert.NotEmpty(templates);
        foreach (string file in templates)
        {
            var template = ChatTemplate.Parse(File.ReadAllText(file), "<s>", "</s>");
            string prompt = template.Render(new System.Text.Json.Nodes.JsonObject { ["messages"] = messages.DeepClone() }, options);
            Assert.True(prompt.Length > 400_000, $"{Path.GetFileName(file)}: {prompt.Length} characters");
        }
    }

    // Searches for long values (past .NET's fast path) and strips of long sets take time linear in both strings, not their product.
    [Fact]
    public void Searches_in_long_strings_take_linear_time()
    {
        // Every 'a' of s starts a candidate that matches v for a million characters.
        const string Worst = "{% set s = 'ab' * 2000000 %}{% set v = 'ab' * 500000 ~ 'ba' ~ 'ab' * 500000 %}";
        Assert.Equal("-1|False|0|1|4000000",
            JinjaTemplate.Parse(Worst + "{{ s.find(v) }}|{{ v in s }}|{{ s.count(v) }}|{{ s.split(v)|length }}|{{ s.replace(v, '')|length }}").Render([]));
        Assert.Equal("0|z", JinjaTemplate.Parse("{{ ('x' * 1000000).strip('y' * 1000000 ~ 'x')|length }}|{{ ('x' * 1000000 ~ 'z')|trim('y' * 1000000 ~ 'x') }}").Render([]));

        const string Long = "{% set s = 'ab' * 100 ~ 'c' ~ 'ab' * 100 %}{% set v = 'ab' * 50 ~ 'c' %}{% set w = 'ab' * 50 %}";
        Assert.Equal("100|True|4|5|200", JinjaTemplate.Parse(Long + "{{ s.find(v) }}|{{ v in s }}|{{ s.count(w) }}|{{ s.split(w)|length }}|{{ s.replace(w ~ w ~ 'c', '')|length }}").Render([]));
    }

    // The reference templates use a small part of the default budget: every conversation renders with a fiftieth of it
    // (or raises what the reference raises, which TemplateConformanceTests checks).
    [Fact]
    public void Reference_templates_render_well_within_the_work_budget()
    {
        var limits = new RenderLimits { MaxValueWork = RenderLimits.Default.MaxValueWork / 50 };
        int rendered = 0;
        foreach (var row in TemplateConformanceTests.Cases())
        {
            try
            {
                Assert.NotEmpty(TemplateConformanceTests.Render((string)row[0], (string)row[1], (bool)row[2], limits));
                rendered++;
            }
            catch (TemplateException e)
            {
                Assert.NotEqual(WorkExceeded(limits), e.Message);
            }
        }
        Assert.True(rendered > 100, $"{rendered} rendered");
    }
}

using System.Text;
using ManagedLM.Chat;
using ManagedLM.Chat.Jinja;
using ManagedLM.Gguf;
using ManagedLM.Model;

namespace ManagedLM.Tests.Chat;

/// <summary>
/// Templates are untrusted input (they come with model files): however deeply one nests, parsing and rendering end in a
/// <see cref="TemplateException"/> with a location, on the default thread and on a thread with a small stack, and the
/// engine renders normal templates afterwards.
/// </summary>
public sealed class JinjaLimitsTests
{
    private const int SmallStack = 256 * 1024;

    private static readonly string ExpressionsTooDeep = $"Expressions nest deeper than {JinjaTemplate.MaxExpressionDepth} levels";
    private static readonly string BlocksTooDeep = $"Blocks nest deeper than {JinjaTemplate.MaxBlockDepth} levels";
    private static readonly string ValuesTooDeep = $"Values nest deeper than {JinjaTemplate.MaxValueDepth} levels";
    private static readonly string CallsTooDeep = $"Calls of macros, caller() and loop() nest deeper than {RenderLimits.Default.MaxCallDepth} levels";
    private const string StackExhausted = "The template nests too deeply for this thread's stack";

    private static string Repeat(string s, int n) => new StringBuilder(s.Length * n).Insert(0, s, n).ToString();

    private static string Nest(string open, string inner, string close, int n) => Repeat(open, n) + inner + Repeat(close, n);

    // The reproductions of issue 13 and their relatives: templates that nest too deeply to parse.
    private static readonly Dictionary<string, Func<string>> DeepSources = new()
    {
        ["parentheses"] = () => "{{ " + Nest("(", "1", ")", 5_000) + " }}",
        ["if blocks"] = () => Nest("{% if true %}", "x", "{% endif %}", 50_000),
        ["unclosed if blocks"] = () => Repeat("{% if true %}", 50_000),
        ["lists"] = () => "{{ " + Nest("[", "", "]", 5_000) + " }}",
        ["dicts"] = () => "{{ " + Nest("{'a': ", "1", "}", 5_000) + " }}",
        ["filter calls"] = () => "{{ " + Nest("x|f(", "1", ")", 5_000) + " }}",
        ["not"] = () => "{{ " + Repeat("not ", 100_000) + "1 }}",
        ["negations"] = () => "{{ " + Nest("-(", "1", ")", 5_000) + " }}",
        ["calls"] = () => "{{ " + Nest("f(", "1", ")", 5_000) + " }}",
        ["named arguments"] = () => "{{ " + Nest("f(a=", "1", ")", 5_000) + " }}",
        ["subscript indexes"] = () => "{{ " + Nest("x[", "0", "]", 5_000) + " }}",
        ["conditionals"] = () => "{{ " + Repeat("1 if x else ", 5_000) + "1 }}",
        ["concatenations"] = () => "{{ 'a'" + Repeat(" ~ 'a'", 5_000) + " }}",
        ["additions"] = () => "{{ 1" + Repeat(" + 1", 100_000) + " }}",
        ["or chains"] = () => "{{ x" + Repeat(" or x", 100_000) + " }}",
        ["comparisons"] = () => "{{ x" + Repeat(" == x", 100_000) + " }}",
        ["attributes"] = () => "{{ x" + Repeat(".a", 100_000) + " }}",
        ["subscripts"] = () => "{{ x" + Repeat("[0]", 100_000) + " }}",
        ["method calls"] = () => "{{ x" + Repeat(".get(0)", 100_000) + " }}",
        ["for blocks"] = () => Nest("{% for i in l %}", "", "{% endfor %}", 5_000),
        ["macro blocks"] = () => Nest("{% macro m() %}", "", "{% endmacro %}", 5_000),
        ["set blocks"] = () => Nest("{% set v %}", "", "{% endset %}", 5_000),
        ["filter blocks"] = () => Nest("{% filter upper %}", "", "{% endfilter %}", 5_000),
        ["call blocks"] = () => Nest("{% call m() %}", "", "{% endcall %}", 5_000),
        ["generation blocks"] = () => Nest("{% generation %}", "", "{% endgeneration %}", 5_000),
        ["expression in a block tag"] = () => "{% if " + Nest("[", "", "]", 5_000) + " %}{% endif %}",
        ["macro parameter default"] = () => "{% macro m(a=" + Nest("(", "1", ")", 5_000) + ") %}{% endmacro %}",
    };

    public static TheoryData<string> DeepSourceNames() => [.. DeepSources.Keys];

    [Theory]
    [MemberData(nameof(DeepSourceNames))]
    public void A_template_nesting_too_deeply_fails_to_parse_with_its_location(string name)
    {
        string source = DeepSources[name]();
        var e = Assert.Throws<TemplateException>(() => JinjaTemplate.Parse(source));
        Assert.Equal(name.EndsWith("blocks", StringComparison.Ordinal) ? BlocksTooDeep : ExpressionsTooDeep, e.Message);
        Assert.Equal(1, e.Line);
        Assert.True(e.Column > 1);
        AssertNormalTemplateRenders();
    }

    [Theory]
    [MemberData(nameof(DeepSourceNames))]
    public void A_template_nesting_too_deeply_fails_to_parse_on_a_small_stack(string name)
    {
        string source = DeepSources[name]();
        var e = Assert.IsType<TemplateException>(OnSmallStack(() => JinjaTemplate.Parse(source)));
        Assert.Contains(e.Message, new[] { ExpressionsTooDeep, BlocksTooDeep, StackExhausted });
        Assert.Equal(1, e.Line);
        Assert.True(e.Column > 1);
        Assert.Null(OnSmallStack(AssertNormalTemplateRenders));
    }

    [Fact]
    public void The_limits_name_the_construct_that_crosses_them()
    {
        // The top-level expression is the first level, so the 128th bracket crosses the limit; a sum, its 128th `+`.
        var e = Assert.Throws<TemplateException>(() => JinjaTemplate.Parse("{{ " + Nest("(", "1", ")", 5_000) + " }}"));
        Assert.Equal(3 + JinjaTemplate.MaxExpressionDepth + 1, e.Column);
        var ifs = Assert.Throws<TemplateException>(() => JinjaTemplate.Parse("\n" + Nest("{% if true %}", "x", "{% endif %}", 50_000)));
        Assert.Equal((2, JinjaTemplate.MaxBlockDepth * "{% if true %}".Length + 1), (ifs.Line, ifs.Column));
        var sums = Assert.Throws<TemplateException>(() => JinjaTemplate.Parse("{{ 1" + Repeat(" + 1", 100_000) + " }}"));
        Assert.Equal(4 + JinjaTemplate.MaxExpressionDepth * " + 1".Length - 1, sums.Column);
    }

    [Fact]
    public void Nesting_up_to_the_limits_renders()
    {
        int brackets = JinjaTemplate.MaxExpressionDepth - 1;
        Assert.Equal(Nest("[", "", "]", brackets), JinjaTemplate.Parse("{{ " + Nest("[", "", "]", brackets) + " }}").Render([]));
        Assert.Equal("-1", JinjaTemplate.Parse("{{ " + Nest("(", "-1", ")", brackets) + " }}").Render([]));
        Assert.Equal("x", JinjaTemplate.Parse(Nest("{% if true %}", "x", "{% endif %}", JinjaTemplate.MaxBlockDepth)).Render([]));
        Assert.Equal(JinjaTemplate.MaxExpressionDepth.ToString(),
            JinjaTemplate.Parse("{{ 1" + Repeat(" + 1", JinjaTemplate.MaxExpressionDepth - 1) + " }}").Render([]));
        Assert.Equal("True", JinjaTemplate.Parse("{{ " + Repeat("not ", JinjaTemplate.MaxExpressionDepth - 1) + "0 }}").Render([]));
    }

    [Fact]
    public void A_long_filter_chain_is_flat_and_renders_on_a_small_stack()
    {
        string source = "{{ ' a '" + Repeat("|trim|upper", 50_000) + " }}";
        Assert.Equal("A", JinjaTemplate.Parse(source).Render([]));
        Assert.Null(OnSmallStack(() => Assert.Equal("A", JinjaTemplate.Parse(source).Render([]))));
    }

    // Templates that parse but nest without end while rendering: calls, recursive loops, values.
    private static readonly Dictionary<string, (string Source, string[] Messages)> DeepRenders = new()
    {
        ["macro recursion"] = ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", [CallsTooDeep]),
        ["macro recursion in deep expressions"] =
            ("{% macro f() %}{{ " + Nest("[", "f()", "]", 100) + " }}{% endmacro %}{{ f() }}", [CallsTooDeep, StackExhausted]),
        ["macro recursion in deep blocks"] =
            ("{% macro f() %}" + Nest("{% if true %}", "{{ f() }}", "{% endif %}", 120) + "{% endmacro %}{{ f() }}", [CallsTooDeep, StackExhausted]),
        ["recursive loop"] = ("{% for x in [[1]] recursive %}{{ loop([x]) }}{% endfor %}", [CallsTooDeep]),
        ["recursive loop in a macro"] =
            ("{% macro f() %}{% for x in [[1]] recursive %}{{ f() }}{{ loop([x]) }}{% endfor %}{% endmacro %}{{ f() }}", [CallsTooDeep]),
        ["caller recursion"] = ("{% macro m() %}{{ caller() }}{% endmacro %}{% call m() %}{{ caller() }}{% endcall %}", [CallsTooDeep]),
        ["nested list printed"] =
            ("{% set ns = namespace(v=0) %}{% for i in range(1000) %}{% set ns.v = [ns.v] %}{% endfor %}{{ ns.v }}", [ValuesTooDeep]),
        ["nested list as JSON"] =
            ("{% set ns = namespace(v=0) %}{% for i in range(1000) %}{% set ns.v = [ns.v] %}{% endfor %}{{ ns.v|tojson }}", [ValuesTooDeep]),
        ["nested dicts compared"] =
            ("{% set ns = namespace(v=1) %}{% for i in range(1000) %}{% set ns.v = {'a': ns.v} %}{% endfor %}{{ ns.v == ns.v }}", [ValuesTooDeep]),
        ["list holding itself printed"] = ("{% set l = [] %}{{ l.append(l) }}{{ l }}", [ValuesTooDeep]),
        ["list holding itself compared"] = ("{% set l = [] %}{{ l.append(l) }}{{ l == l }}", [ValuesTooDeep]),
        ["list holding itself searched"] = ("{% set l = [1] %}{{ l.append(l) }}{{ [1, l] in [l] }}", [ValuesTooDeep]),
        ["namespace holding itself sorted"] = ("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns|tojson(sort_keys=true) }}", [ValuesTooDeep]),
    };

    public static TheoryData<string> DeepRenderNames() => [.. DeepRenders.Keys];

    [Theory]
    [MemberData(nameof(DeepRenderNames))]
    public void A_render_nesting_too_deeply_fails_with_its_location(string name)
    {
        var (source, messages) = DeepRenders[name];
        var template = JinjaTemplate.Parse(source);
        var e = Assert.Throws<TemplateException>(() => template.Render([]));
        Assert.Contains(e.Message, messages);
        Assert.Equal(1, e.Line);
        Assert.True(e.Column > 0);
        Assert.False(e.RaisedByTemplate);
        AssertNormalTemplateRenders();
    }

    [Theory]
    [MemberData(nameof(DeepRenderNames))]
    public void A_render_nesting_too_deeply_fails_on_a_small_stack(string name)
    {
        var (source, messages) = DeepRenders[name];
        var template = JinjaTemplate.Parse(source);
        var e = Assert.IsType<TemplateException>(OnSmallStack(() => template.Render([])));
        Assert.Contains(e.Message, messages.Append(StackExhausted));
        Assert.Equal(1, e.Line);
        Assert.True(e.Column > 0);
        Assert.Null(OnSmallStack(AssertNormalTemplateRenders));
    }

    [Fact]
    public void Reference_templates_render_the_same_on_a_small_stack()
    {
        foreach (string template in new[] { "Qwen-Qwen2.5-7B-Instruct", "meetkai-functionary-medium-v3.2", "CohereForAI-c4ai-command-r-plus-tool_use" })
        {
            string expected = TemplateConformanceTests.Render(template, "tool-calls", addGenerationPrompt: true);
            string? actual = null;
            Assert.Null(OnSmallStack(() => actual = TemplateConformanceTests.Render(template, "tool-calls", addGenerationPrompt: true)));
            Assert.Equal(expected, actual);
        }
    }

    [Fact]
    public void A_model_whose_template_nests_too_deeply_loads_with_the_ChatML_fallback()
    {
        string dir = Directory.CreateTempSubdirectory("managedlm-jinja-").FullName;
        try
        {
            foreach (string name in new[] { "parentheses", "if blocks", "not" })
            {
                string path = Path.Combine(dir, $"{name.Replace(' ', '-')}.gguf");
                using (var source = GgufFile.Open(TestData.Model("stories260K.gguf")))
                using (var output = File.Create(path))
                {
                    var metadata = source.Metadata.ToKeyValueList();
                    metadata.Add(KeyValuePair.Create("tokenizer.chat_template", GgufValue.Of(DeepSources[name]())));
                    GgufWriter.Copy(source, output, metadata);
                }
                using var model = TransformerModel.Load(path);
                Assert.True(model.ChatTemplate.IsFallback);
                Assert.StartsWith("The model's chat template does not parse (", model.ChatTemplateWarning);
                Assert.Contains(name == "if blocks" ? BlocksTooDeep : ExpressionsTooDeep, model.ChatTemplateWarning);
                Assert.Contains("template line 1, column ", model.ChatTemplateWarning);
                Assert.EndsWith("); using ChatML.", model.ChatTemplateWarning);
                Assert.Equal("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", model.ChatTemplate.Render([ChatMessage.User("hi")]));
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    // Random nestings of every construct above, to random depths, some cut short: parsing and rendering throw nothing
    // but TemplateException, and a failure from nesting names its place.
    [Fact]
    public void Random_nestings_fail_only_with_template_exceptions()
    {
        var random = new Random(1313);
        int failed = 0, rendered = 0;
        for (int i = 0; i < 1000; i++)
        {
            string source = RandomNesting(random);
            var e = TryParseAndRender(source);
            CheckOutcome(source, e);
            if (e is null)
                rendered++;
            else
                failed++;
        }
        Assert.True(rendered > 100 && failed > 100, $"{rendered} rendered, {failed} failed");
        Assert.Null(OnSmallStack(() =>
        {
            for (int i = 0; i < 200; i++)
            {
                string source = RandomNesting(random);
                CheckOutcome(source, TryParseAndRender(source));
            }
        }));
        AssertNormalTemplateRenders();
    }

    // Each wraps any expression into a valid one.
    private static readonly (string Open, string Close)[] ExpressionWrappers =
    [
        ("(", ")"), ("[", "]"), ("[1, ", ", 2]"), ("{'a': ", "}"), ("x|default(", ")"), ("not ", ""), ("-(", ")"), ("m(", ")"),
        ("m(a=", ")"), ("l[", "]"), ("1 if (", ") else 2"), ("1 if x else ", ""), ("'s' ~ ", ""), ("1 + (", ")"), ("", " + 1"),
        ("", " or x"), ("", "|string"), ("l.append(", ")"), ("(", ")|length"), ("(", ").a"), ("(", ")[0]"), ("[(", ")]|first"),
    ];

    private static readonly (string Open, string Close)[] BlockWrappers =
    [
        ("{% if x %}", "{% endif %}"), ("{% if x %}a{% else %}", "{% endif %}"), ("{% for i in l %}", "{% endfor %}"),
        ("{% for i in l recursive %}{{ loop([]) }}", "{% endfor %}"), ("{% macro m(a=1) %}", "{% endmacro %}{{ m() }}"),
        ("{% set v %}", "{% endset %}{{ v }}"), ("{% filter upper %}", "{% endfilter %}"), ("{% call m() %}", "{% endcall %}"),
        ("{% generation %}", "{% endgeneration %}"), ("{% macro m() %}{{ caller() if caller }}", "{% endmacro %}"),
    ];

    private static string RandomNesting(Random random)
    {
        // Depths around and beyond the limits, to the stack's reach.
        int expressionDepth = random.Next(4) == 0 ? random.Next(2_000) : random.Next(JinjaTemplate.MaxExpressionDepth + 20);
        int blockDepth = random.Next(4) == 0 ? random.Next(2_000) : random.Next(JinjaTemplate.MaxBlockDepth + 20);
        var expression = new StringBuilder("x");
        for (int d = 0; d < expressionDepth; d++)
        {
            var (open, close) = ExpressionWrappers[random.Next(ExpressionWrappers.Length)];
            expression.Insert(0, open).Append(close);
        }
        var template = new StringBuilder("{{ " + expression + " }}");
        for (int d = 0; d < blockDepth; d++)
        {
            var (open, close) = BlockWrappers[random.Next(BlockWrappers.Length)];
            template.Insert(0, open).Append(close);
        }
        template.Insert(0, "{% macro m(a=1) %}{{ a }}{% endmacro %}");
        if (random.Next(5) == 0)
            template.Length = random.Next(template.Length);
        return template.ToString();
    }

    private static Exception? TryParseAndRender(string source)
    {
        try
        {
            var variables = new Dictionary<string, object?> { ["x"] = 1L, ["l"] = new JinjaList([1L]) };
            JinjaTemplate.Parse(source).Render(variables, new RenderLimits { MaxSteps = 10_000 });
            return null;
        }
        catch (Exception e)
        {
            return e;
        }
    }

    private static void CheckOutcome(string source, Exception? e)
    {
        if (e is null)
            return;
        Assert.True(e is TemplateException, $"{e.GetType().Name} for {source[..Math.Min(200, source.Length)]}: {e}");
        var t = (TemplateException)e;
        if (t.Message is StackExhausted || t.Message.Contains("nest deeper than", StringComparison.Ordinal))
            Assert.True(t.Line > 0 && t.Column > 0, $"{t.Message} without a location");
    }

    // A normal chat template still parses and renders (on the calling thread).
    private static void AssertNormalTemplateRenders()
    {
        var template = ChatTemplate.Parse(
            "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] | trim + '<|im_end|>\\n' }}{% endfor %}" +
            "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}");
        Assert.Equal("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", template.Render([ChatMessage.User(" hi ")]));
    }

    // Runs `action` on a new thread with a 256 KB stack; what it threw, or null.
    private static Exception? OnSmallStack(Action action)
    {
        Exception? thrown = null;
        var thread = new Thread(() =>
        {
            try
            {
                action();
            }
            catch (Exception e)
            {
                thrown = e;
            }
        }, SmallStack);
        thread.Start();
        thread.Join();
        return thrown;
    }
}

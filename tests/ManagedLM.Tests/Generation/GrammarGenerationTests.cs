using System.Text.Json;
using System.Text.RegularExpressions;
using ManagedLM.Batching;
using ManagedLM.Generation;
using ManagedLM.Grammars;
using ManagedLM.Sampling;
using ManagedLM.Tests.Concurrency;
using ManagedLM.Tests.Grammars;

namespace ManagedLM.Tests.Generation;

/// <summary>
/// Grammar-constrained generation end to end: every sampled text is a sentence (or, cut by max_tokens, a prefix) of the
/// grammar it was given, judged by validators independent of the grammar code; bounded grammars end by themselves;
/// the generator and the batch engine give the same text.
/// </summary>
public class GrammarGenerationTests(SharedModels models) : IClassFixture<SharedModels>
{
    private const string PersonSchema = """
        {"type": "object",
         "properties": {
           "name": {"type": "string", "maxLength": 12},
           "age": {"type": "integer", "minimum": 0, "maximum": 120},
           "score": {"type": "number", "exclusiveMinimum": -1.5, "maximum": 2},
           "tags": {"type": "array", "items": {"enum": ["red", "green", "blue"]}, "maxItems": 3},
           "kind": {"anyOf": [{"const": "cat"}, {"type": "null"}, {"type": "boolean"}]}
         },
         "required": ["name", "age", "kind"]}
        """;

    private static readonly Grammar Person = Grammar.FromJsonSchema(PersonSchema);

    private static GenerationOptions Sampled(Grammar grammar, ulong seed, int maxTokens = 400) => new()
    {
        MaxTokens = maxTokens,
        Grammar = grammar,
        Sampling = new SamplingOptions { Temperature = 1, TopK = 0, TopP = 1, MinP = 0, Seed = seed },
    };

    public static TheoryData<string> ModelNames => ["stories", "gpt2vocab"];

    private ManagedLM.Model.TransformerModel ModelNamed(string name) => name == "stories" ? models.Stories : models.Gpt2Vocab;

    [Theory]
    [MemberData(nameof(ModelNames))]
    public void Sampled_json_validates_against_its_schema_and_ends_by_itself(string model)
    {
        using var g = ModelNamed(model).CreateGenerator();
        for (ulong seed = 1; seed <= 12; seed++)
        {
            var result = g.Complete("Once upon a time", Sampled(Person, seed));
            Assert.Equal(StopReason.EndOfGeneration, result.StopReason);
            Assert.True(JsonSchemaTestValidator.IsValid(PersonSchema, result.Text), $"seed {seed}: {result.Text}");
        }
    }

    [Fact]
    public void Greedy_constrained_generation_is_valid_and_repeatable()
    {
        using var g = models.Stories.CreateGenerator();
        var options = new GenerationOptions { MaxTokens = 400, Grammar = Person, Sampling = SamplingOptions.Greedy };
        var first = g.Complete("Once upon a time", options);
        var second = g.Complete("Once upon a time", options);
        Assert.Equal(first.Text, second.Text);
        Assert.Equal(first.GeneratedTokens, second.GeneratedTokens);
        Assert.True(JsonSchemaTestValidator.IsValid(PersonSchema, first.Text), first.Text);
    }

    [Fact]
    public void Gbnf_grammar_output_matches_an_equivalent_regex()
    {
        var grammar = Grammar.FromGbnf("""
            root ::= answer " because " reason "."
            answer ::= "yes" | "no" | "maybe"
            reason ::= [a-z]+ (" " [a-z]+){0,3}
            """);
        var regex = new Regex("^(yes|no|maybe) because [a-z]+( [a-z]+){0,3}\\.$");
        using var g = models.Stories.CreateGenerator();
        for (ulong seed = 1; seed <= 10; seed++)
        {
            var result = g.Complete("The answer is", Sampled(grammar, seed, 200));
            Assert.Equal(StopReason.EndOfGeneration, result.StopReason);
            Assert.Matches(regex, result.Text);
        }
    }

    [Fact]
    public void Json_mode_output_is_an_object_or_its_prefix()
    {
        using var g = models.Gpt2Vocab.CreateGenerator();
        for (ulong seed = 1; seed <= 6; seed++)
        {
            var result = g.Complete("{", Sampled(Grammar.JsonObject, seed, 60));
            var matcher = Grammar.JsonObject.CreateMatcher();
            Assert.True(matcher.TryAccept(result.Text), result.Text);
            if (result.StopReason == StopReason.EndOfGeneration)
            {
                using var doc = JsonDocument.Parse(result.Text);
                Assert.Equal(JsonValueKind.Object, doc.RootElement.ValueKind);
            }
            else
            {
                Assert.Equal(StopReason.MaxTokens, result.StopReason);
            }
        }
    }

    [Fact]
    public void Streamed_pieces_add_up_to_the_result()
    {
        using var g = models.Stories.CreateGenerator();
        var pieces = new List<string>();
        var result = g.Complete("Once upon a time", Sampled(Person, 5), t => pieces.Add(t.Text));
        Assert.Equal(result.Text, string.Concat(pieces));
    }

    [Fact]
    public async Task Batch_engine_gives_each_request_the_generators_text()
    {
        var seeds = Enumerable.Range(1, 6).Select(i => (ulong)i).ToArray();
        var solo = new List<GenerationResult>();
        using (var g = models.Stories.CreateGenerator())
        {
            foreach (ulong seed in seeds)
                solo.Add(g.Complete("Once upon a time", Sampled(Person, seed)));
        }
        await using var engine = new BatchEngine(models.Stories, new BatchEngineOptions { MaxActiveSequences = 4, Threads = 2, PrefillChunk = 3 });
        var batched = await Task.WhenAll(seeds.Select(seed => Task.Run(() => engine.GenerateAsync("Once upon a time", Sampled(Person, seed)))));
        for (int i = 0; i < seeds.Length; i++)
        {
            Assert.Equal(solo[i].Text, batched[i].Text);
            Assert.Equal(solo[i].GeneratedTokens, batched[i].GeneratedTokens);
            Assert.Equal(solo[i].StopReason, batched[i].StopReason);
        }
    }

    [Fact]
    public void Lazy_grammar_leaves_text_free_until_a_trigger_then_constrains_the_rest()
    {
        using var g = models.Stories.CreateGenerator();
        const string Free = ", there was a little girl named ";
        var grammar = Grammar.FromGbnf("""root ::= "Lily" " is " ("happy" | "sad" | "tall") "." """);
        var options = new GenerationOptions { MaxTokens = 64, Sampling = SamplingOptions.Greedy, Grammar = grammar, GrammarTriggers = ["Lily"] };
        var result = g.Complete("Once upon a time", options);
        Assert.Equal(StopReason.EndOfGeneration, result.StopReason);
        Assert.Matches("^" + Regex.Escape(Free) + "Lily is (happy|sad|tall)\\.$", result.Text);
    }

    [Fact]
    public void Lazy_grammar_never_triggered_leaves_generation_unchanged()
    {
        using var g = models.Stories.CreateGenerator();
        var plain = new GenerationOptions { MaxTokens = 32, Sampling = SamplingOptions.Greedy };
        var lazy = plain with { Grammar = Grammar.FromGbnf("root ::= \"<call>\" [a-z]+"), GrammarTriggers = ["<call>"] };
        Assert.Equal(g.Complete("Once upon a time", plain).Text, g.Complete("Once upon a time", lazy).Text);
    }

    [Fact]
    public void Logprobs_and_stop_strings_work_with_a_grammar()
    {
        using var g = models.Stories.CreateGenerator();
        var options = Sampled(Person, 3) with { Logprobs = true, StopStrings = ["\"age\""] };
        var result = g.Complete("Once upon a time", options);
        Assert.Equal(StopReason.StopString, result.StopReason);
        Assert.StartsWith("{", result.Text);
        Assert.Equal(result.GeneratedTokens.Length, result.Tokens!.Count);
        Assert.All(result.Tokens, t => Assert.True(t.Logprob <= 0));
    }

    [Fact]
    public void Triggers_without_a_grammar_or_empty_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => new GenerationOptions { GrammarTriggers = ["<x>"] }.Validate());
        Assert.Throws<ArgumentException>(() => new GenerationOptions { Grammar = Grammar.JsonObject, GrammarTriggers = [""] }.Validate());
        Assert.Throws<ArgumentNullException>(() => new GenerationOptions { GrammarTriggers = null! });
    }

    [Fact]
    public void Json_schema_grammar_reports_unsupported_keywords()
    {
        var e = Assert.Throws<JsonSchemaException>(() => Grammar.FromJsonSchema("""{"type": "array", "uniqueItems": true}"""));
        Assert.Contains("uniqueItems", e.Message);
    }

    [Fact]
    public void Constrained_decoding_allocates_nothing_per_token_once_warm()
    {
        using var g = models.Stories.CreateGenerator();
        var options = new GenerationOptions { MaxTokens = 400, Grammar = Person, Sampling = SamplingOptions.Greedy };
        g.Complete("Once upon a time", options);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var result = g.Complete("Once upon a time", options);
        long bytes = GC.GetAllocatedBytesForCurrentThread() - before;
        // Per request: the matcher, its buffers and the result; not per token (the same budget for any token count).
        Assert.True(result.GeneratedTokens.Length > 20);
        Assert.True(bytes < 2_000_000, $"{bytes} bytes for {result.GeneratedTokens.Length} tokens");
    }
}

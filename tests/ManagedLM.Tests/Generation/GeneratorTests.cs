using ManagedLM.Generation;
using ManagedLM.Model;
using ManagedLM.Sampling;

namespace ManagedLM.Tests.Generation;

public class GeneratorTests
{
    private static readonly int[] OnceUponATime = [1, 403, 407, 261, 378];

    [Fact]
    public void Greedy_stories260K_continues_like_llama_cpp()
    {
        var reference = ManagedLM.Tests.Model.ReferenceOutput.Load("reference/stories260K.ref.json.gz");
        using var model = TransformerModel.Load(TestData.Model("stories260K.gguf"));
        using var g = model.CreateGenerator(new GeneratorOptions { Sampling = SamplingOptions.Greedy });
        var result = g.Complete(OnceUponATime, new GenerationOptions { MaxTokens = reference.GeneratedTokens.Length });
        Assert.Equal(reference.GeneratedTokens, result.GeneratedTokens);
        Assert.Equal(StopReason.MaxTokens, result.StopReason);
        // The last token is emitted but not evaluated: it would only matter to a continuation.
        Assert.Equal(OnceUponATime.Length + reference.GeneratedTokens.Length - 1, g.Position);
    }

    [Theory]
    [InlineData("stories260K.gguf")]
    [InlineData("synthetic/synth-qwen3-Q4_K_M.gguf")]
    public void Split_matmuls_give_the_same_logits_as_one_thread(string file)
    {
        using var model = TransformerModel.Load(TestData.Model(file));
        using var one = model.CreateGenerator(new GeneratorOptions { Threads = 1 });
        using var three = model.CreateGenerator(new GeneratorOptions { Threads = 3 });
        Assert.Equal(one.Prefill(OnceUponATime).ToArray(), three.Prefill(OnceUponATime).ToArray());
        for (int t = 10; t < 20; t++)
            Assert.Equal(one.Step(t).ToArray(), three.Step(t).ToArray());
    }

    [Fact]
    public void Decoding_allocates_nothing_per_token()
    {
        using var model = TransformerModel.Load(TestData.Model("stories260K.gguf"));
        using var g = model.CreateGenerator(new GeneratorOptions { Sampling = new SamplingOptions { Seed = 7 }, ContextLength = 256 });
        g.Prefill(OnceUponATime);
        int next = g.Sample();
        g.Step(next); // warm-up: JIT, lazy statics
        Assert.Equal(0, Allocations.Fewest(() =>
        {
            for (int i = 0; i < 50; i++)
                g.Step(g.Sample());
        }));
    }

    [Fact]
    public void Same_seed_same_tokens_and_different_seed_differs()
    {
        using var model = TransformerModel.Load(TestData.Model("stories260K.gguf"));
        int[] Run(ulong seed)
        {
            using var g = model.CreateGenerator(new GeneratorOptions { Sampling = new SamplingOptions { Temperature = 1.0f, TopK = 0, TopP = 1, MinP = 0, Seed = seed } });
            return g.Complete(OnceUponATime, new GenerationOptions { MaxTokens = 40 }).GeneratedTokens;
        }
        Assert.Equal(Run(42), Run(42));
        Assert.NotEqual(Run(42), Run(43));
    }

    [Fact]
    public void Bad_input_is_an_argument_exception_naming_the_bound()
    {
        using var model = TransformerModel.Load(TestData.Model("stories260K.gguf"));
        using var g = model.CreateGenerator(new GeneratorOptions { ContextLength = 8 });
        var ex = Assert.Throws<ArgumentException>(() => g.Prefill([1, 512]));
        Assert.Contains("[0, 512)", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => g.Prefill(new int[9]));
        Assert.Contains("context length 8", ex.Message);
        Assert.Equal(0, g.Position);
        Assert.Throws<ArgumentOutOfRangeException>(() => model.CreateGenerator(new GeneratorOptions { ContextLength = 100_000 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.CreateGenerator(new GeneratorOptions { Sampling = new SamplingOptions { TopP = 0 } }));
    }

    [Fact]
    public void Generation_stops_when_the_context_is_full()
    {
        using var model = TransformerModel.Load(TestData.Model("stories260K.gguf"));
        using var g = model.CreateGenerator(new GeneratorOptions { ContextLength = 12, Sampling = SamplingOptions.Greedy });
        var result = g.Complete(OnceUponATime, new GenerationOptions { MaxTokens = 100 });
        Assert.Equal(StopReason.ContextFull, result.StopReason);
        // 5 prompt + 7 generated tokens fill the 12 positions; the 8th is sampled from the last logits.
        Assert.Equal(8, result.GeneratedTokens.Length);
        Assert.Equal(12, g.Position);
    }
}

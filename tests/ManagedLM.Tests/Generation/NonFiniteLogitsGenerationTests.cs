using ManagedLM.Generation;
using ManagedLM.Model;
using ManagedLM.Sampling;
using ManagedLM.Tests.Model;

namespace ManagedLM.Tests.Generation;

/// <summary>
/// Weights holding NaN (big matrices are not scanned at load) make NaN logits: greedy, sampled, logprob and streaming
/// generation all throw <see cref="NonFiniteLogitsException"/>, and the generator takes the next request.
/// </summary>
public class NonFiniteLogitsGenerationTests
{
    private static readonly int[] OnceUponATime = [1, 403, 407, 261, 378];
    private static readonly int[] WithPoisonedToken = [1, ModelBytes.PoisonedToken, 336]; // "Timmy said"
    private static readonly GenerationOptions Greedy = new() { MaxTokens = 16, Sampling = SamplingOptions.Greedy };
    private static readonly GenerationOptions Sampled = new() { MaxTokens = 16, Sampling = new SamplingOptions { Temperature = 0.9f, Seed = 11 } };
    private static readonly GenerationOptions SampledWithLogprobs = Sampled with { Logprobs = true, TopLogprobs = 3 };

    [Fact]
    public async Task A_NaN_weight_matrix_fails_every_path_alike_and_the_generator_stays_usable()
    {
        using var model = TransformerModel.Load(ModelBytes.Stories(tensor: (name, w) =>
        {
            if (name == "blk.1.ffn_up.weight")
                w.Fill(float.NaN);
        }));
        using var g = model.CreateGenerator();
        Action[] paths =
        [
            () => g.Complete(OnceUponATime, Greedy),
            () => g.Complete(OnceUponATime, Sampled),
            () => g.Complete(OnceUponATime, SampledWithLogprobs),
            () => g.Generate("Once upon a time", Greedy),
            () =>
            {
                g.Reset();
                g.Prefill(OnceUponATime);
                g.Sample();
            },
        ];
        foreach (var path in paths)
        {
            var ex = Assert.Throws<NonFiniteLogitsException>(path);
            Assert.StartsWith("The model produced non-finite logits (logit 0 of 512 is NaN)", ex.Message);
            Assert.Null(g.LastResult);
        }
        await Assert.ThrowsAsync<NonFiniteLogitsException>(async () =>
        {
            await foreach (var _ in g.GenerateStreamingAsync(OnceUponATime, Sampled))
            {
            }
        });
        g.Reset(); // the guard was released on every path
    }

    [Fact]
    public void A_poisoned_prompt_fails_and_the_same_generator_then_gives_a_clean_prompt_its_exact_text()
    {
        using var healthy = TransformerModel.Load(TestData.Model("stories260K.gguf"));
        using var poisoned = TransformerModel.Load(ModelBytes.StoriesWithNaNEmbedding());
        using var reference = healthy.CreateGenerator();
        var expectedGreedy = reference.Complete(OnceUponATime, Greedy);
        var expectedSampled = reference.Complete(OnceUponATime, Sampled);
        Assert.DoesNotContain(ModelBytes.PoisonedToken, expectedGreedy.GeneratedTokens.Concat(expectedSampled.GeneratedTokens));

        using var g = poisoned.CreateGenerator();
        Assert.Throws<NonFiniteLogitsException>(() => g.Complete(WithPoisonedToken, Greedy));
        Assert.Equal(expectedGreedy.Text, g.Complete(OnceUponATime, Greedy).Text);
        Assert.Throws<NonFiniteLogitsException>(() => g.Complete(WithPoisonedToken, SampledWithLogprobs));
        var sampled = g.Complete(OnceUponATime, Sampled);
        Assert.Equal(expectedSampled.GeneratedTokens, sampled.GeneratedTokens);
    }
}

using ManagedLM.Batching;
using ManagedLM.Generation;
using ManagedLM.Model;
using ManagedLM.Sampling;
using ManagedLM.Tests.Model;

namespace ManagedLM.Tests.Batching;

/// <summary>In a batch, only the request whose logits are NaN fails; the others get their solo outputs and the engine runs on.</summary>
public class BatchEngineNonFiniteTests
{
    [Fact]
    public async Task A_poisoned_request_fails_alone_and_the_engine_keeps_serving()
    {
        using var model = TransformerModel.Load(ModelBytes.StoriesWithNaNEmbedding());
        var tokenizer = model.Tokenizer;
        string[] prompts = ["Once upon a time", "Timmy said", "The little dog", "Lily and Timmy", "One day, a bird"];
        Assert.Equal([false, true, false, true, false], prompts.Select(p => tokenizer.Encode(p).Contains(ModelBytes.PoisonedToken)));
        // The poisoned token is banned from the output: only the prompts holding it are poisoned.
        var options = new GenerationOptions
        {
            MaxTokens = 24,
            Sampling = new SamplingOptions { Temperature = 0.8f, Seed = 5, LogitBias = new Dictionary<int, float> { [ModelBytes.PoisonedToken] = float.NegativeInfinity } },
        };

        await using var engine = new BatchEngine(model, new BatchEngineOptions { MaxActiveSequences = 5, Threads = 2, PrefillChunk = 4 });
        var requests = await Task.WhenAll(prompts.Select(p => engine.SubmitAsync(p, options).AsTask()));
        for (int i = 0; i < prompts.Length; i++)
        {
            if (i is 1 or 3)
            {
                await Assert.ThrowsAsync<NonFiniteLogitsException>(() => requests[i].Completion);
                continue;
            }
            using var solo = model.CreateGenerator();
            var expected = solo.Complete(prompts[i], options);
            var result = await requests[i].Completion;
            Assert.Equal(expected.GeneratedTokens, result.GeneratedTokens);
            Assert.Equal(expected.Text, result.Text);
        }

        var streamed = engine.GenerateStreamingAsync("Timmy said", options);
        await Assert.ThrowsAsync<NonFiniteLogitsException>(async () =>
        {
            await foreach (var _ in streamed)
            {
            }
        });
        using var after = model.CreateGenerator();
        Assert.Equal(after.Complete("The little dog", options).Text, (await engine.GenerateAsync("The little dog", options)).Text);
    }
}

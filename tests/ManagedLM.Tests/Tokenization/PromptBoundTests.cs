using ManagedLM.Batching;
using ManagedLM.Chat;
using ManagedLM.Generation;
using ManagedLM.Sampling;
using ManagedLM.Tests.Concurrency;
using Microsoft.Extensions.AI;

namespace ManagedLM.Tests.Tokenization;

/// <summary>Every string-prompt entry point rejects a prompt that cannot fit its context before tokenizing it, alike, and stays usable.</summary>
public class PromptBoundTests(SharedModels models) : IClassFixture<SharedModels>
{
    private const int Context = 64;

    // stories260K's longest token is 9 bytes: 64 × 9 + 1 bytes need 65 tokens.
    private static readonly string Huge = new('a', Context * 9 + 1);
    private const string Expected = "The prompt needs at least 65 tokens (577 bytes of UTF-8, at most 9 per token); the context length is 64.";

    private static readonly GenerationOptions Short = new() { MaxTokens = 4, Sampling = SamplingOptions.Greedy };

    [Fact]
    public async Task Generator_string_calls_reject_the_prompt_and_stay_usable()
    {
        Assert.Equal(9, models.Stories.Tokenizer.MaxBytesPerToken);
        using var g = models.Stories.CreateGenerator(new GeneratorOptions { ContextLength = Context });
        string before = g.Generate("Once upon a time", Short);
        AssertRejected(Assert.Throws<ArgumentException>(() => g.Generate(Huge, Short)));
        AssertRejected(await Assert.ThrowsAsync<ArgumentException>(() => g.GenerateAsync(Huge, Short)));
        AssertRejected(await Assert.ThrowsAsync<ArgumentException>(async () =>
        {
            await foreach (var _ in g.GenerateStreamingAsync(Huge, Short))
            {
            }
        }));
        Assert.Equal(before, g.Generate("Once upon a time", Short));
    }

    [Fact]
    public async Task Batch_engine_submission_rejects_the_prompt_and_stays_usable()
    {
        using var engine = new BatchEngine(models.Stories, new BatchEngineOptions { ContextLength = Context, MaxActiveSequences = 2, Threads = 1 });
        AssertRejected(await Assert.ThrowsAsync<ArgumentException>(() => engine.SubmitAsync(Huge, Short).AsTask()));
        AssertRejected(Assert.Throws<ArgumentException>(() => engine.TrySubmit(Huge, Short, out _)));
        Assert.Equal(0, engine.Metrics.Queued);
        using var g = models.Stories.CreateGenerator(new GeneratorOptions { ContextLength = Context });
        Assert.Equal(g.Generate("Once upon a time", Short), (await engine.GenerateAsync("Once upon a time", Short)).Text);
    }

    [Fact]
    public void A_chat_turn_that_cannot_fit_is_rejected_and_left_out_of_the_history()
    {
        using var session = new ChatSession(models.Stories, new ChatSessionOptions { Generator = new GeneratorOptions { ContextLength = Context }, Generation = Short });
        var e = Assert.Throws<ArgumentException>(() => session.Send(Huge));
        Assert.StartsWith("The prompt needs at least ", e.Message);
        Assert.Empty(session.Messages);
        session.Send("Hi");
        Assert.Equal(2, session.Messages.Count);
    }

    [Fact]
    public async Task A_chat_client_call_that_cannot_fit_is_rejected()
    {
        using var client = new ModelChatClient(models.Stories, new ModelChatClientOptions { Generator = new GeneratorOptions { ContextLength = Context } });
        var e = await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync(Huge));
        Assert.StartsWith("The prompt needs at least ", e.Message);
        Assert.EndsWith($"the context length is {Context}. (Parameter 'prompt')", e.Message);
    }

    private static void AssertRejected(ArgumentException e)
    {
        Assert.Equal("prompt", e.ParamName);
        Assert.Equal($"{Expected} (Parameter 'prompt')", e.Message);
    }
}

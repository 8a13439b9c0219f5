using ManagedLM.Chat;
using ManagedLM.Generation;
using ManagedLM.Sampling;
using ManagedLM.Tests.Concurrency;
using Microsoft.Extensions.AI;

namespace ManagedLM.Tests.Chat;

/// <summary>The model through Microsoft.Extensions.AI's <see cref="IChatClient"/>: used through the abstractions only, it answers what the library generates.</summary>
public class ModelChatClientTests(SharedModels models) : IClassFixture<SharedModels>
{
    private IChatClient Client(int maxConcurrentCalls = 2) => new ModelChatClient(models.Stories, new ModelChatClientOptions
    {
        Generator = new GeneratorOptions { ContextLength = 512 }, MaxConcurrentCalls = maxConcurrentCalls,
    });

    private static readonly ChatOptions Greedy = new() { Temperature = 0, MaxOutputTokens = 20 };

    // What the library generates for the same conversation.
    private GenerationResult Library(IReadOnlyList<ManagedLM.Chat.ChatMessage> conversation, GenerationOptions options)
    {
        var template = models.Stories.ChatTemplate;
        using var g = models.Stories.CreateGenerator(new GeneratorOptions { ContextLength = 512 });
        return g.Complete(template.Tokenize(models.Stories.Tokenizer, template.Render(conversation)), template.ForReply(options));
    }

    [Fact]
    public async Task A_response_is_the_library_reply_with_usage_finish_reason_and_model_id()
    {
        using var client = Client();
        var response = await client.GetResponseAsync([new(ChatRole.System, "Be kind."), new(ChatRole.User, "Tell me a story.")], Greedy);
        var library = Library([ManagedLM.Chat.ChatMessage.System("Be kind."), ManagedLM.Chat.ChatMessage.User("Tell me a story.")],
            new GenerationOptions { MaxTokens = 20, Sampling = SamplingOptions.Greedy });

        Assert.Equal(library.Text, response.Text);
        var message = Assert.Single(response.Messages);
        Assert.Equal(ChatRole.Assistant, message.Role);
        Assert.Equal(ChatFinishReason.Length, response.FinishReason);
        Assert.Equal(library.PromptTokens.Length, response.Usage!.InputTokenCount);
        Assert.Equal(20, response.Usage.OutputTokenCount);
        Assert.Equal(library.PromptTokens.Length + 20, response.Usage.TotalTokenCount);
        Assert.Equal("stories260K", response.ModelId);
        Assert.NotNull(response.ResponseId);

        var metadata = client.GetService<ChatClientMetadata>();
        Assert.Equal("managedlm", metadata!.ProviderName);
        Assert.Equal("stories260K", metadata.DefaultModelId);
        Assert.Same(client, client.GetService<IChatClient>());
        Assert.Null(client.GetService<IChatClient>("some key"));
    }

    [Fact]
    public async Task A_stream_carries_the_same_text_then_the_finish_reason_and_usage()
    {
        using var client = Client();
        var whole = await client.GetResponseAsync("Tell me a story.", Greedy);
        var updates = await client.GetStreamingResponseAsync("Tell me a story.", Greedy).ToListAsync();

        Assert.Equal(whole.Text, string.Concat(updates.Select(u => u.Text)));
        Assert.True(updates.Count > 3);
        Assert.All(updates, u => Assert.Equal(ChatRole.Assistant, u.Role));
        Assert.Single(updates.Select(u => u.ResponseId).Distinct());
        Assert.Equal(ChatFinishReason.Length, updates[^1].FinishReason);
        var usage = Assert.Single(updates.SelectMany(u => u.Contents).OfType<UsageContent>());
        Assert.Equal(whole.Usage!.OutputTokenCount, usage.Details.OutputTokenCount);

        // The abstractions' own aggregation gives the same response.
        var combined = updates.ToChatResponse();
        Assert.Equal(whole.Text, combined.Text);
        Assert.Equal(whole.Usage.OutputTokenCount, combined.Usage!.OutputTokenCount);
    }

    [Fact]
    public async Task Chat_options_map_to_sampling_stops_lengths_and_instructions()
    {
        using var client = Client();
        var sampled = new ChatOptions { Temperature = 1.0f, TopP = 0.9f, TopK = 20, Seed = 77, MaxOutputTokens = 24, PresencePenalty = 0.5f, FrequencyPenalty = 0.2f };
        var a = await client.GetResponseAsync("Tell me a story.", sampled);
        var b = await client.GetResponseAsync("Tell me a story.", sampled);
        Assert.Equal(a.Text, b.Text);
        var library = Library([ManagedLM.Chat.ChatMessage.User("Tell me a story.")], new GenerationOptions
        {
            MaxTokens = 24,
            Sampling = SamplingOptions.Default with { Temperature = 1.0f, TopP = 0.9f, TopK = 20, Seed = 77, PresencePenalty = 0.5f, FrequencyPenalty = 0.2f },
        });
        Assert.Equal(library.Text, a.Text);

        var free = await client.GetResponseAsync("Tell me a story.", Greedy);
        string stop = free.Text.Substring(free.Text.Length / 2, 3);
        var stopped = await client.GetResponseAsync("Tell me a story.", new ChatOptions { Temperature = 0, MaxOutputTokens = 20, StopSequences = [stop] });
        Assert.Equal(free.Text[..free.Text.IndexOf(stop, StringComparison.Ordinal)], stopped.Text);
        Assert.Equal(ChatFinishReason.Stop, stopped.FinishReason);

        var shorter = await client.GetResponseAsync("Tell me a story.", new ChatOptions { Temperature = 0, MaxOutputTokens = 5 });
        Assert.Equal(5, shorter.Usage!.OutputTokenCount);

        var instructed = await client.GetResponseAsync("Tell me a story.", new ChatOptions { Temperature = 0, MaxOutputTokens = 12, Instructions = "Be brief." });
        var explicitSystem = await client.GetResponseAsync([new(ChatRole.System, "Be brief."), new(ChatRole.User, "Tell me a story.")], new ChatOptions { Temperature = 0, MaxOutputTokens = 12 });
        Assert.Equal(explicitSystem.Text, instructed.Text);
        Assert.Equal(explicitSystem.Usage!.InputTokenCount, instructed.Usage!.InputTokenCount);

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.GetResponseAsync("Hi", new ChatOptions { Temperature = -1 }));
        await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync(Array.Empty<Microsoft.Extensions.AI.ChatMessage>()));
    }

    [Fact]
    public async Task The_next_turn_reuses_the_cached_conversation()
    {
        using var client = Client(maxConcurrentCalls: 1);
        List<Microsoft.Extensions.AI.ChatMessage> history = [new(ChatRole.User, "Tell me a story.")];
        var first = await client.GetResponseAsync(history, Greedy);
        history.AddMessages(first);
        history.Add(new(ChatRole.User, "And then?"));
        var second = await client.GetResponseAsync(history, Greedy);
        Assert.True(second.Usage!.CachedInputTokenCount >= first.Usage!.InputTokenCount,
            $"cached {second.Usage.CachedInputTokenCount} of {second.Usage.InputTokenCount}; the first prompt had {first.Usage.InputTokenCount}");

        // And it changes nothing: a fresh client answers the same.
        using var fresh = Client();
        Assert.Equal((await fresh.GetResponseAsync(history, Greedy)).Text, second.Text);
    }

    [Fact]
    public async Task Calls_from_many_threads_run_in_parallel_and_equal_their_sequential_answers()
    {
        using var client = Client(maxConcurrentCalls: 4);
        string[] prompts = ["Tell me a story.", "Who is Lily?", "What did the dog do?", "Sing a song.", "Hello!", "Why is the sky blue?", "Tom said", "Once"];
        var sequential = new List<string>();
        foreach (string p in prompts)
            sequential.Add((await client.GetResponseAsync(p, Greedy)).Text);
        var parallel = await Task.WhenAll(prompts.Select(p => Task.Run(() => client.GetResponseAsync(p, Greedy))));
        Assert.Equal(sequential, parallel.Select(r => r.Text));
    }

    [Fact]
    public async Task Cancellation_stops_a_call_and_the_client_stays_usable()
    {
        using var client = Client(maxConcurrentCalls: 1);
        using var cts = new CancellationTokenSource();
        var endless = new ChatOptions { Temperature = 0, MaxOutputTokens = 400 };
        int received = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var update in client.GetStreamingResponseAsync("Tell me a long story.", endless, cts.Token))
            {
                if (++received == 3)
                    cts.Cancel();
            }
        });
        Assert.Equal(3, received);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.GetResponseAsync("Hi", Greedy, new CancellationToken(canceled: true)));
        Assert.Equal(20, (await client.GetResponseAsync("Hi", Greedy)).Usage!.OutputTokenCount);
    }
}

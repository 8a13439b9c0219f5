using ManagedLM.Chat;
using ManagedLM.Generation;
using ManagedLM.Sampling;
using ManagedLM.Tests.Concurrency;
using AI = Microsoft.Extensions.AI;

namespace ManagedLM.Tests.Chat;

/// <summary>
/// Conversations ten times the context: with TruncateHistory the oldest turns leave (the system prompt stays), each turn
/// leaves its reply room, the cached system prompt is reused, and a trimmed turn answers exactly as a fresh session given
/// the trimmed history; with Stop the conversation ends in an ArgumentException; a reply longer than the context shifts.
/// Qwen2.5's template on a random-weight model with the GPT-2 vocabulary.
/// </summary>
public class ChatHistoryTrimmingTests(SharedModels models) : IClassFixture<SharedModels>
{
    private const int Context = 128;
    private const string System = "Be brief.";

    private static GenerationOptions Reply(ContextOverflow policy, int tokens = 12) => new()
    {
        MaxTokens = tokens, IgnoreEndOfGeneration = true, ContextOverflow = policy, Sampling = new SamplingOptions { Temperature = 0.7f, Seed = 3 },
    };

    private ChatSession Session(ContextOverflow policy, int tokens = 12) => new(models.Gpt2Vocab, new ChatSessionOptions
    {
        SystemPrompt = System, Generation = Reply(policy, tokens), Generator = new GeneratorOptions { ContextLength = Context },
    });

    private static string Turn(int i) => $"Tell me about the number {i}, please.";

    private int SystemTokens()
    {
        var template = models.Gpt2Vocab.ChatTemplate;
        return template.Tokenize(models.Gpt2Vocab.Tokenizer,
            template.Render([ChatMessage.System(System)], new ChatTemplateOptions { AddGenerationPrompt = false })).Length;
    }

    [Fact]
    public void TruncateHistory_keeps_a_conversation_of_ten_contexts_going_and_keeps_the_system_prompt()
    {
        using var session = Session(ContextOverflow.TruncateHistory);
        int total = 0, system = SystemTokens();
        for (int i = 0; total < 10 * Context; i++)
        {
            var r = session.Send(Turn(i), null);
            total += r.PromptTokens.Length - r.ReusedPromptTokens + r.GeneratedTokens.Length;
            Assert.Equal(12, r.GeneratedTokens.Length);
            Assert.Equal(StopReason.MaxTokens, r.StopReason);
            Assert.True(r.PromptTokens.Length + 12 <= Context, $"turn {i}: {r.PromptTokens.Length} prompt tokens leave no room for the reply");
            if (i > 0)
                Assert.True(r.ReusedPromptTokens >= system, $"turn {i}: reused {r.ReusedPromptTokens} of the system prompt's {system}");
            Assert.Equal(0, r.ContextShifts);
            Assert.Equal("user", session.Messages[0].Role);
            Assert.Equal(Turn(i), session.Messages[^2].Content);
            Assert.StartsWith($"<|im_start|>system\n{System}<|im_end|>", session.RenderPrompt());
        }
        Assert.True(session.DroppedMessages > 20, $"dropped {session.DroppedMessages}");
        Assert.Equal(0, session.DroppedMessages % 2);   // whole turns: a question with its answer
    }

    [Fact]
    public void A_trimmed_turn_answers_as_a_fresh_session_given_what_was_kept()
    {
        using var session = Session(ContextOverflow.TruncateHistory);
        for (int i = 0; i < 12; i++)
            session.Send(Turn(i));
        int dropped = session.DroppedMessages;
        var last = session.Send(Turn(12), null);
        Assert.True(session.DroppedMessages > dropped, "the last turn should have dropped the oldest turns");

        // The same history, given whole to a session that never saw the dropped turns: it fits, nothing is trimmed.
        using var fresh = Session(ContextOverflow.Stop);
        foreach (var m in session.Messages.SkipLast(2))
            fresh.Add(m);
        var replay = fresh.Send(Turn(12), null);
        Assert.Equal(0, fresh.DroppedMessages);
        Assert.Equal(replay.PromptTokens, last.PromptTokens);
        Assert.Equal(replay.GeneratedTokens, last.GeneratedTokens);
    }

    [Fact]
    public void Stop_refuses_the_turn_that_does_not_fit_and_keeps_the_history()
    {
        using var session = Session(ContextOverflow.Stop);
        var e = Assert.Throws<ArgumentException>(() =>
        {
            for (int i = 0; i < 100; i++)
                session.Send(Turn(i));
        });
        Assert.Contains($"context length is {Context}", e.Message);
        Assert.Equal("assistant", session.Messages[^1].Role);   // the refused question is not left behind
        Assert.Equal(0, session.DroppedMessages);
    }

    [Fact]
    public void A_reply_longer_than_the_context_shifts_and_keeps_the_system_prompt()
    {
        using var session = Session(ContextOverflow.TruncateHistory, tokens: 3 * Context);
        var r = session.Send("Tell me a long story.", null);
        Assert.Equal(3 * Context, r.GeneratedTokens.Length);
        Assert.True(r.ContextShifts >= 3, $"{r.ContextShifts} shifts");
        // The next turn is trimmed to leave half the context for its reply (the room is at most half the context).
        var next = session.Send("And then?", null);
        Assert.True(next.PromptTokens.Length <= Context / 2, $"{next.PromptTokens.Length} prompt tokens");
        Assert.True(next.ReusedPromptTokens >= SystemTokens());
    }

    [Fact]
    public async Task ModelChatClient_trims_a_long_conversation_per_call_and_answers_as_for_the_kept_messages()
    {
        var messages = new List<AI.ChatMessage> { new(AI.ChatRole.System, System) };
        for (int i = 0; i < 40; i++)
        {
            messages.Add(new(AI.ChatRole.User, Turn(i)));
            messages.Add(new(AI.ChatRole.Assistant, $"The number {i} is a fine number, one of my favourites."));
        }
        messages.Add(new(AI.ChatRole.User, Turn(40)));
        using var client = new ModelChatClient(models.Gpt2Vocab, new ModelChatClientOptions { Generator = new GeneratorOptions { ContextLength = Context } });
        var options = new AI.ChatOptions { MaxOutputTokens = 12, Temperature = 0.7f, Seed = 3, AdditionalProperties = new() { ["context_overflow"] = "truncate_history" } };

        var response = await client.GetResponseAsync(messages, options);
        Assert.True(response.Usage!.InputTokenCount + 12 <= Context, $"{response.Usage.InputTokenCount} prompt tokens");
        Assert.Equal(12, response.Usage.OutputTokenCount);

        // The kept messages: the system prompt and the newest turns, as ChatHistory.Fit picks them.
        var fit = ChatHistory.Fit(models.Gpt2Vocab.ChatTemplate, models.Gpt2Vocab.Tokenizer,
            [ChatMessage.System(System), .. messages.Skip(1).Select(m => new ChatMessage(m.Role.Value, m.Text))], Context, 12, truncate: true);
        Assert.True(fit.DroppedMessages > 60);
        Assert.Equal(fit.Tokens.Length, response.Usage.InputTokenCount);
        var kept = messages.Where((m, i) => i == 0 || i > fit.DroppedMessages).ToList();
        var plain = await client.GetResponseAsync(kept, new AI.ChatOptions { MaxOutputTokens = 12, Temperature = 0.7f, Seed = 3 });
        Assert.Equal(plain.Text, response.Text);

        // Without the option (Stop, the default), the conversation does not fit.
        await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync(messages, new AI.ChatOptions { MaxOutputTokens = 12 }));
        var bad = new AI.ChatOptions { AdditionalProperties = new() { ["context_overflow"] = "forget" } };
        var e = await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync(messages, bad));
        Assert.Contains("truncate_history", e.Message);
    }
}

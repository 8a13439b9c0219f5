using System.Text.Json;
using ManagedLM.Chat;
using ManagedLM.Generation;
using ManagedLM.Sampling;
using ManagedLM.Tests.Concurrency;

namespace ManagedLM.Tests.Chat;

/// <summary>Chat sessions: templates from the model or the session, prefix reuse across turns, history, streaming, persistence.</summary>
public class ChatSessionTests(SharedModels models) : IClassFixture<SharedModels>
{
    private static readonly GenerationOptions Greedy = new() { MaxTokens = 12, Sampling = SamplingOptions.Greedy };

    [Fact]
    public void Models_bring_their_template_or_fall_back_to_ChatML_with_a_warning()
    {
        Assert.False(models.Gpt2Vocab.ChatTemplate.IsFallback);
        Assert.Null(models.Gpt2Vocab.ChatTemplateWarning);
        Assert.Contains("<|im_start|>", models.Gpt2Vocab.ChatTemplate.Source);
        Assert.Equal("<|endoftext|>", models.Gpt2Vocab.ChatTemplate.BosToken);

        Assert.True(models.Stories.ChatTemplate.IsFallback);
        Assert.Contains("ChatML", models.Stories.ChatTemplateWarning);
        Assert.Equal("<s>", models.Stories.ChatTemplate.BosToken);
        Assert.Equal("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", models.Stories.ChatTemplate.Render([ChatMessage.User("hi")]));
    }

    [Fact]
    public void A_second_turn_evaluates_only_what_is_new_and_answers_as_a_fresh_prefill_would()
    {
        using var session = new ChatSession(models.Gpt2Vocab, new ChatSessionOptions { SystemPrompt = "Be brief.", Generation = Greedy });
        string first = session.Send("Hello there");
        var second = session.Send("And then?", null);
        Assert.True(second.ReusedPromptTokens > 10, $"reused {second.ReusedPromptTokens}");
        Assert.Equal(4, session.Messages.Count);
        Assert.Equal(first, session.Messages[1].Content);

        using var fresh = new ChatSession(models.Gpt2Vocab, new ChatSessionOptions { SystemPrompt = "Be brief.", Generation = Greedy });
        fresh.Add(ChatMessage.User("Hello there"));
        fresh.Add(ChatMessage.Assistant(first));
        var replay = fresh.Send("And then?", null);
        Assert.Equal(0, replay.ReusedPromptTokens);
        Assert.Equal(replay.GeneratedTokens, second.GeneratedTokens);
    }

    [Fact]
    public void The_rendered_prompt_is_the_template_output_and_its_bos_is_not_doubled()
    {
        using var session = new ChatSession(models.Stories, new ChatSessionOptions
        {
            Template = ChatTemplate.Parse("{{ bos_token }}{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}assistant:", "<s>", "</s>"),
        });
        session.Add(ChatMessage.User("Once upon a time"));
        Assert.Equal("<s>user: Once upon a time\nassistant:", session.RenderPrompt());
        int[] ids = session.Tokenize(session.RenderPrompt());
        Assert.Equal(1, ids[0]);
        Assert.NotEqual(1, ids[1]);
    }

    [Fact]
    public void A_template_that_rewrites_earlier_text_falls_back_to_the_common_prefix()
    {
        // Renders only the last message: every turn's prompt differs from the cached one after its first tokens.
        var lastOnly = ChatTemplate.Parse("{{ messages[-1].content }}");
        using var session = new ChatSession(models.Stories, new ChatSessionOptions { Template = lastOnly, Generation = Greedy });
        session.Send("Once upon a time");
        var second = session.Send("The little dog", null);
        using var fresh = new ChatSession(models.Stories, new ChatSessionOptions { Template = lastOnly, Generation = Greedy });
        Assert.Equal(fresh.Send("The little dog", null).GeneratedTokens, second.GeneratedTokens);
    }

    [Fact]
    public async Task Two_sessions_on_two_models_with_different_templates_run_concurrently()
    {
        string[] userTurns = ["Hello", "Tell me more", "Thanks"];
        async Task<string[]> Converse(ChatSession session) =>
            await Task.Run(() => userTurns.Select(u => session.Send(u)).ToArray());
        string[] Solo(Func<ChatSession> make)
        {
            using var s = make();
            return userTurns.Select(u => s.Send(u)).ToArray();
        }
        ChatSession Qwen() => new(models.Gpt2Vocab, new ChatSessionOptions { Generation = Greedy });
        ChatSession Stories() => new(models.Stories, new ChatSessionOptions { Generation = Greedy, SystemPrompt = "Tell a story." });

        for (int rep = 0; rep < 3; rep++)
        {
            using var a = Qwen();
            using var b = Stories();
            var both = await Task.WhenAll(Converse(a), Converse(b));
            Assert.Equal(Solo(Qwen), both[0]);
            Assert.Equal(Solo(Stories), both[1]);
            Assert.Contains("<|im_start|>system\nYou are Qwen", a.RenderPrompt());
            Assert.StartsWith("<|im_start|>system\nTell a story.<|im_end|>", b.RenderPrompt());
        }
    }

    [Fact]
    public async Task A_streamed_reply_joins_the_history_and_cancellation_keeps_what_was_said()
    {
        using var session = new ChatSession(models.Stories, new ChatSessionOptions { Generation = Greedy with { MaxTokens = 40, IgnoreEndOfGeneration = true } });
        string streamed = "";
        await foreach (var t in session.SendStreamingAsync("Once upon a time"))
            streamed += t.Text;
        Assert.Equal(streamed, session.Messages[^1].Content);
        Assert.NotNull(session.LastResult);

        using var cts = new CancellationTokenSource();
        string partial = "";
        int count = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var t in session.SendStreamingAsync("Tom had a ball", cts.Token))
            {
                partial += t.Text;
                if (++count == 3)
                    cts.Cancel();
            }
        });
        Assert.Equal(4, session.Messages.Count);
        Assert.Equal(partial, session.Messages[^1].Content);
        Assert.Null(session.LastResult);
    }

    [Fact]
    public void Save_and_load_restore_the_conversation()
    {
        using var session = new ChatSession(models.Stories, new ChatSessionOptions { SystemPrompt = "sys", Generation = Greedy });
        session.Send("Once upon a time");
        var saved = new MemoryStream();
        session.Save(saved);

        using var restored = new ChatSession(models.Stories, new ChatSessionOptions { Generation = Greedy });
        restored.Load(new MemoryStream(saved.ToArray()));
        Assert.Equal("sys", restored.SystemPrompt);
        Assert.Equal(session.Messages, restored.Messages);
        Assert.Equal(session.RenderPrompt(), restored.RenderPrompt());
        Assert.Equal(session.Send("Then"), restored.Send("Then"));

        Assert.Throws<JsonException>(() => restored.Load(new MemoryStream("[1, 2]"u8.ToArray())));
        Assert.Throws<JsonException>(() => restored.Load(new MemoryStream("""{"messages": [{"content": "no role"}]}"""u8.ToArray())));
        Assert.Equal("sys", restored.SystemPrompt);
    }

    [Fact]
    public void Reset_forgets_the_messages_but_keeps_the_system_prompt()
    {
        using var session = new ChatSession(models.Stories, new ChatSessionOptions { SystemPrompt = "sys", Generation = Greedy });
        session.Send("Hi");
        session.Reset();
        Assert.Empty(session.Messages);
        Assert.Equal("<|im_start|>system\nsys<|im_end|>\n<|im_start|>assistant\n", session.RenderPrompt());
    }
}

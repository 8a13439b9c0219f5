using System.Text.Json;
using ManagedLM.Chat;
using ManagedLM.Generation;
using ManagedLM.Model;

namespace ManagedLM.Samples;

/// <summary>The README's long-conversations sample: a generation four contexts long, and a chat of twenty turns in a small context.</summary>
internal static class LongConversationsSample
{
    /// <summary>Prints the two summary lines, then a line of JSON: the story's tokens and shifts, the chat's kept and dropped messages.</summary>
    public static Task RunAsync(TransformerModel model, CancellationToken ct)
    {
        #region readme: long-conversations
        // Past the context: shift it (llama.cpp's --context-shift), keeping the whole prompt.
        using var generator = model.CreateGenerator(new GeneratorOptions { ContextLength = 256 });
        GenerationResult story = generator.Complete("Once upon a time", new GenerationOptions
        {
            MaxTokens = 1024, IgnoreEndOfGeneration = true, ContextOverflow = ContextOverflow.Shift, KeepTokens = -1,
        }, cancellationToken: ct);
        Console.WriteLine($"{story.GeneratedTokens.Length} tokens, {story.ContextShifts} shifts");

        // A chat that goes on: the oldest turns leave, the system prompt stays.
        using var chat = new ChatSession(model, new ChatSessionOptions
        {
            SystemPrompt = "You tell stories.",
            Generation = new GenerationOptions { MaxTokens = 48, ContextOverflow = ContextOverflow.TruncateHistory },
            Generator = new GeneratorOptions { ContextLength = 256 },
        });
        for (int i = 0; i < 20; i++)
            chat.Send($"Tell me about dog number {i}.", ct);
        Console.WriteLine($"{chat.Messages.Count} messages kept, {chat.DroppedMessages} dropped");
        #endregion

        Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, int>
        {
            ["tokens"] = story.GeneratedTokens.Length, ["shifts"] = story.ContextShifts, ["kept"] = chat.Messages.Count, ["dropped"] = chat.DroppedMessages,
        }));
        return Task.CompletedTask;
    }
}

using System.Text.Json;
using ManagedLM.Chat;
using ManagedLM.Model;
using Microsoft.Extensions.AI;

namespace ManagedLM.Samples;

/// <summary>The README's Microsoft.Extensions.AI sample: a <see cref="ModelChatClient"/> used as an <see cref="IChatClient"/>.</summary>
internal static class ChatClientSample
{
    /// <summary>Prints the first reply's line and the streamed reply, then a line of JSON: the first reply's parts.</summary>
    public static async Task RunAsync(TransformerModel model, CancellationToken ct)
    {
        #region readme: chat-client
        IChatClient client = new ModelChatClient(model);
        ChatResponse r = await client.GetResponseAsync("What is a GGUF file?",
            new ChatOptions { Temperature = 0.2f, TopP = 0.9f, MaxOutputTokens = 200, StopSequences = ["\n\n"], Seed = 7 });
        Console.WriteLine($"{r.Text} ({r.Usage?.OutputTokenCount} tokens, {r.FinishReason})");
        await foreach (ChatResponseUpdate u in client.GetStreamingResponseAsync("And a tensor?", new ChatOptions { Seed = 7 }, ct))
            Console.Write(u.Text);
        #endregion

        Console.WriteLine();
        Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["text"] = r.Text, ["output_tokens"] = r.Usage?.OutputTokenCount, ["finish_reason"] = r.FinishReason?.Value,
        }));
    }
}

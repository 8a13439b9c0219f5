using System.Text.Json;
using ManagedLM.Chat;
using ManagedLM.Generation;
using ManagedLM.Model;

namespace ManagedLM.Samples;

/// <summary>The README's chat sample: two turns with a <see cref="ChatSession"/>, saved to chat.json in the working directory.</summary>
internal static class ChatSample
{
    /// <summary>Prints the streamed reply, then a line of JSON: the first reply.</summary>
    public static async Task RunAsync(TransformerModel model, CancellationToken ct)
    {
        #region readme: chat
        using var chat = new ChatSession(model, new ChatSessionOptions
        {
            SystemPrompt = "You are a concise assistant.",
            Generation = new GenerationOptions { MaxTokens = 256 },
            // Template = ChatTemplate.Parse(File.ReadAllText("my.jinja"), "<s>", "</s>"),   // override the model's
        });
        string reply = chat.Send("What is a GGUF file?");
        await foreach (TokenOutput t in chat.SendStreamingAsync("And a tensor?", ct))   // cancel: the partial reply stays
            Console.Write(t.Text);
        using (var file = File.Create("chat.json"))
            chat.Save(file);                                            // Load(...) restores it; Reset() clears it
        #endregion

        Console.WriteLine();
        Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, string> { ["reply"] = reply }));
    }
}

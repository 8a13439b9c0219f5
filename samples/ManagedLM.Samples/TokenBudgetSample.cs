using System.Text.Json;
using ManagedLM.Model;
using Microsoft.ML.Tokenizers;

namespace ManagedLM.Samples;

/// <summary>The README's "token budgeting": the model's tokenizer as a Microsoft.ML.Tokenizers <see cref="Tokenizer"/> that splits a text into chunks.</summary>
internal static class TokenBudgetSample
{
    /// <summary>Prints the chunks, one a line, then a line of JSON: the chunks, their token counts, the text's count and the last 8 tokens' text.</summary>
    public static Task RunAsync(TransformerModel model, CancellationToken ct)
    {
        string text = string.Concat(Enumerable.Repeat("Once upon a time, there was a little girl named Lily. She loved to play outside. ", 4));

        #region readme: token-budget
        Tokenizer tokenizer = model.Tokenizer.AsMLTokenizer();          // Microsoft.ML.Tokenizers.Tokenizer; ours does the work
        int total = tokenizer.CountTokens(text);
        var chunks = new List<string>();
        for (string rest = text; rest.Length > 0;)
        {
            int cut = tokenizer.GetIndexByTokenCount(rest, maxTokenCount: 32, out _, out _);   // never inside a token
            chunks.Add(rest[..cut]);
            rest = rest[cut..];
        }
        string tail = text[tokenizer.GetIndexByTokenCountFromEnd(text, 8, out _, out _)..];    // the last 8 tokens' text
        #endregion

        foreach (string chunk in chunks)
            Console.WriteLine(chunk);
        Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["chunks"] = chunks,
            ["counts"] = chunks.Select(c => tokenizer.CountTokens(c)).ToArray(),
            ["total"] = total,
            ["tail"] = tail,
        }));
        return Task.CompletedTask;
    }
}

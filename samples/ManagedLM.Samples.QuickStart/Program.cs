#region readme: quick-start
using ManagedLM.Generation;
using ManagedLM.Model;
using ManagedLM.Sampling;

using var model = TransformerModel.Load(args.Length > 0 ? args[0] : "stories260K.gguf");   // immutable: share it across threads

using var generator = model.CreateGenerator();                 // one request's state: KV cache, sampler, RNG
string text = generator.Generate("Once upon a time", new GenerationOptions
{
    MaxTokens = 64,
    StopStrings = ["The end"],
    Sampling = new SamplingOptions { Temperature = 0.8f, TopK = 40, TopP = 0.95f, Seed = 42 },
});
Console.WriteLine(text);

using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(1));   // cancelling stops the stream (OperationCanceledException)
var greedy = new GenerationOptions { MaxTokens = 32, Sampling = SamplingOptions.Greedy };
await foreach (TokenOutput t in generator.GenerateStreamingAsync("Tom had a ball", greedy, cts.Token))
    Console.Write(t.Text);                                     // UTF-8 safe pieces; t.Id, t.Logprob
Console.WriteLine();
Console.WriteLine(generator.LastResult);                       // StopReason (EndOfGeneration, MaxTokens, StopString, ContextFull), tokens, tokens/s, text
#endregion

using ManagedLM.Model;
using ManagedLM.Samples;

// ManagedLM.Samples SAMPLE [MODEL]: runs one of the README's samples on the model, printing what it produced.
Func<TransformerModel, CancellationToken, Task>? sample = args.FirstOrDefault() switch
{
    "many-requests" => ManyRequests.RunAsync,
    "batch-engine" => BatchEngineSample.RunAsync,
    "chat" => ChatSample.RunAsync,
    "chat-client" => ChatClientSample.RunAsync,
    "structured-output" => StructuredOutputSample.RunAsync,
    "tools" => ToolsSample.RunAsync,
    "long-conversations" => LongConversationsSample.RunAsync,
    "embeddings" => EmbeddingsSample.RunAsync,
    "retrieval" => RetrievalSample.RunAsync,
    "token-budget" => TokenBudgetSample.RunAsync,
    _ => null,
};
if (sample is null)
{
    Console.Error.WriteLine("usage: ManagedLM.Samples (many-requests | batch-engine | chat | chat-client | structured-output | tools | long-conversations | embeddings | retrieval | token-budget) [MODEL.gguf]");
    return 1;
}
using var model = TransformerModel.Load(args.Length > 1 ? args[1] : "stories260K.gguf");
using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cts.Cancel();
};
await sample(model, cts.Token);
return 0;

using ManagedLM.Batching;
using ManagedLM.Chat;
using ManagedLM.Embeddings;
using ManagedLM.Generation;
using ManagedLM.Inference;
using ManagedLM.Model;

namespace ManagedLM.Server;

/// <summary>
/// What <c>services.AddManagedLM(...)</c> serves: the model file and how its engines, chat client, embedding generator
/// and OpenAI endpoints run. Bound from configuration (a section such as <c>"ManagedLM"</c> of appsettings.json, or
/// environment variables such as <c>ManagedLM__ModelPath</c>) and checked when the host starts: a bad value stops it with
/// an <see cref="Microsoft.Extensions.Options.OptionsValidationException"/> that names the key.
/// </summary>
public sealed class ManagedLMOptions
{
    /// <summary>
    /// The GGUF model file; a relative path is taken from the app's content root. Required unless the app registered a
    /// <see cref="Model.TransformerModel"/> of its own before <c>AddManagedLM</c>.
    /// </summary>
    public string? ModelPath { get; set; }

    /// <summary>The model id the API and the chat client report (default: the model's <see cref="Model.TransformerModel.Name"/>).</summary>
    public string? ModelId { get; set; }

    /// <summary>Context length of each sequence of the batch engine and of each chat call; null: min(model's, 4096).</summary>
    public int? ContextLength { get; set; }

    /// <summary>Threads of each batch engine step and of the embedding engine; null: one per core.</summary>
    public int? Threads { get; set; }

    /// <summary>KV cache storage of each sequence: F16 (the default), or Q8_0 for about twice the sequences in the same memory.</summary>
    public KvCacheType KvCacheType { get; set; } = KvCacheType.F16;

    /// <summary>Sequences the batch engine decodes together (llama-server's --parallel); more requests wait.</summary>
    public int MaxActiveSequences { get; set; } = BatchEngineOptions.Default.MaxActiveSequences;

    /// <summary>Requests that may wait for a place in the batch; beyond that the API answers 429.</summary>
    public int MaxQueuedRequests { get; set; } = BatchEngineOptions.Default.MaxQueuedRequests;

    /// <summary>Calls of the <c>IChatClient</c> and of the <c>IEmbeddingGenerator</c> generating at once (a generator each); 0: one per core.</summary>
    public int MaxConcurrentCalls { get; set; }

    /// <summary>When set, every endpoint of the API but <c>/</c> and <c>/health</c> needs <c>Authorization: Bearer &lt;key&gt;</c>.</summary>
    public string? ApiKey { get; set; }

    /// <summary>Largest max_tokens a request may ask for (and the default when it asks for none).</summary>
    public int MaxTokensLimit { get; set; } = 4096;

    /// <summary>Largest request body the API accepts (bytes).</summary>
    public long MaxBodyBytes { get; set; } = 4 << 20;

    /// <summary>What a reply that fills its context does when the request does not say: Stop, Shift or TruncateHistory.</summary>
    public ContextOverflow ContextOverflow { get; set; }

    /// <summary>Split the model's reasoning (<c>&lt;think&gt;…&lt;/think&gt;</c>) from replies (true, the default), or leave it in the text.</summary>
    public bool ExtractReasoning { get; set; } = true;

    /// <summary>A Jinja chat template file to use instead of the model's own; a relative path is taken from the content root.</summary>
    public string? ChatTemplatePath { get; set; }

    /// <summary>Serve embeddings only (llama-server's --embedding): no batch engine, and /v1/chat/completions refused. An encoder model always is.</summary>
    public bool EmbeddingsOnly { get; set; }

    /// <summary>How a text's vectors pool into its embedding (Mean, Cls, Last, Rank); null: the model's own.</summary>
    public PoolingType? Pooling { get; set; }

    /// <summary>The batch engine's options.</summary>
    internal BatchEngineOptions EngineOptions() => BatchEngineOptions.Default with
    {
        MaxActiveSequences = MaxActiveSequences, MaxQueuedRequests = MaxQueuedRequests, ContextLength = ContextLength, Threads = Threads,
        KvCacheType = KvCacheType,
    };

    /// <summary>The embedding engine's options.</summary>
    internal EmbeddingEngineOptions EmbeddingOptions() => EmbeddingEngineOptions.Default with
    {
        Threads = Threads ?? Environment.ProcessorCount, Pooling = Pooling,
    };

    /// <summary>The API's options (its address and port are the app's, not these).</summary>
    internal ServerOptions ServerOptions(ChatTemplate? template) => new()
    {
        ModelId = ModelId, ApiKey = ApiKey, MaxTokensLimit = MaxTokensLimit, MaxBodyBytes = MaxBodyBytes, ContextOverflow = ContextOverflow,
        ExtractReasoning = ExtractReasoning, ChatTemplate = template, EmbeddingsOnly = EmbeddingsOnly, Engine = EngineOptions(),
        Embeddings = EmbeddingOptions(),
    };

    /// <summary>The chat client's options.</summary>
    internal ModelChatClientOptions ChatClientOptions(ChatTemplate? template) => new()
    {
        ModelId = ModelId, Template = template, ExtractReasoning = ExtractReasoning, MaxConcurrentCalls = MaxConcurrentCalls,
        Generator = GeneratorOptions(), Generation = GenerationOptions.Default with { ContextOverflow = ContextOverflow },
    };

    /// <summary>The options of the generators of the chat client and the generator pool.</summary>
    internal GeneratorOptions GeneratorOptions() => Generation.GeneratorOptions.Default with { ContextLength = ContextLength, KvCacheType = KvCacheType };

    /// <summary>The embedding generator's options.</summary>
    internal ModelEmbeddingGeneratorOptions EmbeddingGeneratorOptions() => new()
    {
        ModelId = ModelId, MaxConcurrentCalls = MaxConcurrentCalls, Embedder = EmbedderOptions.Default with { Pooling = Pooling },
    };
}

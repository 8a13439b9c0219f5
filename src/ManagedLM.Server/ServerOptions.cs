using ManagedLM.Batching;
using ManagedLM.Generation;

namespace ManagedLM.Server;

/// <summary>How <see cref="OpenAiServer"/> listens and what it accepts.</summary>
public sealed record ServerOptions
{
    /// <summary>Address to bind (loopback unless asked otherwise).</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>Port (0: any free port; see <see cref="OpenAiServer.Urls"/>).</summary>
    public int Port { get; init; } = 8080;

    /// <summary>When set, every /v1 and tokenizer request needs <c>Authorization: Bearer &lt;key&gt;</c>.</summary>
    public string? ApiKey { get; init; }

    /// <summary>The model id the API reports (default: the model's <see cref="ManagedLM.Model.TransformerModel.Name"/>).</summary>
    public string? ModelId { get; init; }

    /// <summary>The chat template to render conversations with instead of the model's own (its BOS/EOS tokens are the model's).</summary>
    public ManagedLM.Chat.ChatTemplate? ChatTemplate { get; init; }

    /// <summary>
    /// Split the model's reasoning (<c>&lt;think&gt;…&lt;/think&gt;</c> and the like) from chat replies into
    /// <c>reasoning_content</c> (true, the default, llama-server's <c>--reasoning-format deepseek</c>), or leave it inline
    /// in the content (false: <c>--reasoning-format none</c>).
    /// </summary>
    public bool ExtractReasoning { get; init; } = true;

    /// <summary>
    /// What a request whose reply fills its context does when it does not say (<c>context_overflow</c>): stop (the default,
    /// <c>finish_reason: "length"</c>), shift the context (llama-server's <c>--context-shift</c>; <c>n_keep</c>,
    /// <c>n_discard</c>), or for chat also drop the conversation's oldest turns.
    /// </summary>
    public ContextOverflow ContextOverflow { get; init; }

    /// <summary>Largest request body accepted (bytes).</summary>
    public long MaxBodyBytes { get; init; } = 4 << 20;

    /// <summary>Largest max_tokens a request may ask for (and the default when it asks for none).</summary>
    public int MaxTokensLimit { get; init; } = 4096;

    /// <summary>The batch engine: sequences decoded together (--parallel), queue bound, context per sequence (--ctx).</summary>
    public BatchEngineOptions Engine { get; init; } = BatchEngineOptions.Default;

    /// <summary>
    /// Serve embeddings only (llama-server's <c>--embedding</c>): /v1/embeddings and /v1/rerank, no completions and no batch
    /// engine. An encoder model (BERT) is always served this way.
    /// </summary>
    public bool EmbeddingsOnly { get; init; }

    /// <summary>The embedding engine behind /v1/embeddings and /v1/rerank: threads, tokens per pass, pooling, queue bound.</summary>
    public EmbeddingEngineOptions Embeddings { get; init; } = EmbeddingEngineOptions.Default;

    /// <summary>Where to write one line per request (method, path, status, time); null: no log.</summary>
    public TextWriter? Log { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> for values out of range.</summary>
    public void Validate()
    {
        if (Port is < 0 or > 65535)
            throw new ArgumentOutOfRangeException(nameof(Port), Port, "Port must be in [0, 65535].");
        if (Host is not ("localhost" or "*" or "0.0.0.0") && !System.Net.IPAddress.TryParse(Host, out _))
            throw new ArgumentException($"Host \"{Host}\" is not an IP address, localhost, 0.0.0.0 or *.", nameof(Host));
        if (MaxBodyBytes < 1024)
            throw new ArgumentOutOfRangeException(nameof(MaxBodyBytes), MaxBodyBytes, "MaxBodyBytes must be at least 1024.");
        if (MaxTokensLimit < 1)
            throw new ArgumentOutOfRangeException(nameof(MaxTokensLimit), MaxTokensLimit, "MaxTokensLimit must be at least 1.");
        if (!Enum.IsDefined(ContextOverflow))
            throw new ArgumentOutOfRangeException(nameof(ContextOverflow), ContextOverflow, "Not a ContextOverflow policy.");
        if (ApiKey is { Length: 0 })
            throw new ArgumentException("ApiKey must be null or non-empty.", nameof(ApiKey));
        Engine.Validate();
        Embeddings.Validate();
    }
}

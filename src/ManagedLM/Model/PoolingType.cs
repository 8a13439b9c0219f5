namespace ManagedLM.Model;

/// <summary>
/// How an embedding is made from a sequence's final hidden states (<c>{arch}.pooling_type</c>, llama.cpp's
/// llama_pooling_type; the values are the file's).
/// </summary>
public enum PoolingType
{
    /// <summary>No pooling: one vector per token.</summary>
    None = 0,
    /// <summary>The mean of every token's vector, special tokens included.</summary>
    Mean = 1,
    /// <summary>The first token's vector ([CLS]).</summary>
    Cls = 2,
    /// <summary>The last token's vector (decoder embedding models such as Qwen3-Embedding).</summary>
    Last = 3,
    /// <summary>
    /// A relevance score from the model's classifier head (<c>cls</c>, <c>cls.output</c>) over the [CLS] token of an encoder,
    /// or the last token of a decoder: a reranker.
    /// </summary>
    Rank = 4,
}

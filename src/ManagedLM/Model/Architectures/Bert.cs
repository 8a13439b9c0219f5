namespace ManagedLM.Model;

internal static partial class Architectures
{
    /// <summary>BERT (and the sentence-embedding and reranking models built on it): an encoder with mean pooling unless the file says otherwise.</summary>
    public static readonly ModelArchitecture Bert = new()
    {
        Name = "bert", Encoder = true, Gate = FeedForwardGate.GeluTanh, GatedFeedForward = false, DefaultPooling = PoolingType.Mean,
    };
}

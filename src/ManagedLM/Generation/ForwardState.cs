using ManagedLM.Kernels.Threading;
using ManagedLM.Model;

namespace ManagedLM.Generation;

/// <summary>Scratch activations of one forward pass, sized once from the model's configuration.</summary>
public sealed class ForwardState
{
    public float[] X { get; }          // [n_embd] residual stream
    public float[] Normed { get; }     // [n_embd] normalized input of a block
    public float[] Query { get; }      // [n_head · head_dim]
    public float[] Key { get; }        // [n_kv · head_dim]
    public float[] Value { get; }      // [n_kv · head_dim]
    public float[] Attended { get; }   // [n_head · head_dim] attention output before ·Wo
    public float[] Projected { get; }  // [n_embd] output of ·Wo or ·Wdown, added to X
    public float[] Gate { get; }       // [n_ff]
    public float[] Up { get; }         // [n_ff]
    public float[] Scores { get; }     // [context] attention weights of one head
    public float[] AttentionScratch { get; } // [2 · head_dim]
    public float[] RopeCos { get; }    // [rope_dims / 2]
    public float[] RopeSin { get; }    // [rope_dims / 2]
    public float[] Logits { get; }     // [vocab]
    public Activation Input { get; }   // prepared matmul input
    internal ParallelMatVec MatVec { get; }

    public ForwardState(ModelConfig c, int contextLength, WorkerPool? pool)
    {
        X = new float[c.EmbeddingLength];
        Normed = new float[c.EmbeddingLength];
        Query = new float[c.QueryLength];
        Key = new float[c.KvLength];
        Value = new float[c.KvLength];
        Attended = new float[c.QueryLength];
        Projected = new float[c.EmbeddingLength];
        Gate = new float[c.FeedForwardLength];
        Up = new float[c.FeedForwardLength];
        Scores = new float[contextLength];
        AttentionScratch = new float[2 * c.HeadDim];
        RopeCos = new float[c.RopeDimensions / 2];
        RopeSin = new float[c.RopeDimensions / 2];
        Logits = new float[c.VocabSize];
        MatVec = new ParallelMatVec(pool);
        Input = new Activation(Math.Max(c.EmbeddingLength, Math.Max(c.QueryLength, c.FeedForwardLength)));
    }
}

using System.Runtime.CompilerServices;
using ManagedLM.Kernels.Threading;
using ManagedLM.Model;

namespace ManagedLM.Inference;

/// <summary>One row of a forward pass: a token at a position of a sequence, whose keys and values go to that sequence's cache.</summary>
/// <param name="Cache">The sequence's KV cache (several rows may share one: a prompt chunk).</param>
/// <param name="Token">The token id.</param>
/// <param name="Position">Its position in the sequence; the row attends to positions [0, Position].</param>
/// <param name="Logits">Whether the logits after this row are wanted.</param>
internal readonly record struct ForwardRow(KvCache Cache, int Token, int Position, bool Logits);

/// <summary>
/// Scratch of forward passes over up to <see cref="Capacity"/> rows, grown on demand (a prompt chunk) and then
/// reused: a decode step of one row allocates nothing. Row r of each buffer starts at r × its width.
/// </summary>
internal sealed class ForwardState
{
    private readonly ModelConfig _c;

    public float[] X { get; private set; } = [];          // [rows × n_embd] residual stream
    public float[] Normed { get; private set; } = [];     // [rows × n_embd] normalized input of a block
    public float[] Query { get; private set; } = [];      // [rows × n_head·head_dim]
    public float[] Key { get; private set; } = [];        // [rows × n_kv·head_dim]
    public float[] Value { get; private set; } = [];      // [rows × n_kv·head_dim]
    public float[] Attended { get; private set; } = [];   // [rows × n_head·head_dim] attention output before ·Wo
    public float[] Projected { get; private set; } = [];  // [rows × n_embd] output of ·Wo or ·Wdown, added to X
    public float[] Gate { get; private set; } = [];       // [rows × max(n_ff, n_ff_exp)]
    public float[] Up { get; private set; } = [];         // [rows × max(n_ff, n_ff_exp)]
    public float[] RopeCos { get; private set; } = [];    // [rope variants × rows × rope_dims/2]
    public float[] RopeSin { get; private set; } = [];    // [rope variants × rows × rope_dims/2]
    public float[] Logits { get; private set; } = [];     // [logit rows × vocab]
    public Activation Input { get; }                      // prepared matmul input rows
    public ForwardRow[] Rows { get; private set; } = [];  // the rows of the pass in progress
    public int[] LogitRows { get; private set; } = [];    // which rows want logits, in order
    internal ParallelMatMul MatMul { get; }
    internal ParallelAttention Attention { get; }
    internal ExpertFeedForward Experts { get; } = new();

    /// <summary>Rows the buffers hold.</summary>
    public int Capacity { get; private set; }
    /// <summary>Rows of logits the buffers hold.</summary>
    public int LogitCapacity { get; private set; }

    public ForwardState(ModelConfig c, WorkerPool? pool, int rows = 1, int logitRows = 1)
    {
        _c = c;
        MatMul = new ParallelMatMul(pool);
        Attention = new ParallelAttention(pool);
        Input = new Activation(Math.Max(c.EmbeddingLength, Math.Max(c.QueryLength, FeedForwardWidth(c))), rows);
        EnsureCapacity(rows, logitRows);
    }

    // The widest feed-forward hidden row: the dense one's or an expert's.
    private static int FeedForwardWidth(ModelConfig c) => Math.Max(c.FeedForwardLength, Math.Max(c.ExpertFeedForwardLength, c.SharedExpertFeedForwardLength));

    /// <summary>Grows the buffers to hold <paramref name="rows"/> rows, <paramref name="logitRows"/> of them with logits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void EnsureCapacity(int rows, int logitRows)
    {
        if (rows > Capacity)
        {
            X = new float[rows * _c.EmbeddingLength];
            Normed = new float[rows * _c.EmbeddingLength];
            Query = new float[rows * _c.QueryLength];
            Key = new float[rows * _c.KvLength];
            Value = new float[rows * _c.KvLength];
            Attended = new float[rows * _c.QueryLength];
            Projected = new float[rows * _c.EmbeddingLength];
            Gate = new float[rows * FeedForwardWidth(_c)];
            Up = new float[rows * FeedForwardWidth(_c)];
            RopeCos = new float[_c.RopeVariants * rows * (_c.RopeDimensions / 2)];
            RopeSin = new float[_c.RopeVariants * rows * (_c.RopeDimensions / 2)];
            Rows = new ForwardRow[rows];
            LogitRows = new int[rows];
            Input.EnsureRows(rows);
            Capacity = rows;
        }
        if (logitRows > LogitCapacity)
        {
            var logits = new float[logitRows * _c.VocabSize];
            Logits.AsSpan().CopyTo(logits); // the last logits survive growth
            Logits = logits;
            LogitCapacity = logitRows;
        }
    }
}

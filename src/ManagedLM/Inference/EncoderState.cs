using System.Runtime.CompilerServices;
using ManagedLM.Kernels;
using ManagedLM.Kernels.Threading;
using ManagedLM.Model;

namespace ManagedLM.Inference;

/// <summary>
/// Scratch of encoder passes (<see cref="Encoder"/>): the rows of whole sequences packed one after another, each sequence's
/// keys and values in its own blocks, and the <see cref="ForwardState"/> buffers the blocks share with a decoder's pass.
/// Grown on demand, then reused: a pass that fits allocates nothing.
/// </summary>
internal sealed class EncoderState
{
    /// <summary>The residual stream (X: the final hidden states after a pass), projections and matmul input.</summary>
    public ForwardState Forward { get; }
    /// <summary>The token of each row.</summary>
    public int[] Tokens { get; private set; } = [];
    /// <summary>[sequences + 1]: the first row of each sequence, then the row count.</summary>
    public int[] Starts { get; private set; } = [];
    /// <summary>[sequences]: the first key/value block of each sequence.</summary>
    public int[] FirstBlocks { get; private set; } = [];
    /// <summary>The sequence of each row.</summary>
    public int[] SequenceOf { get; private set; } = [];
    /// <summary>One layer's keys and values of every sequence, in <see cref="Layout"/>, blocks of a sequence together.</summary>
    public float[] Keys { get; private set; } = [];
    public float[] Values { get; private set; } = [];
    public KvBlockLayout Layout { get; }
    internal EncoderAttention Attention { get; }

    /// <summary>Rows the buffers hold.</summary>
    public int Capacity { get; private set; }
    /// <summary>Sequences the buffers hold.</summary>
    public int SequenceCapacity { get; private set; }

    public EncoderState(ModelConfig c, WorkerPool? pool)
    {
        Layout = new KvBlockLayout(c.KvHeadCount, c.HeadDim);
        Forward = new ForwardState(c, pool, rows: 1, logitRows: 0);
        Attention = new EncoderAttention(pool);
    }

    /// <summary>Grows the buffers to hold <paramref name="rows"/> rows in up to <paramref name="sequences"/> sequences.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void EnsureCapacity(int rows, int sequences)
    {
        if (rows > Capacity)
        {
            Forward.EnsureCapacity(rows, 0);
            Tokens = new int[rows];
            SequenceOf = new int[rows];
            Capacity = rows;
        }
        if (sequences > SequenceCapacity)
        {
            Starts = new int[sequences + 1];
            FirstBlocks = new int[sequences + 1];
            SequenceCapacity = sequences;
        }
        // Each sequence starts on a block: at most a block more per sequence than the rows take.
        long elements = Layout.Elements(Capacity) + (long)SequenceCapacity * Layout.BlockElements;
        if (elements > Keys.Length)
        {
            Keys = new float[checked((int)elements)];
            Values = new float[Keys.Length];
        }
    }

    /// <summary>
    /// Lays out a pass of <paramref name="sequences"/> sequences whose rows <see cref="Starts"/> bounds: each row's
    /// sequence, each sequence's first block.
    /// </summary>
    public void Arrange(int sequences)
    {
        int block = 0;
        for (int q = 0; q < sequences; q++)
        {
            FirstBlocks[q] = block;
            for (int r = Starts[q]; r < Starts[q + 1]; r++)
                SequenceOf[r] = q;
            block += KvBlockLayout.Blocks(Starts[q + 1] - Starts[q]);
        }
        FirstBlocks[sequences] = block;
    }

    /// <summary>The most rows an encoder pass can take in one sequence: the context, and the position embeddings' rows.</summary>
    public static int MaxSequenceLength(TransformerModel model) =>
        Math.Min(model.MaxContextLength, model.Weights.PositionEmbedding?.Rows ?? model.MaxContextLength);
}

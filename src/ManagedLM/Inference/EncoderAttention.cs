using System.Runtime.CompilerServices;
using ManagedLM.Kernels;
using ManagedLM.Kernels.Threading;
using ManagedLM.Model;

namespace ManagedLM.Inference;

/// <summary>
/// The attention of an encoder pass: every row's query heads over the keys and values of its own sequence, all of its
/// positions (or, where the model is causal, those up to the row's), split over the embedder's <see cref="WorkerPool"/>
/// in items of (row, KV head). Each part has its own scratch, and a row's result is the same bits alone, packed with
/// other sequences, or on any thread.
/// </summary>
internal sealed class EncoderAttention : IParallelWork
{
    // Below this many (head, position) score pairs a split costs more in hand-off than it saves.
    private const int MinPairsToSplit = 4096;

    private readonly WorkerPool? _pool;
    private readonly float[][] _scratch; // per part
    private ModelConfig? _config;
    private EncoderState? _state;
    private int _rows;

    public EncoderAttention(WorkerPool? pool)
    {
        _pool = pool;
        _scratch = new float[pool?.ThreadCount ?? 1][];
        for (int i = 0; i < _scratch.Length; i++)
            _scratch[i] = [];
    }

    /// <summary>
    /// Stores the keys and values of rows [0, <paramref name="rows"/>) in their sequences' blocks, then
    /// Attended[r] = attention of Query[r] over its sequence.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Run(ModelConfig c, EncoderState e, int rows, int sequences)
    {
        var s = e.Forward;
        var layout = e.Layout;
        int kvLength = c.KvLength, longest = 0;
        long pairs = 0;
        for (int q = 0; q < sequences; q++)
        {
            int start = e.Starts[q], length = e.Starts[q + 1] - start;
            var keys = e.Keys.AsSpan(e.FirstBlocks[q] * layout.BlockElements);
            var values = e.Values.AsSpan(e.FirstBlocks[q] * layout.BlockElements);
            for (int j = 0; j < length; j++)
            {
                layout.WriteKey<float>(j, s.Key.AsSpan((start + j) * kvLength, kvLength), keys);
                layout.WriteValue<float>(j, s.Value.AsSpan((start + j) * kvLength, kvLength), values);
            }
            longest = Math.Max(longest, length);
            pairs += (long)length * length * c.HeadCount;
        }
        int need = Attention.ScratchLength(1, c.HeadCount / c.KvHeadCount, longest, c.HeadDim);
        for (int i = 0; i < _scratch.Length; i++)
        {
            if (_scratch[i].Length < need)
                _scratch[i] = new float[need];
        }
        _config = c;
        _state = e;
        _rows = rows;
        if (_pool is not null && pairs >= MinPairsToSplit)
            _pool.Run(this);
        else
            Execute(0, 1);
        _state = null;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Execute(int index, int count)
    {
        var c = _config!;
        var e = _state!;
        var s = e.Forward;
        var layout = e.Layout;
        int kvHeads = c.KvHeadCount, group = c.HeadCount / kvHeads, headDim = c.HeadDim, qLength = c.QueryLength;
        bool causal = c.CausalAttention;
        var (start, end) = WorkerPool.Share(_rows * kvHeads, index, count);
        for (int item = start; item < end; item++)
        {
            int r = item / kvHeads, kvHead = item % kvHeads, q = e.SequenceOf[r];
            int first = e.Starts[q], length = causal ? r - first + 1 : e.Starts[q + 1] - first;
            int blocks = e.FirstBlocks[q + 1] - e.FirstBlocks[q];
            var keys = e.Keys.AsSpan(e.FirstBlocks[q] * layout.BlockElements, blocks * layout.BlockElements);
            var values = e.Values.AsSpan(e.FirstBlocks[q] * layout.BlockElements, blocks * layout.BlockElements);
            int at = r * qLength + kvHead * group * headDim;
            Attention.Attend(s.Query.AsSpan(at, group * headDim), group, keys, values, layout, kvHead, length, c.AttentionScale,
                _scratch[index], s.Attended.AsSpan(at, group * headDim));
        }
    }
}

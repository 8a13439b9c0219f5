using System.Runtime.CompilerServices;
using ManagedLM.Kernels;
using ManagedLM.Kernels.Threading;
using ManagedLM.Model;

namespace ManagedLM.Inference;

/// <summary>
/// The attention of an encoder pass: every row's query heads over the keys and values of its own sequence, all of its
/// positions (or, where the model is causal, those up to the row's), split over the embedder's <see cref="WorkerPool"/>
/// in items of (run of up to <see cref="ParallelAttention.MaxItemHeads"/> consecutive rows of one sequence, KV head):
/// the rows of an item share each key and value load. Each part has its own scratch, and a row's result is the same
/// bits alone, packed with other sequences, in any run, or on any thread.
/// </summary>
internal sealed class EncoderAttention : IParallelWork
{
    // Below this many (head, position) score pairs a split costs more in hand-off than it saves.
    private const int MinPairsToSplit = 4096;

    private readonly WorkerPool? _pool;
    private readonly float[][] _scratch; // per part
    private int[] _spans = [];           // [spans + 1]: the first row of each run, then the row count
    private ModelConfig? _config;
    private EncoderState? _state;
    private int _spanCount;

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
        int kvLength = c.KvLength, group = c.HeadCount / c.KvHeadCount, spanRows = Math.Max(1, ParallelAttention.MaxItemHeads / group), longest = 0;
        long pairs = 0;
        if (_spans.Length < rows + 1)
            _spans = new int[rows + 1];
        _spanCount = 0;
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
            for (int j = 0; j < length; j += spanRows)
                _spans[_spanCount++] = start + j;
            longest = Math.Max(longest, length);
            pairs += (long)length * length * c.HeadCount;
        }
        _spans[_spanCount] = rows;
        int need = Attention.ScratchLength(spanRows, group, longest, c.HeadDim);
        for (int i = 0; i < _scratch.Length; i++)
        {
            if (_scratch[i].Length < need)
                _scratch[i] = new float[need];
        }
        _config = c;
        _state = e;
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
        var (start, end) = WorkerPool.Share(_spanCount * kvHeads, index, count);
        for (int item = start; item < end; item++)
        {
            int span = item / kvHeads, kvHead = item % kvHeads;
            int r = _spans[span], rows = _spans[span + 1] - r, q = e.SequenceOf[r], first = e.Starts[q];
            int blocks = e.FirstBlocks[q + 1] - e.FirstBlocks[q];
            var keys = e.Keys.AsSpan(e.FirstBlocks[q] * layout.BlockElements, blocks * layout.BlockElements);
            var values = e.Values.AsSpan(e.FirstBlocks[q] * layout.BlockElements, blocks * layout.BlockElements);
            int at = r * qLength + kvHead * group * headDim, length = (rows - 1) * qLength + group * headDim;
            if (c.CausalAttention)
                Attention.Attend(s.Query.AsSpan(at, length), rows, qLength, group, keys, values, layout, kvHead, r - first + 1, c.AttentionScale,
                    _scratch[index], s.Attended.AsSpan(at, length));
            else
                Attention.AttendAll(s.Query.AsSpan(at, length), rows, qLength, group, keys, values, layout, kvHead, e.Starts[q + 1] - first, c.AttentionScale,
                    _scratch[index], s.Attended.AsSpan(at, length));
        }
    }
}

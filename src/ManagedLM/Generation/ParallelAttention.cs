using System.Runtime.CompilerServices;
using ManagedLM.Kernels;
using ManagedLM.Kernels.Threading;
using ManagedLM.Model;

namespace ManagedLM.Generation;

/// <summary>
/// The attention of every row of a forward pass, split over a generator's <see cref="WorkerPool"/> in items of
/// (run of consecutive positions of one sequence, KV head, run of the query heads that read it): the rows and heads
/// of an item share each key and value load. Each part has its own scratch; a head's result does not depend on the
/// rows and heads it runs with, so the split never changes a value.
/// </summary>
internal sealed class ParallelAttention : IParallelWork
{
    // Below this many (head, position) score pairs a split costs more in hand-off than it saves.
    private const int MinPairsToSplit = 4096;
    // Query rows (heads × positions) per item at most: the kernel's widest register tile.
    private const int MaxItemHeads = 8;

    private readonly WorkerPool? _pool;
    private readonly float[][] _scratch;  // per part: Attention.ScratchLength(the widest item, longest context seen)
    private int[] _spans = [];            // [spans + 1]: the first row of each run of positions, then the row count
    private ModelConfig? _config;
    private ForwardState? _state;
    private int _layer, _spanCount, _runs;
    private float _scale;

    public ParallelAttention(WorkerPool? pool)
    {
        _pool = pool;
        _scratch = new float[pool?.ThreadCount ?? 1][];
        for (int i = 0; i < _scratch.Length; i++)
            _scratch[i] = [];
    }

    /// <summary>Attended[r] = attention of Query[r] over its cache up to its position, for the first <paramref name="rows"/> rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Run(ModelConfig c, ForwardState s, int layer, int rows, float scale)
    {
        int longest = 0, capacity = 0;
        long pairs = 0;
        for (int r = 0; r < rows; r++)
        {
            longest = Math.Max(longest, s.Rows[r].Position + 1);
            capacity = Math.Max(capacity, s.Rows[r].Cache.MaxLength);
            pairs += (s.Rows[r].Position + 1L) * c.HeadCount;
        }
        bool split = _pool is not null && pairs >= MinPairsToSplit;
        int group = c.HeadCount / c.KvHeadCount;
        // Enough runs per group for every thread to have an item, as few as the tile allows otherwise.
        int items = rows * c.KvHeadCount, threads = split ? _pool!.ThreadCount : 1;
        _runs = Math.Clamp((threads + items - 1) / items, (group + MaxItemHeads - 1) / MaxItemHeads, group);
        int runHeads = (group + _runs - 1) / _runs, spanRows = Math.Max(1, MaxItemHeads / runHeads);
        SplitSpans(s.Rows, rows, spanRows);
        for (int i = 0; i < _scratch.Length; i++)
        {
            if (_scratch[i].Length < Attention.ScratchLength(spanRows, runHeads, longest, c.HeadDim))
                _scratch[i] = new float[Attention.ScratchLength(1, MaxItemHeads, capacity, c.HeadDim)]; // once: the widest item, the longest context
        }
        _config = c;
        _state = s;
        _layer = layer;
        _scale = scale;
        if (split)
            _pool!.Run(this);
        else
            Execute(0, 1);
        _state = null;
    }

    // Runs of up to spanRows rows of one cache at consecutive positions.
    private void SplitSpans(ForwardRow[] rows, int count, int spanRows)
    {
        if (_spans.Length < count + 1)
            _spans = new int[rows.Length + 1]; // once per row capacity
        _spanCount = 0;
        for (int r = 0; r < count; r++)
        {
            int start = _spans[_spanCount];
            if (r == 0 || r - start == spanRows || rows[r].Cache != rows[r - 1].Cache || rows[r].Position != rows[r - 1].Position + 1)
                _spans[r == 0 ? 0 : ++_spanCount] = r;
        }
        _spans[++_spanCount] = count;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Execute(int index, int count)
    {
        var c = _config!;
        var s = _state!;
        int kvHeads = c.KvHeadCount, headDim = c.HeadDim, group = c.HeadCount / kvHeads, qLength = c.QueryLength;
        int runHeads = (group + _runs - 1) / _runs;
        var (start, end) = WorkerPool.Share(_spanCount * kvHeads * _runs, index, count);
        for (int item = start; item < end; item++)
        {
            int span = item / (kvHeads * _runs), kvHead = item / _runs % kvHeads, first = item % _runs * runHeads;
            int heads = Math.Min(runHeads, group - first);
            if (heads <= 0)
                continue;
            int r = _spans[span], rows = _spans[span + 1] - r;
            ref readonly ForwardRow row = ref s.Rows[r];
            int at = r * qLength + (kvHead * group + first) * headDim, length = (rows - 1) * qLength + heads * headDim;
            row.Cache.Attend(_layer, row.Position + 1, rows, qLength, s.Query.AsSpan(at, length), heads, kvHead, _scale,
                _scratch[index], s.Attended.AsSpan(at, length));
        }
    }
}

using System.Runtime.CompilerServices;
using ManagedLM.Kernels;
using ManagedLM.Kernels.Threading;
using ManagedLM.Model;

namespace ManagedLM.Inference;

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
    internal const int MaxItemHeads = 8;

    private readonly WorkerPool? _pool;
    private readonly float[][] _scratch;  // per part: Attention.ScratchLength(the widest item, longest context seen)
    private int[] _spans = [];            // [spans + 1]: the first row of each run of positions, then the row count
    private bool[] _shared = [];          // [spans]: whether more rows of the pass read the span's cache
    private readonly WideHead[] _wide;    // per part: the KV head it widened last
    private ModelConfig? _config;
    private ForwardState? _state;
    private int _layer, _spanCount, _runs;
    private float _scale;
    private ScoreShape _shape;

    public ParallelAttention(WorkerPool? pool)
    {
        _pool = pool;
        _scratch = new float[pool?.ThreadCount ?? 1][];
        _wide = new WideHead[_scratch.Length];
        for (int i = 0; i < _scratch.Length; i++)
        {
            _scratch[i] = [];
            _wide[i] = new WideHead();
        }
    }

    /// <summary>One KV head of one layer of an F16 or quantized cache, widened to F32 up to a block: the rows of a prompt chunk widen it once.</summary>
    private sealed class WideHead
    {
        public float[] Keys = [], Values = []; // [blocks · 16 · head_dim] in KvBlockLayout(1, head_dim)
        public KvCache? Cache;
        public int KvHead, Blocks;

        /// <summary>Widens what rows up to <paramref name="length"/> positions read, beyond what is widened already.</summary>
        public void Extend(KvCache cache, int layer, int kvHead, int length)
        {
            if (Cache != cache || KvHead != kvHead)
                (Cache, KvHead, Blocks) = (cache, kvHead, 0);
            int blocks = KvBlockLayout.Blocks(length), elements = blocks * KvBlockLayout.BlockLength * cache.Layout.HeadDim;
            if (blocks <= Blocks)
                return;
            if (Keys.Length < elements)
            {
                // Grows by doubling up to the context: a copy, then a few reallocations as a prompt goes on.
                int grown = (int)Math.Min(new KvBlockLayout(1, cache.Layout.HeadDim).Elements(cache.MaxLength), Math.Max(elements, 2L * Keys.Length));
                Array.Resize(ref Keys, grown);
                Array.Resize(ref Values, grown);
            }
            cache.Widen(layer, kvHead, Blocks, blocks, Keys, Values);
            Blocks = blocks;
        }
    }

    /// <summary>Attended[r] = attention of Query[r] over its cache up to its position, for the first <paramref name="rows"/> rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Run(ModelConfig c, ForwardState s, int layer, int rows, float scale, ScoreShape shape = default)
    {
        int longest = 0, capacity = 0, dequantize = 0;
        long pairs = 0;
        for (int r = 0; r < rows; r++)
        {
            longest = Math.Max(longest, s.Rows[r].Position + 1);
            capacity = Math.Max(capacity, s.Rows[r].Cache.MaxLength);
            dequantize = Math.Max(dequantize, s.Rows[r].Cache.DequantizeScratchLength);
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
            // A span's calls read up to its last row's position: at most longest, in a tile of spanRows · runHeads rows.
            if (_scratch[i].Length < Attention.ScratchLength(1, spanRows * runHeads, longest, c.HeadDim) + dequantize)
                _scratch[i] = new float[Attention.ScratchLength(1, MaxItemHeads, capacity, c.HeadDim) + dequantize]; // once: the widest item, the longest context
        }
        foreach (var w in _wide)
            w.Cache = null; // a new layer's keys and values
        _config = c;
        _state = s;
        _layer = layer;
        _scale = scale;
        _shape = shape;
        if (split)
            _pool!.Run(this);
        else
            Execute(0, 1);
        _state = null;
    }

    // Runs of up to spanRows rows of one cache at consecutive positions.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void SplitSpans(ForwardRow[] rows, int count, int spanRows)
    {
        if (_spans.Length < count + 1)
        {
            _spans = new int[rows.Length + 1]; // once per row capacity
            _shared = new bool[rows.Length];
        }
        _spanCount = 0;
        for (int r = 0, run = 0, runSpan = 0; r <= count; r++)
        {
            bool next = r == 0 || r == count || rows[r].Cache != rows[r - 1].Cache || rows[r].Position != rows[r - 1].Position + 1;
            if (next)
            {
                // The spans of the run that ends: they share its cache if it has two rows or more.
                for (int i = runSpan; i <= _spanCount && r > 0; i++)
                    _shared[i] = r - run > 1;
                if (r == count)
                    break;
                run = r;
            }
            if (next || r - _spans[_spanCount] == spanRows)
                _spans[r == 0 ? 0 : ++_spanCount] = r;
            if (next)
                runSpan = _spanCount;
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
        // KV-head-major: a part's items mostly read one KV head, widened once.
        var (start, end) = WorkerPool.Share(_spanCount * kvHeads * _runs, index, count);
        for (int item = start; item < end; item++)
        {
            int kvHead = item / (_spanCount * _runs), span = item / _runs % _spanCount, first = item % _runs * runHeads;
            int heads = Math.Min(runHeads, group - first);
            if (heads <= 0)
                continue;
            int r = _spans[span], rows = _spans[span + 1] - r;
            ref readonly ForwardRow row = ref s.Rows[r];
            int at = r * qLength + (kvHead * group + first) * headDim, length = (rows - 1) * qLength + heads * headDim;
            int held = row.Cache.Held(_layer, row.Position + 1); // the first row's positions that a sliding layer still holds
            if (_shared[span] && row.Cache.Widens)
            {
                var wide = _wide[index];
                wide.Extend(row.Cache, _layer, kvHead, held + rows - 1);
                row.Cache.AttendWidened(wide.Keys, wide.Values, held, rows, qLength, s.Query.AsSpan(at, length), heads, _scale,
                    _scratch[index], s.Attended.AsSpan(at, length), _shape);
            }
            else
            {
                row.Cache.Attend(_layer, held, rows, qLength, s.Query.AsSpan(at, length), heads, kvHead, _scale,
                    _scratch[index], s.Attended.AsSpan(at, length), _shape);
            }
        }
    }
}

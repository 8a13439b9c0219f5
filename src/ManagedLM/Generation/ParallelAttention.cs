using ManagedLM.Kernels.Threading;
using ManagedLM.Model;

namespace ManagedLM.Generation;

/// <summary>
/// The attention of every (row, head) pair of a forward pass, split over a generator's <see cref="WorkerPool"/>.
/// Each part has its own score and rounding scratch; the pairs are independent, so the split never changes a value.
/// </summary>
internal sealed class ParallelAttention : IParallelWork
{
    // Below this many (head, position) score pairs a split costs more in hand-off than it saves.
    private const int MinPairsToSplit = 4096;

    private readonly WorkerPool? _pool;
    private readonly float[][] _scores;   // per part: [longest context of the caches seen]
    private readonly float[][] _scratch;  // per part: [2 · head_dim]
    private ModelConfig? _config;
    private ForwardState? _state;
    private int _layer, _rows;
    private float _scale;

    public ParallelAttention(WorkerPool? pool)
    {
        _pool = pool;
        int parts = pool?.ThreadCount ?? 1;
        _scores = new float[parts][];
        _scratch = new float[parts][];
        for (int i = 0; i < parts; i++)
        {
            _scores[i] = [];
            _scratch[i] = [];
        }
    }

    /// <summary>Attended[r] = attention of Query[r] over its cache up to its position, for the first <paramref name="rows"/> rows.</summary>
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
        for (int i = 0; i < _scores.Length; i++)
        {
            if (_scores[i].Length < longest)
                _scores[i] = new float[capacity]; // once: sized for the longest context seen
            if (_scratch[i].Length < 2 * c.HeadDim)
                _scratch[i] = new float[2 * c.HeadDim];
        }
        _config = c;
        _state = s;
        _layer = layer;
        _rows = rows;
        _scale = scale;
        if (_pool is null || pairs < MinPairsToSplit)
            Execute(0, 1);
        else
            _pool.Run(this);
        _state = null;
    }

    public void Execute(int index, int count)
    {
        var c = _config!;
        var s = _state!;
        int heads = c.HeadCount, headDim = c.HeadDim, group = heads / c.KvHeadCount, qLength = c.QueryLength;
        var (start, end) = WorkerPool.Share(_rows * heads, index, count);
        for (int item = start; item < end; item++)
        {
            int r = item / heads, h = item % heads;
            ref readonly ForwardRow row = ref s.Rows[r];
            int at = r * qLength + h * headDim;
            row.Cache.AttendHead(_layer, row.Position + 1, s.Query.AsSpan(at, headDim), h / group, _scale,
                _scores[index], _scratch[index], s.Attended.AsSpan(at, headDim));
        }
    }
}

using BenchmarkDotNet.Attributes;
using ManagedLM.Kernels;

namespace ManagedLM.Benchmarks.Kernels;

/// <summary>
/// A prompt's attention in one layer, single-threaded: every position of <see cref="Positions"/> attends causally
/// over an F16 cache (the sum is Positions²/2 scores per head). <c>RowByRow</c> (the baseline) runs each position
/// alone, as decode does; <c>Chunked</c> runs runs of consecutive positions together, each key and value load
/// serving all of them; <c>Widened</c> also widens each KV head to F32 once for all the runs, as prefill does.
/// </summary>
public class PrefillAttentionBenchmarks
{
    /// <summary>Heads, KV heads and head size of a model: stories110m (12/12/64) or TinyLlama-1.1B (32/4/64).</summary>
    [Params("stories110m", "tinyllama-1.1b")]
    public string Shape { get; set; } = "stories110m";

    [Params(512)]
    public int Positions { get; set; }

    private int _heads, _kvHeads, _headDim;
    private KvBlockLayout _layout;
    private ushort[] _keys = [], _values = [];
    private float[] _queries = [], _output = [], _scratch = [], _wideKeys = [], _wideValues = [];

    [GlobalSetup]
    public void Setup()
    {
        (_heads, _kvHeads, _headDim) = Shape switch
        {
            "stories110m" => (12, 12, 64),
            "tinyllama-1.1b" => (32, 4, 64),
            _ => throw new ArgumentException($"Unknown shape {Shape}."),
        };
        _layout = new KvBlockLayout(_kvHeads, _headDim);
        var rng = new Random(1);
        _keys = new ushort[_layout.Elements(Positions)];
        _values = new ushort[_keys.Length];
        var row = new ushort[_layout.RowLength];
        for (int t = 0; t < Positions; t++)
        {
            for (int i = 0; i < row.Length; i++)
                row[i] = Float16.FromSingle((float)(rng.NextDouble() * 2 - 1));
            _layout.WriteKey<ushort>(t, row, _keys);
            for (int i = 0; i < row.Length; i++)
                row[i] = Float16.FromSingle((float)(rng.NextDouble() * 2 - 1));
            _layout.WriteValue<ushort>(t, row, _values);
        }
        _queries = Enumerable.Range(0, Positions * _heads * _headDim).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        _output = new float[_queries.Length];
        _scratch = new float[Attention.ScratchLength(1, 8, Positions, _headDim)];
        _wideKeys = new float[new KvBlockLayout(1, _headDim).Elements(Positions)];
        _wideValues = new float[_wideKeys.Length];
    }

    [Benchmark(Baseline = true)]
    public void RowByRow() => Run(1);


    /// <summary>Runs of positions sized as prefill sizes them: the register tile's eight query rows.</summary>
    [Benchmark]
    public void Chunked() => Run(Math.Max(1, 8 / (_heads / _kvHeads)), false);

    [Benchmark]
    public void Widened() => Run(Math.Max(1, 8 / (_heads / _kvHeads)), true);

    private void Run(int rows, bool widen = false)
    {
        int group = _heads / _kvHeads, rowLength = _heads * _headDim;
        var wide = new KvBlockLayout(1, _headDim);
        for (int h = 0; h < _kvHeads; h++)
        {
            if (widen)
                Attention.Widen(_keys, _values, _layout, h, 0, KvBlockLayout.Blocks(Positions), _wideKeys, _wideValues);
            for (int p = 0; p < Positions; p += rows)
            {
                int n = Math.Min(rows, Positions - p), length = (n - 1) * rowLength + group * _headDim, at = p * rowLength + h * group * _headDim;
                if (widen)
                    Attention.AttendWidened(_queries.AsSpan(at, length), n, rowLength, group, _wideKeys, _wideValues, wide, 0, p + 1, 0.125f,
                        _scratch, _output.AsSpan(at, length));
                else
                    Attention.Attend(_queries.AsSpan(at, length), n, rowLength, group, _keys, _values, _layout, h, p + 1, 0.125f,
                        _scratch, _output.AsSpan(at, length));
            }
        }
    }
}

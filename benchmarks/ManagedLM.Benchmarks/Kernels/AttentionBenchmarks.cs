using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;
using ManagedLM.Kernels;

namespace ManagedLM.Benchmarks.Kernels;

/// <summary>
/// One decode step's attention over an F16 cache of <see cref="Depth"/> positions, every query head of one layer,
/// single-threaded, reported as GB/s of the cached keys and values read. The baseline, <c>PerHeadRows</c>, is attention
/// as ManagedLM computed it before the blocked layout: one head at a time over position-major rows, a vector dot per
/// position and a vector multiply-add per position. <c>Scalar</c> is the kernel's sums one lane at a time (the no-SIMD
/// fallback and its bit-exact reference).
/// </summary>
[Config(typeof(Config))]
public class AttentionBenchmarks : IBytesPerOperation
{
    private sealed class Config : ManualConfig
    {
        public Config() => AddColumn(new GigabytesPerSecondColumn());
    }

    /// <summary>Heads, KV heads and head size of a model: TinyLlama-1.1B (32/4/64) or Qwen2.5-0.5B (14/2/64).</summary>
    [Params("tinyllama-1.1b", "qwen2.5-0.5b")]
    public string Shape { get; set; } = "tinyllama-1.1b";

    [Params(512, 2048)]
    public int Depth { get; set; }

    private int _heads, _kvHeads, _headDim;
    private KvBlockLayout _layout;
    private ushort[] _keys = [], _values = [], _keyRows = [], _valueRows = [];
    private float[] _queries = [], _output = [], _scratch = [];

    [GlobalSetup]
    public void Setup()
    {
        (_heads, _kvHeads, _headDim) = Geometry(Shape);
        _layout = new KvBlockLayout(_kvHeads, _headDim);
        var rng = new Random(1);
        _keys = new ushort[_layout.Elements(Depth)];
        _values = new ushort[_keys.Length];
        var row = new ushort[_layout.RowLength];
        _keyRows = new ushort[Depth * row.Length];
        _valueRows = new ushort[_keyRows.Length];
        for (int t = 0; t < Depth; t++)
        {
            for (int i = 0; i < row.Length; i++)
                row[i] = Float16.FromSingle((float)(rng.NextDouble() * 2 - 1));
            _layout.WriteKey<ushort>(t, row, _keys);
            row.CopyTo(_keyRows, t * row.Length);
            for (int i = 0; i < row.Length; i++)
                row[i] = Float16.FromSingle((float)(rng.NextDouble() * 2 - 1));
            _layout.WriteValue<ushort>(t, row, _values);
            row.CopyTo(_valueRows, t * row.Length);
        }
        _queries = Enumerable.Range(0, _heads * _headDim).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        _output = new float[_queries.Length];
        _scratch = new float[Math.Max(Attention.ScratchLength(_heads / _kvHeads, Depth, _headDim), Depth + 2 * _headDim)];
    }

    /// <summary>All query heads, each KV head's group in one call (as a decode step runs them).</summary>
    [Benchmark]
    public void Vector() => Run(static (q, n, k, v, l, h, len, s, scratch, o) => Attention.Attend(q, n, k, v, l, h, len, s, scratch, o));

    [Benchmark(Baseline = true)]
    public void PerHeadRows()
    {
        int group = _heads / _kvHeads, kvDim = _kvHeads * _headDim;
        var scores = _scratch.AsSpan(0, Depth);
        var q16 = _scratch.AsSpan(Depth, _headDim);
        var v = _scratch.AsSpan(Depth + _headDim, _headDim);
        for (int h = 0; h < _heads; h++)
        {
            int offset = h / group * _headDim;
            Float16.Round(_queries.AsSpan(h * _headDim, _headDim), q16);
            for (int t = 0; t < Depth; t++)
                scores[t] = Float16.Dot(_keyRows.AsSpan(t * kvDim + offset, _headDim), q16) * 0.125f;
            Softmax.InPlace(scores);
            Float16.Round(scores, scores);
            var o = _output.AsSpan(h * _headDim, _headDim);
            o.Clear();
            for (int t = 0; t < Depth; t++)
            {
                Float16.ToSingle(_valueRows.AsSpan(t * kvDim + offset, _headDim), v);
                System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(v, scores[t], o, o);
            }
        }
    }

    [Benchmark]
    public void Scalar() => Run(static (q, n, k, v, l, h, len, s, scratch, o) => Attention.AttendScalar<ushort>(q, n, k, v, l, h, len, s, scratch, o));

    private delegate void Kernel(ReadOnlySpan<float> queries, int heads, ReadOnlySpan<ushort> keys, ReadOnlySpan<ushort> values,
        KvBlockLayout layout, int kvHead, int length, float scale, Span<float> scratch, Span<float> output);

    private void Run(Kernel kernel)
    {
        int group = _heads / _kvHeads, n = group * _headDim;
        for (int h = 0; h < _kvHeads; h++)
            kernel(_queries.AsSpan(h * n, n), group, _keys, _values, _layout, h, Depth, 0.125f, _scratch, _output.AsSpan(h * n, n));
    }

    private static (int Heads, int KvHeads, int HeadDim) Geometry(string shape) => shape switch
    {
        "tinyllama-1.1b" => (32, 4, 64),
        "qwen2.5-0.5b" => (14, 2, 64),
        _ => throw new ArgumentException($"Unknown shape {shape}."),
    };

    public long BytesPerOperation(BenchmarkCase benchmarkCase)
    {
        var (_, kvHeads, headDim) = Geometry((string)benchmarkCase.Parameters["Shape"]);
        return 2L * sizeof(ushort) * (int)benchmarkCase.Parameters["Depth"] * kvHeads * headDim;
    }
}

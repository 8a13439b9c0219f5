using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;
using ManagedLM.Kernels;

namespace ManagedLM.Benchmarks.Kernels;

/// <summary>
/// One decode step's attention over a Q8_0 or Q4_0 cache of <see cref="Depth"/> positions against the same over an F16
/// cache (the baseline), every query head of one layer, single-threaded, with the cached bytes each reads as GB/s. In
/// the grouped shapes the quantized kernel dequantizes eight blocks of 16 positions at a time into an F32 tile that the
/// same register tiles read; in stories110m's (one query head per KV head) it fuses the dequantizing into the chains.
/// Machines shared with other work move one process's times against another's: compare within a run, or repeat.
/// </summary>
[Config(typeof(Config))]
public class QuantizedAttentionBenchmarks : IBytesPerOperation
{
    private sealed class Config : ManualConfig
    {
        public Config() => AddColumn(new GigabytesPerSecondColumn());
    }

    /// <summary>Heads, KV heads and head size: TinyLlama-1.1B (32/4/64), Qwen2.5-0.5B (14/2/64) or stories110M (12/12/64).</summary>
    [Params("tinyllama-1.1b", "qwen2.5-0.5b", "stories110m")]
    public string Shape { get; set; } = "tinyllama-1.1b";

    [Params(512, 2048)]
    public int Depth { get; set; }

    private int _heads, _kvHeads, _headDim;
    private KvBlockLayout _layout;
    private KvQuantLayout _q8, _q4;
    private ushort[] _keys16 = [], _values16 = [];
    private byte[] _keys8 = [], _values8 = [], _keys4 = [], _values4 = [];
    private float[] _queries = [], _output = [], _scratch = [];

    [GlobalSetup]
    public void Setup()
    {
        (_heads, _kvHeads, _headDim) = Geometry(Shape);
        _layout = new KvBlockLayout(_kvHeads, _headDim);
        _q8 = new KvQuantLayout(_layout, GgmlType.Q8_0);
        _q4 = new KvQuantLayout(_layout, GgmlType.Q4_0);
        _keys16 = new ushort[_layout.Elements(Depth)];
        _values16 = new ushort[_keys16.Length];
        _keys8 = new byte[_q8.Bytes(Depth)];
        _values8 = new byte[_keys8.Length];
        _keys4 = new byte[_q4.Bytes(Depth)];
        _values4 = new byte[_keys4.Length];
        var rng = new Random(1);
        var key = new float[_layout.RowLength];
        var value = new float[key.Length];
        var half = new ushort[key.Length];
        for (int t = 0; t < Depth; t++)
        {
            for (int i = 0; i < key.Length; i++)
                (key[i], value[i]) = ((float)(rng.NextDouble() * 2 - 1), (float)(rng.NextDouble() * 2 - 1));
            Float16.FromSingle(key, half);
            _layout.WriteKey<ushort>(t, half, _keys16);
            Float16.FromSingle(value, half);
            _layout.WriteValue<ushort>(t, half, _values16);
            _q8.WriteKey(t, key, _keys8);
            _q8.WriteValue(t, value, _values8);
            _q4.WriteKey(t, key, _keys4);
            _q4.WriteValue(t, value, _values4);
        }
        _queries = Enumerable.Range(0, _heads * _headDim).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        _output = new float[_queries.Length];
        _scratch = new float[AttentionQuantized.ScratchLength(1, _heads / _kvHeads, Depth, _headDim)];
    }

    [Benchmark(Baseline = true)]
    public void F16()
    {
        int group = _heads / _kvHeads, n = group * _headDim;
        for (int h = 0; h < _kvHeads; h++)
            Attention.Attend(_queries.AsSpan(h * n, n), group, _keys16, _values16, _layout, h, Depth, 0.125f, _scratch, _output.AsSpan(h * n, n));
    }

    [Benchmark]
    public void Q8_0() => Quantized(_keys8, _values8, _q8);

    [Benchmark]
    public void Q4_0() => Quantized(_keys4, _values4, _q4);

    private void Quantized(byte[] keys, byte[] values, KvQuantLayout layout)
    {
        int group = _heads / _kvHeads, n = group * _headDim;
        for (int h = 0; h < _kvHeads; h++)
            AttentionQuantized.Attend(_queries.AsSpan(h * n, n), 1, n, group, keys, values, layout, h, Depth, 0.125f, _scratch, _output.AsSpan(h * n, n));
    }

    private static (int Heads, int KvHeads, int HeadDim) Geometry(string shape) => shape switch
    {
        "tinyllama-1.1b" => (32, 4, 64),
        "qwen2.5-0.5b" => (14, 2, 64),
        "stories110m" => (12, 12, 64),
        _ => throw new ArgumentException($"Unknown shape {shape}."),
    };

    public long BytesPerOperation(BenchmarkCase benchmarkCase)
    {
        var (_, kvHeads, headDim) = Geometry((string)benchmarkCase.Parameters["Shape"]);
        long values = 2L * (int)benchmarkCase.Parameters["Depth"] * kvHeads * headDim; // keys and values
        return benchmarkCase.Descriptor.WorkloadMethod.Name switch
        {
            nameof(Q8_0) => values / 32 * 34,
            nameof(Q4_0) => values / 32 * 18,
            _ => values * sizeof(ushort),
        };
    }
}

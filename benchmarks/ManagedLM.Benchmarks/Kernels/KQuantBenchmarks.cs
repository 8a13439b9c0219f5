using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using ManagedLM.Kernels;
using ManagedLM.Kernels.Quants;

namespace ManagedLM.Benchmarks.Kernels;

/// <summary>
/// 4096×4096 matrix × vector with K-quant weights through <see cref="MatVec.Rows"/> (one thread), against a plain
/// streaming read of the same weight bytes (the baseline). The GB/s column is weight bytes per second.
/// </summary>
[Config(typeof(Config))]
public unsafe class KQuantBenchmarks
{
    private const int N = 4096;

    private sealed class Config : ManualConfig
    {
        public Config() => AddColumn(new WeightBandwidthColumn());
    }

    [Params(GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K)]
    public GgmlType Type { get; set; }

    private byte* _weights;
    private long _rowBytes;
    private byte[] _activation = [];
    private float[] _x = [];
    private readonly float[] _y = new float[N];

    /// <summary>Bytes of the weight matrix for a type.</summary>
    public static long WeightBytes(GgmlType type) => N * GgmlTypes.RowBytes(type, N);

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        _rowBytes = GgmlTypes.RowBytes(Type, N);
        _weights = (byte*)NativeMemory.AlignedAlloc((nuint)(N * _rowBytes), 64);
        var row = new float[N];
        for (int r = 0; r < N; r++)
        {
            for (int i = 0; i < N; i++)
                row[i] = (float)(rng.NextDouble() * 2 - 1) * 0.05f;
            Quantize.Row(Type, row, new Span<byte>(_weights + r * _rowBytes, (int)_rowBytes));
        }
        _x = new float[N];
        for (int i = 0; i < N; i++)
            _x[i] = (float)(rng.NextDouble() * 2 - 1);
        _activation = new byte[MatVec.ActivationBytes(Type, N)];
        MatVec.PrepareActivation(Type, _x, _activation);
    }

    [GlobalCleanup]
    public void Cleanup() => NativeMemory.AlignedFree(_weights);

    [Benchmark(Baseline = true, Description = "read weights")]
    public long StreamWeights()
    {
        long total = N * _rowBytes;
        Vector256<ulong> s0 = Vector256<ulong>.Zero, s1 = s0;
        for (long i = 0; i + 64 <= total; i += 64)
        {
            s0 += Vector256.Load((ulong*)(_weights + i));
            s1 += Vector256.Load((ulong*)(_weights + i + 32));
        }
        return (long)Vector256.Sum(s0 + s1);
    }

    [Benchmark(Description = "MatVec.Rows")]
    public float MatVecRows()
    {
        MatVec.Rows(Type, _weights, _rowBytes, N, _activation, 0, _y);
        return _y[0];
    }

    [Benchmark(Description = "scalar reference rows")]
    public float ReferenceRows()
    {
        fixed (byte* a = _activation)
        {
            var y = (Q8KBlock*)a;
            for (int r = 0; r < N; r++)
            {
                byte* w = _weights + r * _rowBytes;
                _y[r] = Type switch
                {
                    GgmlType.Q4_K => Q4KBlock.DotReference((Q4KBlock*)w, y, N / 256),
                    GgmlType.Q5_K => Q5KBlock.DotReference((Q5KBlock*)w, y, N / 256),
                    _ => Q6KBlock.DotReference((Q6KBlock*)w, y, N / 256),
                };
            }
        }
        return _y[0];
    }

    [Benchmark(Description = "Q8_K activation")]
    public byte QuantizeActivation()
    {
        MatVec.PrepareActivation(Type, _x, _activation);
        return _activation[4];
    }

    /// <summary>Weight bytes (of the 4096×4096 matrix) per second of the benchmark's mean time.</summary>
    private sealed class WeightBandwidthColumn : IColumn
    {
        public string Id => nameof(WeightBandwidthColumn);
        public string ColumnName => "Weights GB/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "Bytes of the weight matrix divided by the mean time";
        public bool IsAvailable(Summary summary) => true;
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var stats = summary[benchmarkCase]?.ResultStatistics;
            if (stats is null || benchmarkCase.Descriptor.WorkloadMethod.Name == nameof(QuantizeActivation))
                return "-";
            var type = (GgmlType)benchmarkCase.Parameters[nameof(Type)]!;
            return (WeightBytes(type) / stats.Mean).ToString("F2");
        }
    }
}

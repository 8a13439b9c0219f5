using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using ManagedLM.Kernels;

namespace ManagedLM.Benchmarks.Kernels;

/// <summary>
/// A 4096×4096 weight matrix against a batch of activation rows through <see cref="MatMul.Rows"/> (one thread), by weight
/// type and batch size, on the default ISA path and with the kernels capped at 256 bits (MANAGEDLM_CPU=avx2: the AVX2 paths).
/// GB/s counts the weight bytes once per activation row (what B matrix × vector products would read); GOP/s counts
/// 2·rows·cols·batch. Batch 1 is a decode step, 64 a prompt chunk.
/// </summary>
[Config(typeof(Config))]
public unsafe class MatMulBenchmarks : IBytesPerOperation
{
    private const int Rows = 4096, Cols = 4096;

    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddJob(Job.ShortRun.WithId("default ISA"));
            AddJob(Job.ShortRun.WithEnvironmentVariable(CpuFeatures.Variable, "avx2").WithId("AVX2"));
            AddColumn(new GigabytesPerSecondColumn(), new GigaOpsColumn());
        }
    }

    [Params(GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.F16, GgmlType.F32)]
    public GgmlType Type { get; set; }

    [Params(1, 16, 64)]
    public int Batch { get; set; }

    private RandomProduct _p = null!;

    [GlobalSetup]
    public void Setup() => _p = new RandomProduct(Type, Rows, Cols, Batch);

    [GlobalCleanup]
    public void Cleanup() => _p.Dispose();

    [Benchmark]
    public void Rows4096() => MatMul.Rows(Type, _p.Weights, _p.RowBytes, Cols, _p.ActivationRows, _p.ActivationBytes, Batch, 0, Rows, _p.Output, Rows);

    public long BytesPerOperation(BenchmarkCase benchmarkCase) =>
        GgmlTypes.RowBytes((GgmlType)benchmarkCase.Parameters["Type"], Cols) * Rows * (int)benchmarkCase.Parameters["Batch"];

    /// <summary>10^9 multiply-adds ×2 per second.</summary>
    private sealed class GigaOpsColumn : IColumn
    {
        public string Id => nameof(GigaOpsColumn);
        public string ColumnName => "GOP/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 1;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "2·rows·cols·batch / mean time, in 10^9 per second";

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase)
        {
            var stats = summary[benchmarkCase]?.ResultStatistics;
            return stats is null ? "-" : (2.0 * Rows * Cols * (int)benchmarkCase.Parameters["Batch"] / stats.Mean).ToString("F1");
        }

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public bool IsAvailable(Summary summary) => true;
    }
}

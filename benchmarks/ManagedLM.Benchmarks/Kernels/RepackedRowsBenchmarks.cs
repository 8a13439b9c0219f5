using BenchmarkDotNet.Attributes;
using ManagedLM.Kernels;

namespace ManagedLM.Benchmarks.Kernels;

/// <summary>
/// A 2048×2048 matrix (one thread) multiplied from the file's layout and from its repacked copy, for the types whose
/// repacked layouts came after the first ones (<see cref="SignedBlockBenchmarks"/> has Q4_0, Q8_0, IQ4_NL): Q5_0 in
/// eight-row groups of nibbles and fifth bits, Q4_K in eight-row super-block groups. Batch 1 is a decode step; 8 and 64
/// are batched decode and a prompt chunk. The repacked layouts pay where AVX-VNNI runs.
/// </summary>
public unsafe class RepackedRowsBenchmarks
{
    private const int Rows = 2048, Cols = 2048;

    [Params(GgmlType.Q5_0, GgmlType.Q4_K)]
    public GgmlType Type { get; set; }

    [Params(1, 8, 64)]
    public int Batch { get; set; }

    private RepackedProduct _p = null!;

    [GlobalSetup]
    public void Setup() => _p = new RepackedProduct(Type, Rows, Cols, Batch);

    [GlobalCleanup]
    public void Cleanup() => _p.Dispose();

    [Benchmark(Baseline = true, Description = "file layout")]
    public void Plain() => _p.Plain();

    [Benchmark(Description = "repacked groups")]
    public void Repacked() => _p.Repacked();
}

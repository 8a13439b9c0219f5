using System.Runtime.InteropServices;
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

    private RandomProduct _p = null!;
    private byte* _packed;
    private long _packedBytes;

    [GlobalSetup]
    public void Setup()
    {
        _p = new RandomProduct(Type, Rows, Cols, Batch);
        _packedBytes = MatMul.RepackedBytes(Type, Rows, Cols);
        _packed = (byte*)NativeMemory.AlignedAlloc((nuint)_packedBytes, 64);
        MatMul.Repack(Type, _p.Weights, _p.RowBytes, Rows, Cols, new Span<byte>(_packed, (int)_packedBytes));
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _p.Dispose();
        NativeMemory.AlignedFree(_packed);
    }

    [Benchmark(Baseline = true, Description = "file layout")]
    public void Plain() =>
        MatMul.Rows(Type, _p.Weights, _p.RowBytes, Cols, _p.ActivationRows, _p.ActivationBytes, Batch, 0, Rows, _p.Output, Rows);

    [Benchmark(Description = "repacked groups")]
    public void Repacked() =>
        MatMul.RepackedRows(Type, new ReadOnlySpan<byte>(_packed, (int)_packedBytes), Rows, Cols, _p.ActivationRows, _p.ActivationBytes, Batch, 0, Rows, _p.Output, Rows);
}

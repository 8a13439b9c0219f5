using BenchmarkDotNet.Attributes;
using ManagedLM.Kernels;
using ManagedLM.Kernels.Quants;

namespace ManagedLM.Benchmarks.Kernels;

/// <summary>
/// A TinyLlama-shape K-quant matrix (2048 rows × 5632 columns, one thread) against a batch of Q8_K activation rows: the
/// AVX-512 register tiles (<see cref="SuperBlockPairs512"/>: two weight rows × pairs of activation rows) against one weight
/// row at a time over four activation rows (<see cref="SuperBlockDot.Many{T}"/>, the path before them and the AVX2 path).
/// Batch 8 is a batched decode step, 64 a prompt chunk.
/// </summary>
public unsafe class KQuantTileBenchmarks
{
    private const int Rows = 2048, Cols = 5632, Nb = Cols / 256;

    [Params(GgmlType.Q4_K, GgmlType.Q6_K)]
    public GgmlType Type { get; set; }

    [Params(8, 64)]
    public int Batch { get; set; }

    private RandomProduct _p = null!;

    [GlobalSetup]
    public void Setup() => _p = new RandomProduct(Type, Rows, Cols, Batch);

    [GlobalCleanup]
    public void Cleanup() => _p.Dispose();

    [Benchmark(Baseline = true, Description = "one row × 4 activations")]
    public void RowAtATime()
    {
        if (Type == GgmlType.Q4_K)
            RowAtATime<Q4KBlock>();
        else
            RowAtATime<Q6KBlock>();
    }

    [Benchmark(Description = "2 rows × 4 pairs, 512-bit")]
    public void Tiles()
    {
        if (!SuperBlockPairs512.Supported)
            return;
        if (Type == GgmlType.Q4_K)
            SuperBlockPairs512.MultiplyRows<Q4KBlock>(_p.Weights, _p.RowBytes, Rows, Nb, _p.A, _p.ActivationBytes, Batch, _p.Y, Rows);
        else
            SuperBlockPairs512.MultiplyRows<Q6KBlock>(_p.Weights, _p.RowBytes, Rows, Nb, _p.A, _p.ActivationBytes, Batch, _p.Y, Rows);
    }

    private void RowAtATime<T>() where T : unmanaged, ISuperBlock<T>
    {
        for (int r = 0; r < Rows; r++)
            SuperBlockDot.Many((T*)(_p.Weights + r * _p.RowBytes), Nb, _p.A, _p.ActivationBytes, Batch, _p.Y + r, Rows);
    }
}

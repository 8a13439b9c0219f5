using BenchmarkDotNet.Attributes;
using ManagedLM.Kernels;
using ManagedLM.Kernels.Quants;

namespace ManagedLM.Benchmarks.Kernels;

/// <summary>
/// The paths of the signed 32-value blocks side by side on one 2048×2048 matrix (one thread): the AVX-VNNI panels against
/// the AVX2 groups for a batch of activation rows, the AVX-VNNI dot against the AVX2 dots for one, and the weights repacked
/// into groups of eight rows (<see cref="SignedBlockGroups"/>) for both. The VNNI cases need a CPU with AVX-VNNI.
/// </summary>
public unsafe class SignedBlockBenchmarks
{
    private const int Rows = 2048, Cols = 2048, Blocks = Cols / 32;

    [Params(GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.IQ4_NL)]
    public GgmlType Type { get; set; }

    [Params(1, 8, 64)]
    public int Batch { get; set; }

    private RepackedProduct _repacked = null!;
    private RandomProduct _p = null!;

    [GlobalSetup]
    public void Setup()
    {
        _repacked = new RepackedProduct(Type, Rows, Cols, Batch);
        _p = _repacked.Product;
    }

    [GlobalCleanup]
    public void Cleanup() => _repacked.Dispose();

    [Benchmark(Baseline = true, Description = "AVX2 groups / dots")]
    public void Avx2()
    {
        if (Type == GgmlType.Q4_0)
            SignedBlockRows.MultiplyRowsAvx2<Q4_0Block>(_p.Weights, _p.RowBytes, Rows, Blocks, _p.A, _p.ActivationBytes, Batch, _p.Y, Rows);
        else if (Type == GgmlType.Q8_0)
            SignedBlockRows.MultiplyRowsAvx2<Q8_0Block>(_p.Weights, _p.RowBytes, Rows, Blocks, _p.A, _p.ActivationBytes, Batch, _p.Y, Rows);
        else
            SignedBlockRows.MultiplyRowsAvx2<IQ4NLBlock>(_p.Weights, _p.RowBytes, Rows, Blocks, _p.A, _p.ActivationBytes, Batch, _p.Y, Rows);
    }

    [Benchmark(Description = "AVX-VNNI panels / dot")]
    public void Vnni()
    {
        if (Type == GgmlType.Q4_0)
            Vnni<Q4_0Block>();
        else if (Type == GgmlType.Q8_0)
            Vnni<Q8_0Block>();
        else
            Vnni<IQ4NLBlock>();
    }

    [Benchmark(Description = "AVX-VNNI repacked groups")]
    public void Repacked() => _repacked.Repacked();

    private void Vnni<T>() where T : unmanaged, ISignedQuantBlock<T>
    {
        if (Batch == 1)
            SignedBlockVnniDot.MultiplyRows<T>(_p.Weights, _p.RowBytes, Rows, Blocks, _p.A, _p.Y);
        else
            SignedBlockPanels.MultiplyRows<T>(_p.Weights, _p.RowBytes, Rows, Blocks, _p.A, _p.ActivationBytes, Batch, _p.Y, Rows);
    }
}

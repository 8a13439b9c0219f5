using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using ManagedLM.Kernels;
using ManagedLM.Kernels.Quants;

namespace ManagedLM.Benchmarks.Kernels;

/// <summary>
/// The paths of the signed 32-value blocks side by side on one 2048×2048 matrix (one thread): the AVX-VNNI panels against
/// the AVX2 groups for a batch of activation rows, the AVX-VNNI dot against the AVX2 dots for one. The VNNI cases need a
/// CPU with AVX-VNNI.
/// </summary>
public unsafe class SignedBlockBenchmarks
{
    private const int Rows = 2048, Cols = 2048, Blocks = Cols / 32;

    [Params(GgmlType.Q4_0, GgmlType.Q8_0)]
    public GgmlType Type { get; set; }

    [Params(1, 8, 64)]
    public int Batch { get; set; }

    private byte* _weights;
    private long _rowBytes;
    private int _activationBytes;
    private byte* _activations;
    private float* _y;

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        _rowBytes = GgmlTypes.RowBytes(Type, Cols);
        _weights = (byte*)NativeMemory.AlignedAlloc((nuint)(_rowBytes * Rows), 64);
        float[] row = new float[Cols];
        for (int r = 0; r < Rows; r++)
        {
            Fill(row, rng);
            Quantize.Row(Type, row, new Span<byte>(_weights + r * _rowBytes, (int)_rowBytes));
        }
        _activationBytes = MatVec.ActivationBytes(Type, Cols);
        _activations = (byte*)NativeMemory.AlignedAlloc((nuint)(_activationBytes * Batch), 64);
        for (int b = 0; b < Batch; b++)
        {
            Fill(row, rng);
            MatVec.PrepareActivation(Type, row, new Span<byte>(_activations + b * _activationBytes, _activationBytes));
        }
        _y = (float*)NativeMemory.AlignedAlloc((nuint)(Rows * Batch * sizeof(float)), 64);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        NativeMemory.AlignedFree(_weights);
        NativeMemory.AlignedFree(_activations);
        NativeMemory.AlignedFree(_y);
    }

    [Benchmark(Baseline = true, Description = "AVX2 groups / dots")]
    public void Avx2()
    {
        if (Type == GgmlType.Q4_0)
            SignedBlockRows.MultiplyRowsAvx2<Q4_0Block>(_weights, _rowBytes, Rows, Blocks, _activations, _activationBytes, Batch, _y, Rows);
        else
            SignedBlockRows.MultiplyRowsAvx2<Q8_0Block>(_weights, _rowBytes, Rows, Blocks, _activations, _activationBytes, Batch, _y, Rows);
    }

    [Benchmark(Description = "AVX-VNNI panels / dot")]
    public void Vnni()
    {
        if (Type == GgmlType.Q4_0)
            Vnni<Q4_0Block>();
        else
            Vnni<Q8_0Block>();
    }

    private void Vnni<T>() where T : unmanaged, ISignedQuantBlock<T>
    {
        if (Batch == 1)
            SignedBlockVnniDot.MultiplyRows<T>(_weights, _rowBytes, Rows, Blocks, _activations, _y);
        else
            SignedBlockPanels.MultiplyRows<T>(_weights, _rowBytes, Rows, Blocks, _activations, _activationBytes, Batch, _y, Rows);
    }

    private static void Fill(float[] row, Random rng)
    {
        for (int i = 0; i < row.Length; i++)
            row[i] = (float)(rng.NextDouble() * 2 - 1) * 0.05f;
    }
}

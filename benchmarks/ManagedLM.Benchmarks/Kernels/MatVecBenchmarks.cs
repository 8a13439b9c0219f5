using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;
using ManagedLM.Kernels;

namespace ManagedLM.Benchmarks.Kernels;

/// <summary>
/// One 4096×4096 matrix × vector per weight type, single-threaded, reported as GB/s of weight bytes.
/// <c>Stream</c> reads the same bytes with nothing else to do: the ceiling the kernels are measured against.
/// </summary>
[Config(typeof(Config))]
public unsafe class MatVecBenchmarks : IBytesPerOperation
{
    private const int Rows = 4096, Cols = 4096;

    private sealed class Config : ManualConfig
    {
        public Config() => AddColumn(new GigabytesPerSecondColumn());
    }

    [Params(GgmlType.F32, GgmlType.F16, GgmlType.Q8_0, GgmlType.Q4_0)]
    public GgmlType Type { get; set; }

    private byte* _weights;
    private long _rowBytes;
    private float[] _x = [];
    private byte[] _activation = [];
    private float[] _y = [];

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        _weights = RandomMatrix.Weights(Type, Rows, Cols, rng, out _rowBytes);
        _x = Enumerable.Range(0, Cols).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        _activation = new byte[MatVec.ActivationBytes(Type, Cols)];
        MatVec.PrepareActivation(Type, _x, _activation);
        _y = new float[Rows];
    }

    [GlobalCleanup]
    public void Cleanup() => NativeMemory.AlignedFree(_weights);

    /// <summary>y = W·x with x already in the weight type's activation form.</summary>
    [Benchmark]
    public void Rows4096() => MatVec.Rows(Type, _weights, _rowBytes, Cols, _activation, 0, _y);

    /// <summary>x quantized to the activation form (once per matmul input).</summary>
    [Benchmark]
    public void PrepareActivation() => MatVec.PrepareActivation(Type, _x, _activation);

    /// <summary>Sums the weight bytes as 64-bit lanes: how fast one core reads them.</summary>
    [Benchmark]
    public ulong Stream()
    {
        var span = new ReadOnlySpan<ulong>(_weights, (int)(_rowBytes * Rows / 8));
        Vector256<ulong> s0 = Vector256<ulong>.Zero, s1 = s0;
        int i = 0;
        for (; i + 8 <= span.Length; i += 8)
        {
            s0 += Vector256.LoadUnsafe(ref MemoryMarshal.GetReference(span), (nuint)i);
            s1 += Vector256.LoadUnsafe(ref MemoryMarshal.GetReference(span), (nuint)i + 4);
        }
        return Vector256.Sum(s0 + s1);
    }

    public long BytesPerOperation(BenchmarkCase benchmarkCase)
    {
        var type = (GgmlType)benchmarkCase.Parameters["Type"];
        return benchmarkCase.Descriptor.WorkloadMethod.Name == nameof(PrepareActivation)
            ? Cols * sizeof(float)
            : GgmlTypes.RowBytes(type, Cols) * Rows;
    }
}

using System.Runtime.CompilerServices;
using ManagedLM.Kernels.Threading;
using ManagedLM.Model;

namespace ManagedLM.Inference;

/// <summary>Y = X·Wᵀ for a batch of input rows, with W's rows split over a generator's <see cref="WorkerPool"/>.</summary>
internal sealed class ParallelMatMul : IParallelWork
{
    // Below this many weight rows per thread a split costs more in hand-off than it saves.
    private const int MinRowsPerThread = 32;

    private readonly WorkerPool? _pool;
    private WeightMatrix? _weights;
    private byte[] _activation = [];
    private int _stride, _batch, _yStride;
    private float[] _y = [];

    public ParallelMatMul(WorkerPool? pool) => _pool = pool;

    /// <summary>y[b·yStride + i] = W row i · input row b, for every input row b and weight row i.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Run(WeightMatrix w, Activation input, float[] y, int yStride)
    {
        (_activation, _stride) = input.Prepared(w.Type);
        _batch = input.Rows;
        if (_pool is null || w.Rows < MinRowsPerThread * _pool.ThreadCount)
        {
            w.MultiplyRows(_activation, _stride, _batch, 0, w.Rows, y, yStride);
            return;
        }
        _weights = w;
        _y = y;
        _yStride = yStride;
        _pool.Run(this);
        _weights = null;
        _y = [];
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Execute(int index, int count)
    {
        var (start, end) = WorkerPool.Share(_weights!.Rows, index, count);
        _weights.MultiplyRows(_activation, _stride, _batch, start, end - start, _y.AsSpan(start), _yStride);
    }
}

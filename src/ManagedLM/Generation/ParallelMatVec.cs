using ManagedLM.Kernels.Threading;
using ManagedLM.Model;

namespace ManagedLM.Generation;

/// <summary>y = W·x with W's rows split over a generator's <see cref="WorkerPool"/>.</summary>
internal sealed class ParallelMatVec : IParallelWork
{
    // Below this many rows per thread a split costs more in hand-off than it saves.
    private const int MinRowsPerThread = 32;

    private readonly WorkerPool? _pool;
    private WeightMatrix? _weights;
    private byte[] _activation = [];
    private int _activationBytes;
    private float[] _y = [];

    public ParallelMatVec(WorkerPool? pool) => _pool = pool;

    public void Run(WeightMatrix w, Activation input, float[] y)
    {
        (_activation, _activationBytes) = input.Prepared(w.Type);
        if (_pool is null || w.Rows < MinRowsPerThread * _pool.ThreadCount)
        {
            w.MultiplyRows(_activation.AsSpan(0, _activationBytes), 0, y.AsSpan(0, w.Rows));
            return;
        }
        _weights = w;
        _y = y;
        _pool.Run(this);
        _weights = null;
    }

    public void Execute(int index, int count)
    {
        var (start, end) = WorkerPool.Share(_weights!.Rows, index, count);
        _weights.MultiplyRows(_activation.AsSpan(0, _activationBytes), start, _y.AsSpan(start, end - start));
    }
}

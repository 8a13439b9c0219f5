using System.Runtime.CompilerServices;
namespace ManagedLM.Kernels.Threading;

/// <summary>Work split over a <see cref="WorkerPool"/>: part <c>index</c> of <c>count</c> equal parts.</summary>
public interface IParallelWork
{
    void Execute(int index, int count);
}

/// <summary>
/// A small persistent team of threads for splitting one operation (a matmul's rows) across cores.
/// The calling thread does part 0; <see cref="ThreadCount"/> − 1 dedicated workers do the rest. Workers
/// spin briefly for the next job, then block, so back-to-back matmuls of one token do not pay a
/// kernel round trip each. Owned by one generator: <see cref="Run"/> is not re-entrant.
/// </summary>
public sealed class WorkerPool : IDisposable
{
    // Spins of ManualResetEventSlim before blocking (its maximum): about tens of microseconds.
    private const int SpinCount = 2047;

    private readonly Thread[] _threads;
    private readonly ManualResetEventSlim[] _start;
    private readonly ManualResetEventSlim _done = new(false, SpinCount);
    private IParallelWork? _work;
    private int _pending;
    private volatile bool _disposed;
    private Exception? _failure;

    /// <summary>Threads that share each job, the caller's included.</summary>
    public int ThreadCount { get; }

    public WorkerPool(int threadCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threadCount, 1);
        ThreadCount = threadCount;
        _threads = new Thread[threadCount - 1];
        _start = new ManualResetEventSlim[threadCount - 1];
        for (int i = 0; i < _threads.Length; i++)
        {
            _start[i] = new ManualResetEventSlim(false, SpinCount);
            int index = i + 1;
            _threads[i] = new Thread(() => WorkerLoop(index)) { IsBackground = true, Name = $"ManagedLM worker {index}" };
            _threads[i].Start();
        }
    }

    /// <summary>Runs <paramref name="work"/> as <see cref="ThreadCount"/> parts and returns when all are done.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Run(IParallelWork work)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_threads.Length == 0)
        {
            work.Execute(0, 1);
            return;
        }
        _work = work;
        _failure = null;
        Volatile.Write(ref _pending, _threads.Length);
        _done.Reset();
        foreach (var e in _start)
            e.Set();
        try
        {
            work.Execute(0, ThreadCount);
        }
        finally
        {
            _done.Wait();
            _work = null;
        }
        if (_failure is { } failure)
            throw new AggregateException("A worker thread failed.", failure);
    }

    private void WorkerLoop(int index)
    {
        var start = _start[index - 1];
        while (true)
        {
            start.Wait();
            start.Reset();
            if (_disposed)
                return;
            try
            {
                _work!.Execute(index, ThreadCount);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref _failure, e, null);
            }
            if (Interlocked.Decrement(ref _pending) == 0)
                _done.Set();
        }
    }

    /// <summary>The [start, end) share of <paramref name="total"/> items for part <paramref name="index"/> of <paramref name="count"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static (int Start, int End) Share(int total, int index, int count)
    {
        long start = (long)total * index / count;
        long end = (long)total * (index + 1) / count;
        return ((int)start, (int)end);
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        foreach (var e in _start)
            e.Set();
        foreach (var t in _threads)
            t.Join();
        foreach (var e in _start)
            e.Dispose();
        _done.Dispose();
    }
}

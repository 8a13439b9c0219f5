using System.Runtime.InteropServices;
using ManagedLM.Gguf;

namespace ManagedLM.Model;

/// <summary>
/// Native memory for the weight copies a model's products read (repacked layouts, and the file's layout moved off the
/// file mapping into large pages): regions aligned to <see cref="MemoryPages.LargePageBytes"/> and advised for large pages
/// where the OS offers them, handed out in 64-byte-aligned pieces. A pass over the weights then walks 2 MiB pages instead
/// of 4 kB ones; on this project's machines the TLB misses of 4 kB pages cost a sixth of a prompt's time.
/// Filled while the model loads, freed with it.
/// </summary>
internal sealed unsafe class WeightArena : IDisposable
{
    private const int Alignment = 64;
    private readonly List<nint> _regions = [];
    private readonly long _regionBytes;
    [ThreadSafeInstance("written only while the model loads (one thread), before the model is shared")]
    private byte* _next;
    [ThreadSafeInstance("written only while the model loads (one thread), before the model is shared")]
    private long _left;
    [ThreadSafeInstance("set once by Dispose, under the lock, when generators must no longer run")]
    private bool _disposed;
    [ThreadSafeInstance("written only while the model loads (one thread), before the model is shared")]
    private long _bytes;

    /// <param name="expectedBytes">What the model's copies will take about: the first region's size (reserved, not touched).</param>
    public WeightArena(long expectedBytes) => _regionBytes = RoundUp(Math.Max(expectedBytes, 1), MemoryPages.LargePageBytes);

    /// <summary>Whether the regions are advised for large pages (see <see cref="MemoryPages.LargePagesOnRequest"/>).</summary>
    public static bool LargePages => MemoryPages.LargePagesOnRequest;

    /// <summary>Bytes handed out.</summary>
    public long Bytes => _bytes;

    /// <summary><paramref name="bytes"/> bytes at a 64-byte boundary, uninitialized, valid until <see cref="Dispose"/>.</summary>
    public byte* Allocate(long bytes)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        long n = RoundUp(Math.Max(bytes, 1), Alignment);
        if (n > _left)
            NewRegion(Math.Max(n, _regionBytes));
        byte* p = _next;
        _next += n;
        _left -= n;
        _bytes += bytes;
        return p;
    }

    private void NewRegion(long bytes)
    {
        bytes = RoundUp(bytes, MemoryPages.LargePageBytes);
        var p = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, MemoryPages.LargePageBytes);
        _regions.Add((nint)p);
        MemoryPages.AdviseLargePages((nint)p, (nint)bytes); // before the first touch: the faults then map large pages
        _next = p;
        _left = bytes;
    }

    private static long RoundUp(long n, long m) => (n + m - 1) / m * m;

    public void Dispose()
    {
        Free();
        GC.SuppressFinalize(this);
    }

    ~WeightArena() => Free();

    private void Free()
    {
        lock (_regions)
        {
            foreach (nint p in _regions)
                NativeMemory.AlignedFree((void*)p);
            _regions.Clear();
            _disposed = true;
            _next = null;
            _left = 0;
        }
    }
}

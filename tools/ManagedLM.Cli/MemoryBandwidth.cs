using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ManagedLM.Cli;

/// <summary>
/// Read bandwidth of main memory, measured like STREAM's read kernels: each thread sums its share of a buffer far larger
/// than any cache, best of a few passes. The ceiling a memory-bound decode step is compared against.
/// </summary>
internal static unsafe class MemoryBandwidth
{
    private const long BufferBytes = 256L << 20; // 7× the largest L3 of the machines measured

    /// <summary>Bytes per second read by <paramref name="threads"/> threads at once (10^9 bytes = 1 GB).</summary>
    public static double Measure(int threads, int passes = 4)
    {
        byte* buffer = (byte*)NativeMemory.AlignedAlloc((nuint)BufferBytes, 64);
        try
        {
            new Span<byte>(buffer, (int)BufferBytes).Fill(1); // fault the pages in
            double best = 0;
            long checksum = 0; // keeps the reads alive
            for (int pass = 0; pass < passes + 1; pass++) // pass 0 warms up
            {
                var clock = Stopwatch.StartNew();
                Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
                {
                    long share = BufferBytes / threads / 256 * 256;
                    Interlocked.Add(ref checksum, (long)Read(buffer + t * share, share));
                });
                double seconds = clock.Elapsed.TotalSeconds;
                if (pass > 0)
                    best = Math.Max(best, BufferBytes / threads / 256 * 256 * threads / seconds);
            }
            return checksum == 0 ? 0 : best;
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
        }
    }

    private static ulong Read(byte* p, long bytes)
    {
        Vector256<ulong> s0 = Vector256<ulong>.Zero, s1 = s0, s2 = s0, s3 = s0;
        for (long i = 0; i < bytes; i += 128)
        {
            s0 += Vector256.Load((ulong*)(p + i));
            s1 += Vector256.Load((ulong*)(p + i + 32));
            s2 += Vector256.Load((ulong*)(p + i + 64));
            s3 += Vector256.Load((ulong*)(p + i + 96));
        }
        return Vector256.Sum((s0 + s1) + (s2 + s3));
    }
}

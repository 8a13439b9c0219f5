namespace ManagedLM.Tests;

/// <summary>What a piece of code allocates on the calling thread, for the tests that hot paths allocate nothing.</summary>
internal static class Allocations
{
    /// <summary>
    /// The fewest bytes <paramref name="body"/> allocates over up to three passes (stopping at a pass of 0): on a loaded
    /// machine a method's tier-up may allocate once on this thread; an allocation of the code itself shows in every pass.
    /// </summary>
    public static long Fewest(Action body)
    {
        long fewest = long.MaxValue;
        for (int pass = 0; pass < 3 && fewest > 0; pass++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            body();
            fewest = Math.Min(fewest, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        return fewest;
    }
}

using System.Runtime.InteropServices;

namespace ManagedLM.Gguf;

/// <summary>Hints to the OS about pages: give back those of a file mapping, back anonymous memory with large pages.</summary>
internal static partial class MemoryPages
{
    private const int MADV_DONTNEED = 4;
    private const int MADV_HUGEPAGE = 14;

    /// <summary>Bytes of a large page where <see cref="LargePagesOnRequest"/>: 2 MiB, x86-64 Linux's transparent huge page.</summary>
    public const int LargePageBytes = 2 << 20;

    /// <summary>
    /// Whether anonymous memory advised with <see cref="AdviseLargePages"/> is backed by large pages: on Linux when
    /// transparent huge pages are enabled (<c>always</c> or <c>madvise</c>, not <c>never</c>). Read once.
    /// </summary>
    public static bool LargePagesOnRequest { get; } = ReadLargePagesOnRequest();

    /// <summary>Tells the OS that whole pages of a read-only file mapping are not needed now (they stay mapped, and come back from the file when read).</summary>
    public static void Release(nint pageAlignedStart, nint length)
    {
        // A hint: a failure leaves the pages resident, nothing else.
        try
        {
            if (OperatingSystem.IsLinux())
                _ = Madvise(pageAlignedStart, length, MADV_DONTNEED);
            else if (OperatingSystem.IsWindows())
                _ = VirtualUnlock(pageAlignedStart, length); // on pages that are not locked, removes them from the working set
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
        }
    }

    /// <summary>
    /// Asks for large pages behind anonymous memory not yet touched (<paramref name="start"/> and <paramref name="length"/>
    /// multiples of <see cref="LargePageBytes"/>); a hint, where <see cref="LargePagesOnRequest"/>.
    /// </summary>
    public static void AdviseLargePages(nint start, nint length)
    {
        if (!LargePagesOnRequest)
            return;
        try
        {
            _ = Madvise(start, length, MADV_HUGEPAGE);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
        }
    }

    private static bool ReadLargePagesOnRequest()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
            return false;
        try
        {
            // e.g. "always [madvise] never": the bracketed word is the mode.
            string mode = File.ReadAllText("/sys/kernel/mm/transparent_hugepage/enabled");
            return mode.Contains("[always]", StringComparison.Ordinal) || mode.Contains("[madvise]", StringComparison.Ordinal);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    [LibraryImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static partial int Madvise(nint address, nint length, int advice);

    [LibraryImport("kernel32", SetLastError = true)]
    [return: MarshalAs(UnmanagedType.Bool)]
    private static partial bool VirtualUnlock(nint address, nint size);
}

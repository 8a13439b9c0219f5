using System.Collections.Concurrent;

namespace ManagedLM.Tests.Gguf;

/// <summary>Every GGUF under ../shared/models, the gzip'd vocab files included, read once per test run.</summary>
internal static class SharedGgufFiles
{
    private static readonly ConcurrentDictionary<string, byte[]> Cache = new(StringComparer.Ordinal);

    /// <summary>Paths relative to the models folder: *.gguf everywhere, and vocab/*.gguf.gz.</summary>
    public static IReadOnlyList<string> RelativePaths()
    {
        string root = TestData.ModelsDir;
        var paths = TestData.AllGgufFiles()
            .Concat(Directory.EnumerateFiles(Path.Combine(root, "vocab"), "*.gguf.gz"))
            .Select(p => Path.GetRelativePath(root, p))
            .OrderBy(p => p, StringComparer.Ordinal)
            .ToList();
        if (paths.Count < 16)
            throw new InvalidOperationException($"Expected the 16 shared GGUF files under {root}; found {paths.Count}.");
        return paths;
    }

    /// <summary>xunit member data: one row per shared file.</summary>
    public static TheoryData<string> Names()
    {
        var data = new TheoryData<string>();
        foreach (string p in RelativePaths())
            data.Add(p);
        return data;
    }

    /// <summary>The file's bytes, gunzipped for .gz; shared between tests: copy before mutating.</summary>
    public static byte[] Bytes(string relative) => Cache.GetOrAdd(relative, r => TestData.ReadBytes(TestData.Model(r)));

    /// <summary>Vocab-only files are large (up to 8 MB of strings): loops give them fewer cases.</summary>
    public static bool IsLarge(string relative) => relative.EndsWith(".gz", StringComparison.Ordinal);
}

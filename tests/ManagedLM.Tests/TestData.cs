using System.IO.Compression;

namespace ManagedLM.Tests;

/// <summary>Locates ../shared/models beside the repository root. Missing data fails the test, never skips it.</summary>
public static class TestData
{
    private static readonly Lazy<string> RepoRootLazy = new(FindRepoRoot);

    public static string RepoRoot => RepoRootLazy.Value;

    public static string ModelsDir
    {
        get
        {
            string dir = Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "models"));
            if (!Directory.Exists(dir))
                throw new DirectoryNotFoundException($"Test data not found at {dir}: the tests expect ../shared/models beside the repository.");
            return dir;
        }
    }

    /// <summary>Full path of a file under ../shared/models; throws when it is missing.</summary>
    public static string Model(string relative)
    {
        string path = Path.Combine(ModelsDir, relative);
        if (!File.Exists(path))
            throw new FileNotFoundException($"Test data file missing: {path}");
        return path;
    }

    /// <summary>Every .gguf under ../shared/models (not the gzip'd vocab files).</summary>
    public static IEnumerable<string> AllGgufFiles() =>
        Directory.EnumerateFiles(ModelsDir, "*.gguf", SearchOption.AllDirectories).OrderBy(p => p, StringComparer.Ordinal);

    /// <summary>Bytes of a file, gunzipped when its name ends in .gz.</summary>
    public static byte[] ReadBytes(string path)
    {
        if (!path.EndsWith(".gz", StringComparison.Ordinal))
            return File.ReadAllBytes(path);
        using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var ms = new MemoryStream();
        gz.CopyTo(ms);
        return ms.ToArray();
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ManagedLM.sln")))
                return dir.FullName;
        }
        throw new InvalidOperationException($"ManagedLM.sln not found above {AppContext.BaseDirectory}.");
    }
}

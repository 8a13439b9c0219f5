using System.Text.RegularExpressions;

namespace ManagedLM.Tests.Samples;

/// <summary>
/// The C# of the README and where it lives: every ```csharp block of README.md follows a <c>&lt;!-- sample: NAME --&gt;</c>
/// line and shows the region <c>#region readme: NAME</c> of a file under samples/, which the solution builds and the tests run.
/// </summary>
internal static partial class ReadmeSamples
{
    /// <summary>A README block: the region it names, its line in README.md, its text.</summary>
    public sealed record Block(string? Name, int Line, string Text);

    /// <summary>A sample region: its name, its file (relative to the repository), its text without the common indentation.</summary>
    public sealed record Region(string Name, string File, string Text);

    public static IReadOnlyList<Block> ReadmeBlocks()
    {
        string[] lines = File.ReadAllLines(Path.Combine(TestData.RepoRoot, "README.md"));
        var blocks = new List<Block>();
        for (int i = 0; i < lines.Length; i++)
        {
            if (lines[i].Trim() != "```csharp")
                continue;
            int previous = i - 1;
            while (previous >= 0 && lines[previous].Trim().Length == 0)
                previous--;
            string? name = previous >= 0 && SampleMarker().Match(lines[previous].Trim()) is { Success: true } m ? m.Groups[1].Value : null;
            int end = Array.FindIndex(lines, i + 1, l => l.Trim() == "```");
            Assert.True(end > i, $"README.md line {i + 1}: the ```csharp block is not closed.");
            blocks.Add(new Block(name, i + 1, Dedent(lines[(i + 1)..end])));
            i = end;
        }
        return blocks;
    }

    public static IReadOnlyList<Region> SampleRegions()
    {
        string samples = Path.Combine(TestData.RepoRoot, "samples");
        var regions = new List<Region>();
        foreach (string file in Directory.EnumerateFiles(samples, "*.cs", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            string relative = Path.GetRelativePath(TestData.RepoRoot, file).Replace('\\', '/');
            if (relative.Split('/').Any(part => part is "bin" or "obj"))
                continue;
            string[] lines = File.ReadAllLines(file);
            for (int i = 0; i < lines.Length; i++)
            {
                if (RegionStart().Match(lines[i].Trim()) is not { Success: true } m)
                    continue;
                int end = Array.FindIndex(lines, i + 1, l => l.Trim().StartsWith("#endregion", StringComparison.Ordinal));
                Assert.True(end > i, $"{relative} line {i + 1}: #region without #endregion.");
                regions.Add(new Region(m.Groups[1].Value, relative, Dedent(lines[(i + 1)..end])));
                i = end;
            }
        }
        return regions;
    }

    /// <summary>The lines without the indentation they all share and without trailing blanks, joined by "\n".</summary>
    public static string Dedent(IReadOnlyList<string> lines)
    {
        int indent = lines.Where(l => l.Trim().Length > 0).Select(l => l.Length - l.TrimStart().Length).DefaultIfEmpty(0).Min();
        return string.Join("\n", lines.Select(l => l.Trim().Length == 0 ? "" : l[indent..].TrimEnd()));
    }

    [GeneratedRegex(@"^<!-- sample: (\S+) -->$")]
    private static partial Regex SampleMarker();

    [GeneratedRegex(@"^#region readme: (\S+)$")]
    private static partial Regex RegionStart();
}

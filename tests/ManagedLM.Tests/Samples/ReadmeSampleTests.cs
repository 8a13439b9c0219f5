namespace ManagedLM.Tests.Samples;

/// <summary>The README cannot drift from code that compiles: each of its C# blocks is a region of a sample, word for word.</summary>
public class ReadmeSampleTests
{
    [Fact]
    public void Every_csharp_block_of_the_README_is_a_sample_region_word_for_word()
    {
        var regions = ReadmeSamples.SampleRegions().ToDictionary(r => r.Name);
        var blocks = ReadmeSamples.ReadmeBlocks();
        Assert.NotEmpty(blocks);
        foreach (var block in blocks)
        {
            Assert.True(block.Name is not null,
                $"README.md line {block.Line}: a ```csharp block needs a line <!-- sample: NAME --> above it, naming a #region readme: NAME under samples/.");
            Assert.True(regions.TryGetValue(block.Name, out var region),
                $"README.md line {block.Line}: no region \"#region readme: {block.Name}\" under samples/ (there are: {string.Join(", ", regions.Keys)}).");
            Assert.True(region.Text == block.Text, $"README.md line {block.Line} differs from {region.File}'s region {block.Name}:\n{FirstDifference(region.Text, block.Text)}");
        }
    }

    [Fact]
    public void Every_sample_region_is_in_the_README_once()
    {
        var regions = ReadmeSamples.SampleRegions();
        Assert.Equal(regions.Select(r => r.Name).Distinct(), regions.Select(r => r.Name));
        var shown = ReadmeSamples.ReadmeBlocks().Select(b => b.Name).ToList();
        Assert.All(regions, r => Assert.True(shown.Count(n => n == r.Name) == 1, $"{r.File}: region {r.Name} is shown {shown.Count(n => n == r.Name)} times in README.md."));
    }

    [Fact]
    public void Dedent_removes_the_shared_indentation_and_trailing_blanks_only()
    {
        Assert.Equal("a\n  b\n\nc", ReadmeSamples.Dedent(["    a  ", "      b", "  ", "    c"]));
    }

    // The first line where two texts differ, both ways.
    private static string FirstDifference(string sample, string readme)
    {
        string[] a = sample.Split('\n'), b = readme.Split('\n');
        int i = 0;
        while (i < a.Length && i < b.Length && a[i] == b[i])
            i++;
        return $"  line {i + 1} of the block\n  sample: {(i < a.Length ? a[i] : "(end)")}\n  README: {(i < b.Length ? b[i] : "(end)")}";
    }
}

using ManagedLM.Gguf;
using ManagedLM.Model;

namespace ManagedLM.Tests.Cli;

public sealed class SplitCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("managedlm-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Split_max_tensors_writes_files_that_load_as_the_model()
    {
        string prefix = Path.Combine(_dir, "stories");
        var (code, output, error) = CliRun.Invoke("split", TestData.Model("stories260K.gguf"), prefix, "--split-max-tensors", "20");
        Assert.True(code == 0, error);
        string[] paths = [.. Enumerable.Range(1, 3).Select(i => $"{prefix}-0000{i}-of-00003.gguf")];
        Assert.Equal(paths, Directory.GetFiles(_dir).Order(StringComparer.Ordinal));
        string[] lines = output.TrimEnd().Split('\n');
        Assert.Equal(3, lines.Length);
        Assert.StartsWith($"{paths[0]}: 20 tensors, ", lines[0]);
        Assert.StartsWith($"{paths[2]}: 8 tensors, ", lines[2]);

        using var split = GgufFile.OpenModel(paths[0]);
        using var whole = GgufFile.Open(TestData.Model("stories260K.gguf"));
        Assert.Equal(whole.Tensors.Select(t => t.Name), split.Tensors.Select(t => t.Name));
        using var model = TransformerModel.Load(paths[0], new ModelOptions { WarmUp = false });
        Assert.Equal(5, model.Config.BlockCount);
    }

    [Fact]
    public void By_default_a_file_holds_128_tensors_as_with_gguf_split()
    {
        string prefix = Path.Combine(_dir, "one");
        var (code, output, error) = CliRun.Invoke("split", TestData.Model("stories260K.gguf"), prefix);
        Assert.True(code == 0, error);
        Assert.StartsWith($"{prefix}-00001-of-00001.gguf: 48 tensors, ", output);
    }

    [Fact]
    public void Split_max_size_takes_megabytes()
    {
        string prefix = Path.Combine(_dir, "sized");
        var (code, output, error) = CliRun.Invoke("split", TestData.Model("stories260K.gguf"), prefix, "--split-max-size", "1M");
        Assert.True(code == 0, error);
        // About 1.18 MB of tensors: as many as fit 1 MB in the first file, the rest in the second.
        Assert.Equal(2, output.TrimEnd().Split('\n').Length);
        using var model = GgufFile.OpenModel($"{prefix}-00001-of-00002.gguf");
        long first = model.Tensors.Where(t => t.Split == 0).Sum(t => t.ByteSize); // all multiples of 32 bytes here
        Assert.InRange(first, 1, 1_000_000);
        Assert.True(first + model.Tensors.First(t => t.Split == 1).ByteSize > 1_000_000);
    }
}

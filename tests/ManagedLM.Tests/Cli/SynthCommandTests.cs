using ManagedLM.Cli;

namespace ManagedLM.Tests.Cli;

public sealed class SynthCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("managedlm-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Flags_with_a_fixtures_dimensions_reproduce_it()
    {
        string path = Path.Combine(_dir, "qwen3.gguf");
        var (code, output, error) = CliRun.Invoke("synth", "--arch", "qwen3", "--embd", "256", "--ff", "256", "--layers", "1", "--heads", "4",
            "--kv-heads", "1", "--head-dim", "128", "--vocab", "512", "--ctx", "256", "--rope-base", "1000000", "--eps", "1e-6",
            "--tied", "--seed", "9", "--name", "synth-qwen3", "--type", "Q4_K_M", "-t", "1", "-o", path);
        Assert.True(code == 0, error);
        Assert.Equal(File.ReadAllBytes(TestData.Model("synthetic/synth-qwen3-Q4_K_M.gguf")), File.ReadAllBytes(path));
        Assert.StartsWith($"{path}: Q4_K_M, 656,384 parameters, 444,192 bytes", output);
        Assert.Contains("[ 1/13] output_norm.weight", error);
        Assert.Contains("[13/13] blk.0.ffn_up.weight", error);
    }

    [Theory]
    [InlineData("qwen3moe", "synth-qwen3moe", "45", "synth-qwen3moe-Q8_0.gguf")]
    [InlineData("granite", "synth-granite", "76", "synth-granite-Q8_0.gguf")]
    [InlineData("phi3", "synth-phi-mini", "43", "synth-phi3-Q8_0.gguf")]
    public void An_architecture_alone_starts_from_its_fixtures_shape(string arch, string name, string seed, string fixture)
    {
        string path = Path.Combine(_dir, "f.gguf");
        var (code, _, error) = CliRun.Invoke("synth", "--arch", arch, "--seed", seed, "--name", name, "--type", "Q8_0", "-o", path);
        Assert.True(code == 0, error);
        Assert.Equal(File.ReadAllBytes(TestData.Model("synthetic/" + fixture)), File.ReadAllBytes(path));
    }

    [Fact]
    public void A_family_preset_scales_down_with_its_experts_and_a_padded_vocabulary()
    {
        string path = Path.Combine(_dir, "moe.gguf");
        var (code, output, error) = CliRun.Invoke("synth", "--preset", "qwen3-moe-small", "--layers", "2", "--embd", "256", "--heads", "4",
            "--kv-heads", "1", "--head-dim", "64", "--experts", "4", "--experts-used", "2", "--expert-ff", "64", "--ff", "128", "--vocab", "600",
            "--vocab-from", TestData.Model("stories260K.gguf"), "--pad-vocab", "--type", "Q8_0", "-o", path);
        Assert.True(code == 0, error);
        Assert.Contains("[256, 64, 4]", error);
        using var model = ManagedLM.Model.TransformerModel.Load(path);
        Assert.Equal((4, 2, 64, 600), (model.Config.ExpertCount, model.Config.ExpertUsedCount, model.Config.ExpertFeedForwardLength, model.Config.VocabSize));
        Assert.StartsWith($"{path}: Q8_0", output);
    }

    [Fact]
    public void A_feature_of_another_family_is_a_usage_error()
    {
        var (code, _, error) = CliRun.Invoke("synth", "--arch", "llama", "--window", "8", "-o", Path.Combine(_dir, "x.gguf"));
        Assert.Equal(1, code);
        Assert.Contains("A sliding window is for gemma2 and gemma3 and phi3 models, not llama", error);
        Assert.Empty(Directory.GetFiles(_dir));
    }

    [Fact]
    public void A_tied_preset_can_be_untied_and_its_dimensions_changed()
    {
        string path = Path.Combine(_dir, "s.gguf");
        var (code, output, error) = CliRun.Invoke("synth", "--preset", "stories15m", "--layers", "1", "--tied", "false", "--type", "Q8_0", "-o", path);
        Assert.True(code == 0, error);
        Assert.Contains("output.weight", error);
        Assert.StartsWith($"{path}: Q8_0, 19,428,192 parameters", output);   // 2 · 32000 · 288 + one block + norm
        Assert.Contains("12 tensors", output);
    }

    [Fact]
    public void A_vocabulary_of_the_wrong_size_is_an_error()
    {
        var (code, _, error) = CliRun.Invoke("synth", "--vocab", "32000", "--vocab-from", TestData.Model("stories260K.gguf"), "-o", Path.Combine(_dir, "x.gguf"));
        Assert.Equal(1, code);
        Assert.Contains("512 tokens but the model's vocabulary size is 32000", error);
        Assert.DoesNotContain("Parameter", error);
        Assert.Empty(Directory.GetFiles(_dir));
    }

    [Fact]
    public void Unknown_presets_and_types_are_errors()
    {
        Assert.Equal(1, CliRun.Invoke("synth", "--preset", "gpt-5", "-o", Path.Combine(_dir, "x.gguf")).Code);
        var (code, _, error) = CliRun.Invoke("synth", "--type", "Q3_K_M", "-o", Path.Combine(_dir, "x.gguf"));
        Assert.Equal(1, code);
        Assert.Contains("Unknown file type \"Q3_K_M\"", error);
    }

    [Fact]
    public void Default_output_goes_to_the_repository_checkpoints_folder() =>
        Assert.Equal(Path.Combine(TestData.RepoRoot, "checkpoints"), ModelLocator.CheckpointsDirectory());
}

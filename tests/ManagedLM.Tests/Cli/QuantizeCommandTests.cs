namespace ManagedLM.Tests.Cli;

public sealed class QuantizeCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("managedlm-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Q4_K_M_of_stories260K_is_llama_quantizes_file()
    {
        string path = Path.Combine(_dir, "q.gguf");
        var (code, output, error) = CliRun.Invoke("quantize", TestData.Model("stories260K.gguf"), path, "--type", "q4_k_m");
        Assert.True(code == 0, error);
        Assert.Equal(File.ReadAllBytes(TestData.Model("stories260K-mix-Q5_0.gguf")), File.ReadAllBytes(path));
        Assert.StartsWith($"{path}: Q4_K_M, 292,800 parameters, 304,096 bytes", output);
        Assert.Contains("Q5_0 ×29", output);
        Assert.Contains("[48/48] blk.4.ffn_up.weight", error);
    }

    [Fact]
    public void Token_embedding_override_and_requantize_flag_are_passed_on()
    {
        string path = Path.Combine(_dir, "q.gguf");
        var (code, _, error) = CliRun.Invoke("quantize", TestData.Model("stories260K-mix-Q8_0.gguf"), path, "--type", "Q4_0",
            "--token-embedding-type", "q8_0");
        Assert.Equal(1, code);
        Assert.Contains("--allow-requantize", error);

        (code, _, error) = CliRun.Invoke("quantize", TestData.Model("stories260K-mix-Q8_0.gguf"), path, "--type", "Q4_0",
            "--token-embedding-type", "q8_0", "--allow-requantize");
        Assert.True(code == 0, error);
        Assert.Contains("token_embd.weight                Q8_0", error);
        Assert.Contains("blk.0.attn_q.weight              Q4_0", error);
    }

    [Fact]
    public void Bad_arguments_are_errors()
    {
        string path = Path.Combine(_dir, "q.gguf");
        Assert.NotEqual(0, CliRun.Invoke("quantize", TestData.Model("stories260K.gguf"), path).Code);
        var (code, _, error) = CliRun.Invoke("quantize", TestData.Model("stories260K.gguf"), path, "--type", "Q8_0", "--output-tensor-type", "Q9_9");
        Assert.Equal(1, code);
        Assert.Contains("\"Q9_9\" is not a tensor type", error);
        (code, _, error) = CliRun.Invoke("quantize", Path.Combine(_dir, "missing.gguf"), path, "--type", "Q8_0");
        Assert.Equal(2, code);
        Assert.Contains("missing.gguf", error);
        Assert.Empty(Directory.GetFiles(_dir));
    }
}

namespace ManagedLM.Tests.Cli;

public class TokenizeCommandTests
{
    private static (int Code, string Output, string Error) Run(params string[] args) => CliRun.Invoke(["tokenize", .. args]);

    private static string Vocab(string name) => TestData.Model($"vocab/ggml-vocab-{name}.gguf.gz");

    [Fact]
    public void Prints_ids_of_a_vector_with_and_without_bos()
    {
        var (text, expected) = Tokenization.VocabFixtures.Vectors("llama-spm").First(v => v.Text == "Hello world");
        var (code, output, _) = Run("--model", Vocab("llama-spm"), "--no-bos", text);
        Assert.Equal(0, code);
        Assert.Equal(string.Join(' ', expected) + Environment.NewLine, output);

        (code, output, _) = Run("--model", Vocab("llama-spm"), text);
        Assert.Equal(0, code);
        Assert.Equal("1 " + string.Join(' ', expected) + Environment.NewLine, output);
    }

    [Fact]
    public void Default_model_is_stories260K()
    {
        string? saved = Environment.GetEnvironmentVariable("MANAGEDLM_MODEL");
        try
        {
            Environment.SetEnvironmentVariable("MANAGEDLM_MODEL", null);
            var (code, output, _) = Run("Once upon a time");
            Assert.Equal(0, code);
            Assert.Equal("1 403 407 261 378" + Environment.NewLine, output);
        }
        finally
        {
            Environment.SetEnvironmentVariable("MANAGEDLM_MODEL", saved);
        }
    }

    [Fact]
    public void File_bytes_are_the_text()
    {
        string path = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(path, "Hello world\n"u8.ToArray());
            var (code, output, _) = Run("--model", Vocab("llama-bpe"), "--no-bos", "--file", path);
            Assert.Equal(0, code);
            Assert.Equal("9906 1917 198" + Environment.NewLine, output);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Pieces_and_parse_special()
    {
        var (code, output, _) = Run("--model", Vocab("llama-bpe"), "--pieces", "--parse-special", "<|eot_id|> Hi");
        Assert.Equal(0, code);
        string[] lines = output.TrimEnd().Split(Environment.NewLine);
        Assert.Equal(["128000 -> '<|begin_of_text|>'", "128009 -> '<|eot_id|>'", "  21694 -> ' Hi'".Trim()], lines.Select(l => l.Trim()));
    }

    [Fact]
    public void Bad_input_is_reported_not_thrown()
    {
        var (code, _, error) = Run("--model", "/no/such/model.gguf", "text");
        Assert.Equal(2, code);
        Assert.Contains("/no/such/model.gguf", error);
        (code, _, error) = Run("--model", Vocab("gpt-2"));
        Assert.Equal(1, code);
        Assert.Contains("--file", error);
    }

    [Fact]
    public void Neither_text_nor_file_says_there_is_nothing_to_tokenize()
    {
        var (code, output, error) = Run("-m", TestData.Model("stories260K.gguf"));
        Assert.Equal(1, code);
        Assert.Equal("", output);
        Assert.Equal("managedlm tokenize: error: Nothing to tokenize: give the text as an argument or a file with --file.", error.TrimEnd());

        (code, _, error) = Run("-m", TestData.Model("stories260K.gguf"), "--file", TestData.Model("stories260K.gguf"), "text");
        Assert.Equal(1, code);
        Assert.Equal("managedlm tokenize: error: Give the text either as an argument or with --file, not both.", error.TrimEnd());
    }
}

using ManagedLM.Chat;
using ManagedLM.Cli.Commands;
using ManagedLM.Generation;
using ManagedLM.Model;
using ManagedLM.Sampling;

namespace ManagedLM.Tests.Cli;

public class ChatCommandTests
{
    private static string Templates => Path.Combine(TestData.ModelsDir, "templates");

    [Theory]
    [InlineData("Qwen-Qwen2.5-7B-Instruct", "tool-calls", true, "<|endoftext|>", "<|im_end|>")]
    [InlineData("microsoft-Phi-3.5-mini-instruct", "special-chars", false, "<s>", "<|endoftext|>")]
    [InlineData("meta-llama-Llama-3.1-8B-Instruct", "multi-turn", true, "<|begin_of_text|>", "<|eot_id|>")]
    public void Render_only_prints_the_exact_bytes(string template, string conversation, bool gen, string bos, string eos)
    {
        var output = new MemoryStream();
        var error = new StringWriter();
        ChatCommand.RenderOnly(new ChatCommand.RenderRequest(
            Path.Combine(Templates, "conversations", conversation + ".json"), null, Path.Combine(Templates, template + ".jinja"), gen, bos, eos), output, error);
        Assert.Equal("", error.ToString());
        Assert.Equal(File.ReadAllBytes(Path.Combine(Templates, "expected", template, $"{conversation}-{(gen ? "gen" : "nogen")}.txt")), output.ToArray());
    }

    [Fact]
    public void Render_only_uses_the_models_template_by_default_and_says_when_it_falls_back()
    {
        var output = new MemoryStream();
        var error = new StringWriter();
        ChatCommand.RenderOnly(new ChatCommand.RenderRequest(
            Path.Combine(Templates, "conversations", "single-user.json"), TestData.Model("stories260K.gguf"), null, true, null, null), output, error);
        Assert.StartsWith("<|im_start|>user\n", System.Text.Encoding.UTF8.GetString(output.ToArray()));
        Assert.Contains("ChatML", error.ToString());
    }

    [Fact]
    public void Template_errors_and_bad_files_exit_with_2_and_one_line()
    {
        string gemma = Path.Combine(Templates, "google-gemma-2-2b-it.jinja");
        var (code, output, error) = CliRun.Invoke("chat", "--render-only", "--messages", Path.Combine(Templates, "conversations", "system-user.json"),
            "--template", gemma, "--bos-token", "<bos>", "--eos-token", "<eos>");
        Assert.Equal(2, code);
        Assert.Equal("", output);
        Assert.Equal("managedlm chat: error: System role not supported (template line 1, column 74)", error.TrimEnd());

        string broken = Path.Combine(Directory.CreateTempSubdirectory().FullName, "broken.json");
        File.WriteAllText(broken, "{ not json");
        (code, _, error) = CliRun.Invoke("chat", "--render-only", "--messages", broken, "--template", gemma);
        Assert.Equal(2, code);
        Assert.StartsWith("managedlm chat: error: ", Assert.Single(error.TrimEnd().Split('\n')));

        (code, _, error) = CliRun.Invoke("chat", "--render-only");
        Assert.Equal(1, code);
        Assert.Equal("managedlm chat: error: --render-only needs --messages FILE.", error.TrimEnd());
    }

    [Fact]
    public void The_repl_answers_runs_its_commands_and_saves_and_loads()
    {
        using var model = TransformerModel.Load(TestData.Model("stories260K.gguf"));
        using var session = new ChatSession(model, new ChatSessionOptions { Generation = new GenerationOptions { MaxTokens = 6, Sampling = SamplingOptions.Greedy } });
        string file = Path.Combine(Directory.CreateTempSubdirectory().FullName, "chat.json");
        var input = new StringReader($"Once upon a time\n/system Tell a story.\n/save {file}\n/reset\n/prompt\n/load {file}\n/nope\nTom had a ball\n/exit\nnever read\n");
        var output = new StringWriter();
        var error = new StringWriter();
        Assert.Equal(0, ChatCommand.Repl(session, input, output, error));
        string o = output.ToString();
        Assert.Contains("[system prompt set]", o);
        Assert.Contains($"[saved 2 messages to {file}]", o);
        Assert.Contains("[conversation cleared]", o);
        Assert.Contains("<|im_start|>system\nTell a story.<|im_end|>\n<|im_start|>assistant\n", o);
        Assert.Contains($"[loaded 2 messages from {file}]", o);
        Assert.Contains("unknown command /nope", error.ToString());
        Assert.Equal(4, session.Messages.Count);
        Assert.Equal("Tom had a ball", session.Messages[2].Content);
        Assert.Equal(2, error.ToString().Split("tokens/s").Length - 1);
    }

    [Fact]
    public void A_cancelled_reply_keeps_the_repl_going()
    {
        using var model = TransformerModel.Load(TestData.Model("stories260K.gguf"));
        using var session = new ChatSession(model, new ChatSessionOptions { Generation = new GenerationOptions { MaxTokens = 6, Sampling = SamplingOptions.Greedy } });
        var output = new StringWriter();
        var error = new StringWriter();
        Assert.Equal(0, ChatCommand.Repl(session, new StringReader("Hello\nAgain\n"), output, error, new CancelFirstReply()));
        Assert.Contains("[stopped]", error.ToString());
        Assert.Equal(1, error.ToString().Split("tokens/s").Length - 1); // only the second reply finished
        Assert.Equal(4, session.Messages.Count);
    }

    // Cancels the first reply before it starts (as Ctrl+C would), lets the others run.
    private sealed class CancelFirstReply : ChatCommand.IReplyCancellation
    {
        private int _replies;
        public CancellationToken BeginReply() => _replies++ == 0 ? new CancellationToken(true) : CancellationToken.None;
        public void EndReply() { }
    }
}

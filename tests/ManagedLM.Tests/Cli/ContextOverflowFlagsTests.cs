using System.Text.Json;
using ManagedLM.Chat;
using ManagedLM.Cli.Commands;
using ManagedLM.Generation;
using ManagedLM.Model;
using ManagedLM.Sampling;

namespace ManagedLM.Tests.Cli;

/// <summary>generate's and chat's --context-shift and --keep, chat's --truncate-history: past the context, and bounds named by the flag.</summary>
public class ContextOverflowFlagsTests
{
    private static string Stories => TestData.Model("stories260K.gguf");

    [Fact]
    public void Generate_with_context_shift_goes_on_past_the_context()
    {
        var (code, output, error) = CliRun.Invoke("generate", "-m", Stories, "--prompt-ids", "1,403,407,261,378",
            "-c", "32", "-n", "200", "--temp", "0", "--ignore-eos", "--context-shift", "--keep", "2", "--json");
        Assert.True(code == 0, error);
        var o = JsonDocument.Parse(output).RootElement;
        Assert.Equal("MaxTokens", o.GetProperty("stop_reason").GetString());
        Assert.Equal(200, o.GetProperty("generated_ids").GetArrayLength());
        Assert.True(o.GetProperty("context_shifts").GetInt32() >= 6, output);
        Assert.Equal(199, o.GetProperty("eval_runs").GetInt32());   // every generated token but the last, shifted out or not

        // The same request without --context-shift stops at the context.
        (code, output, error) = CliRun.Invoke("generate", "-m", Stories, "--prompt-ids", "1,403,407,261,378",
            "-c", "32", "-n", "200", "--temp", "0", "--ignore-eos", "--json");
        Assert.True(code == 0, error);
        Assert.Equal("ContextFull", JsonDocument.Parse(output).RootElement.GetProperty("stop_reason").GetString());
    }

    [Theory]
    [InlineData("", ContextOverflow.Stop)]
    [InlineData("--context-shift", ContextOverflow.Shift)]
    [InlineData("--truncate-history", ContextOverflow.TruncateHistory)]
    [InlineData("--context-shift --truncate-history", ContextOverflow.TruncateHistory)]
    public void Serve_flags_set_the_servers_policy(string flags, ContextOverflow expected)
    {
        var parse = ServeCommand.Create().Parse(flags.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Empty(parse.Errors);
        Assert.Equal(expected, ServeCommand.Overflow(parse));
    }

    [Fact]
    public void Keep_out_of_bounds_is_a_usage_error_naming_the_flag()
    {
        var (code, _, error) = CliRun.Invoke("generate", "-m", Stories, "--prompt-ids", "1,403,407,261,378", "-c", "32", "--context-shift", "--keep", "9", "--json");
        Assert.Equal(1, code);
        Assert.Contains("--keep", error);
        Assert.Contains("[-1, 4]", error);
        (code, _, error) = CliRun.Invoke("chat", "-m", Stories, "--keep", "-2");
        Assert.Equal(1, code);
        Assert.Contains("--keep", error);
        Assert.Contains("-1", error);
    }

    [Fact]
    public void A_truncating_chat_answers_every_line_of_a_conversation_ten_contexts_long()
    {
        using var model = TransformerModel.Load(Stories);
        using var session = new ChatSession(model, new ChatSessionOptions
        {
            Template = ChatTemplate.Parse("{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}assistant:", "<s>", "</s>"),
            Generation = new GenerationOptions
            {
                MaxTokens = 12, IgnoreEndOfGeneration = true, Sampling = SamplingOptions.Greedy, ContextOverflow = ContextOverflow.TruncateHistory,
            },
            Generator = new GeneratorOptions { ContextLength = 96 },
        });
        var lines = Enumerable.Range(0, 40).Select(i => $"Tell me about the cat number {i}.");
        var error = new StringWriter();
        Assert.Equal(0, ChatCommand.Repl(session, new StringReader(string.Join('\n', lines) + "\n"), new StringWriter(), error));
        string e = error.ToString();
        Assert.Equal(40, e.Split("[12 tokens,").Length - 1);
        Assert.Contains("oldest messages dropped", e);
        Assert.DoesNotContain("error", e);
        Assert.True(session.DroppedMessages >= 60, $"dropped {session.DroppedMessages}");
    }
}

using System.Text.Json;
using ManagedLM.Cli;
using ManagedLM.Cli.Commands;
using ManagedLM.Gguf;

namespace ManagedLM.Tests.Cli;

/// <summary>What every command shares: exit codes, one-line errors, --help with examples, clean stdout when redirected.</summary>
public sealed class ManagedLmCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("managedlm-cli-").FullName;

    public ManagedLmCliTests() => File.WriteAllText(Garbage, "this is not a GGUF file");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Garbage => Path.Combine(_dir, "garbage.gguf");

    private string Missing => Path.Combine(_dir, "missing.gguf");

    private static string Model => TestData.Model("stories260K.gguf");

    private static readonly string[] CommandNames = ["inspect", "generate", "chat", "tokenize", "embed", "bench", "synth", "quantize", "split", "serve"];

    public static TheoryData<string> Commands => new(CommandNames);

    [Fact]
    public void Every_subcommand_has_examples()
    {
        var root = ManagedLmCli.CreateRoot();
        Assert.Equal(CommandNames.Order(), root.Subcommands.Select(c => c.Name).Order());
        Assert.All(root.Subcommands, c => Assert.NotEmpty(Assert.IsType<CliCommand>(c).Examples));
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public void Help_ends_with_examples_that_parse(string name)
    {
        var (code, output, error) = CliRun.Invoke(name, "--help");
        output = output.Replace("\r\n", "\n", StringComparison.Ordinal);
        Assert.Equal(0, code);
        Assert.Equal("", error);
        Assert.Contains($"Usage:\n  managedlm {name}", output);
        string examples = output[output.IndexOf("\nExamples:\n", StringComparison.Ordinal)..];

        var root = ManagedLmCli.CreateRoot();
        var command = (CliCommand)root.Subcommands.Single(c => c.Name == name);
        foreach (var example in command.Examples)
        {
            Assert.Contains($"  # {example.Description}\n  {example.CommandLine}\n", examples);
            string[] words = CliRun.ShellWords(example.CommandLine);
            Assert.Equal(new[] { "managedlm", name }, words[..2]);
            var parse = root.Parse(words[1..]);
            Assert.True(parse.Errors.Count == 0, $"{example.CommandLine}: {string.Join("; ", parse.Errors.Select(e => e.Message))}");
            Assert.Same(command, parse.CommandResult.Command);
        }
    }

    [Fact]
    public void The_shell_word_splitter_groups_quotes_and_stops_at_a_pipe() =>
        Assert.Equal(["managedlm", "generate", "-p", "Once upon a time", "--stop", "it's", "a \"b\""],
            CliRun.ShellWords("managedlm generate  -p \"Once upon a time\" --stop it\\'s 'a \"b\"' | head -1"));

    [Theory]
    [InlineData("generate", "--bogus")]
    [InlineData("generate", "-n", "many")]
    [InlineData("bench", "--threads", "x")]
    [InlineData("serve", "--port", "http")]
    [InlineData("quantize", "in.gguf", "out.gguf")] // --type is required
    [InlineData("inspect")]
    [InlineData("nonsense")]
    public void Parse_errors_exit_with_1_and_one_line_pointing_at_help(params string[] args)
    {
        var (code, output, error) = CliRun.Invoke(args);
        Assert.Equal(1, code);
        Assert.Equal("", output);
        string line = Assert.Single(error.TrimEnd().Split('\n'));
        Assert.Matches(@"^managedlm( \w+)?: error: .+ See 'managedlm( \w+)? --help'\.$", line);
    }

    [Fact]
    public void No_arguments_print_the_commands_and_exit_with_1()
    {
        var (code, output, _) = CliRun.Invoke();
        Assert.Equal(1, code);
        Assert.Contains("Commands:", output);
    }

    // Command lines that fail, and their exit codes.
    private static (string[] Args, int Code)[] BadRuns(string model, string missing, string garbage) =>
    [
        (["inspect", missing], 2),
        (["inspect", garbage], 2),
        (["generate", "-m", missing, "-p", "x"], 2),
        (["generate", "-m", garbage, "-p", "x"], 2),
        (["generate", "-m", model, "-p", "x", "--top-k", "-3"], 1),
        (["generate", "-m", model, "--prompt-ids", "1,two"], 1),
        (["chat", "-m", missing], 2),
        (["chat", "--render-only", "--messages", garbage, "--template", garbage], 2),
        (["tokenize", "-m", missing, "text"], 2),
        (["tokenize", "-m", garbage, "text"], 2),
        (["tokenize", "-m", model], 1),
        (["bench", "-m", missing], 2),
        (["bench", "-m", garbage], 2),
        (["bench", "-m", model, "-r", "0"], 1),
        (["bench", "-m", model, "-t", "0"], 1),
        (["bench", "-m", model, "-n", "0", "--parallel", "2"], 1),
        (["synth", "--preset", "gpt-5", "-o", missing], 1),
        (["synth", "--vocab-from", garbage, "-o", missing], 2),
        (["quantize", missing, missing + ".out", "--type", "Q8_0"], 2),
        (["quantize", garbage, missing, "--type", "Q8_0"], 2),
        (["quantize", model, missing, "--type", "Q8_0", "-t", "0"], 1),
        (["split", missing, missing + ".out"], 2),
        (["split", garbage, missing], 2),
        (["split", model, missing, "--split-max-size", "2T"], 1),
        (["split", model, missing, "--split-max-tensors", "0"], 1),
        (["split", model, missing, "--split-max-tensors", "8", "--split-max-size", "1M"], 1),
        (["serve", "-m", missing], 2),
        (["serve", "-m", garbage], 2),
    ];

    [Fact]
    public void Bad_files_exit_with_2_and_bad_values_with_1_in_one_line_without_a_stack_trace()
    {
        foreach (var (args, expected) in BadRuns(Model, Missing, Garbage))
        {
            var (code, output, error) = CliRun.Invoke(args);
            string run = string.Join(' ', args);
            Assert.True(expected == code, $"{run}: exit code {code}, expected {expected}; stderr: {error}");
            Assert.Equal("", output);
            string line = Assert.Single(error.TrimEnd().Split('\n'));
            Assert.StartsWith($"managedlm {args[0]}: error: ", line);
            Assert.DoesNotContain("   at ", error);
            Assert.DoesNotContain("(Parameter '", error);
        }
        Assert.DoesNotContain(Directory.GetFiles(_dir), f => f != Garbage); // nothing written by a failed synth, quantize or split
    }

    [Fact]
    public void Missing_model_file_is_named_in_the_error()
    {
        var (code, _, error) = CliRun.Invoke("generate", "-m", Missing, "-p", "x");
        Assert.Equal(2, code);
        Assert.Equal($"managedlm generate: error: Model file not found: {Missing}", error.TrimEnd());
    }

    [Fact]
    public void A_directory_given_as_a_model_is_named_as_a_directory()
    {
        foreach (string[] args in new[] { new[] { "generate", "-m", _dir, "-p", "x" }, ["inspect", _dir], ["bench", "-m", _dir], ["quantize", _dir, Missing, "--type", "Q8_0"] })
        {
            var (code, output, error) = CliRun.Invoke(args);
            Assert.Equal(ExitCodes.BadInput, code);
            Assert.Equal("", output);
            Assert.Equal($"managedlm {args[0]}: error: {_dir} is a directory, not a GGUF file.", error.TrimEnd());
        }
    }

    [Fact]
    public void Exceptions_map_to_exit_codes()
    {
        Assert.Equal(ExitCodes.Usage, ExitCodes.For(new ArgumentOutOfRangeException("n", 3, "too many")));
        Assert.Equal(ExitCodes.BadInput, ExitCodes.For(new FileNotFoundException("x")));
        Assert.Equal(ExitCodes.BadInput, ExitCodes.For(new GgufFormatException(0, "bad")));
        Assert.Equal(ExitCodes.BadInput, ExitCodes.For(new NotSupportedException("arch")));
        Assert.Equal(ExitCodes.BadInput, ExitCodes.For(new JsonException("json")));
        Assert.Equal(ExitCodes.BadInput, ExitCodes.For(new AggregateException(new UnauthorizedAccessException())));
        Assert.Equal(ExitCodes.Failure, ExitCodes.For(new InvalidOperationException("bug")));
        Assert.Equal(ExitCodes.Interrupted, ExitCodes.For(new OperationCanceledException()));
        Assert.Equal(ExitCodes.Failure, ExitCodes.For(new CommandFailedException("port", new IOException("in use"))));
    }

    [Fact]
    public void Other_failures_name_the_exception_and_debug_prints_the_stack_trace()
    {
        Exception thrown;
        try
        {
            throw new InvalidOperationException("first line\nsecond line");
        }
        catch (InvalidOperationException e)
        {
            thrown = e;
        }
        var error = new StringWriter();
        Assert.Equal(3, ExitCodes.Report(thrown, "managedlm bench", error, debug: false));
        Assert.Equal($"managedlm bench: error: InvalidOperationException: first line second line (set {ExitCodes.DebugVariable}=1 for the stack trace)", error.ToString().TrimEnd());

        error = new StringWriter();
        Assert.Equal(3, ExitCodes.Report(thrown, "managedlm bench", error, debug: true));
        Assert.Contains("   at ", error.ToString());
    }

    [Fact]
    public void Redirected_progress_leaves_stdout_to_the_result()
    {
        string path = Path.Combine(_dir, "q.gguf");
        var (code, output, error) = CliRun.Invoke("quantize", Model, path, "--type", "Q8_0", "-t", "1");
        Assert.Equal(0, code);
        Assert.StartsWith($"{path}: Q8_0, ", Assert.Single(output.TrimEnd().Split('\n')));
        Assert.Equal(48, error.TrimEnd().Split('\n').Length); // a plain line per tensor
        Assert.DoesNotContain('\u001b', output + error);

        (code, output, error) = CliRun.Invoke("generate", "-m", Model, "--prompt-ids", "1,403,407", "-n", "2", "--temp", "0", "--json");
        Assert.Equal(0, code);
        Assert.Equal("", error);
        JsonDocument.Parse(Assert.Single(output.TrimEnd().Split('\n')));
    }

    [Fact]
    public void Loading_with_a_redirected_log_prints_nothing()
    {
        var log = new StringWriter();
        Assert.False(Terminal.IsInteractive(log));
        using (ModelLoading.Load(Model, log))
            Assert.Equal("", log.ToString());
    }

    [Fact]
    public void Redirected_tables_are_plain_and_unwrapped()
    {
        var (code, output, _) = CliRun.Invoke("inspect", TestData.Model("vocab/ggml-vocab-qwen2.gguf.gz"));
        Assert.Equal(0, code);
        Assert.DoesNotContain('\u001b', output);
        Assert.DoesNotContain('│', output);
        string template = Assert.Single(output.Split('\n'), l => l.StartsWith("tokenizer.chat_template ", StringComparison.Ordinal));
        Assert.True(template.Length > Terminal.RedirectedWidth, "the row is longer than the fallback width, and not wrapped");
        Assert.All(output.Split('\n'), l => Assert.Equal(l.TrimEnd(), l));
    }
}

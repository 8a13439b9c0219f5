using System.CommandLine;
using ManagedLM.Cli;
using ManagedLM.Cli.Commands;
using ManagedLM.Generation;

namespace ManagedLM.Tests.Cli;

/// <summary>
/// Every option's bad value is reported under the flag's name (not the API property's), as a usage error, before the
/// model is looked for: a missing model file here never gets to be the error.
/// </summary>
public class OptionValidationTests
{
    private static readonly string Missing = Path.Combine(Path.GetTempPath(), "managedlm-no-such-model.gguf");

    public static TheoryData<string[], string> BadValues => new()
    {
        { ["generate", "-p", "Once upon a time", "-n", "-2"], "-n/--n-predict must be ≥ -1 (-1: until end of generation or a full context). Actual value was -2." },
        { ["generate", "-p", "x", "--temp", "-1"], "--temp must be a finite number ≥ 0 (0 is greedy). Actual value was -1." },
        { ["generate", "-p", "x", "--top-k", "-3"], "--top-k must be ≥ 0 (0 disables it). Actual value was -3." },
        { ["generate", "-p", "x", "--top-p", "0"], "--top-p must be in (0, 1] (1 disables it). Actual value was 0." },
        { ["generate", "-p", "x", "--min-p", "2"], "--min-p must be in [0, 1] (0 disables it). Actual value was 2." },
        { ["generate", "-p", "x", "--typical", "0"], "--typical must be in (0, 1] (1 disables it). Actual value was 0." },
        { ["generate", "-p", "x", "--repeat-penalty", "0"], "--repeat-penalty must be a finite number > 0 (1 disables it). Actual value was 0." },
        { ["generate", "-p", "x", "--repeat-last-n", "-5"], "--repeat-last-n must be ≥ -1 (-1 is the whole history, 0 disables the penalties). Actual value was -5." },
        { ["generate", "-p", "x", "--presence-penalty", "NaN"], "--presence-penalty must be finite, in (-∞, ∞) (0 disables it). Actual value was NaN." },
        { ["generate", "-p", "x", "--frequency-penalty", "Infinity"], "--frequency-penalty must be finite, in (-∞, ∞) (0 disables it). Actual value was Infinity." },
        { ["generate", "-p", "x", "--stop", ""], "--stop: Stop strings must be non-empty." },
        { ["generate", "-p", "x", "--seed", "-5"], "-s/--seed must be -1 (random) or an integer in [0, 18446744073709551615]; got \"-5\"." },
        { ["generate", "-p", "x", "-t", "0"], "-t/--threads must be ≥ 1. Actual value was 0." },
        { ["generate", "-p", "x", "-c", "0"], "-c/--ctx-size must be ≥ 1. Actual value was 0." },
        { ["generate", "-p", "x", "--kv-type", "q5_0"], "--kv-type must be one of f16, f32, q8_0, q4_0, not \"q5_0\"." },
        { ["chat", "--kv-type", "2"], "--kv-type must be one of f16, f32, q8_0, q4_0, not \"2\"." },
        { ["serve", "--kv-type", "q8"], "--kv-type must be one of f16, f32, q8_0, q4_0, not \"q8\"." },
        { ["bench", "--kv-type", "bf16"], "--kv-type must be one of f16, f32, q8_0, q4_0, not \"bf16\"." },
        { ["chat", "-n", "-3"], "-n/--n-predict must be ≥ -1 (-1: until end of generation or a full context). Actual value was -3." },
        { ["chat", "--min-p", "1.5"], "--min-p must be in [0, 1] (0 disables it). Actual value was 1.5." },
        { ["chat", "--seed", "abc"], "-s/--seed must be -1 (random) or an integer in [0, 18446744073709551615]; got \"abc\"." },
        { ["serve", "--port", "70000"], "--port must be in [0, 65535]. Actual value was 70000." },
        { ["serve", "--host", "example.com"], "--host \"example.com\" is not an IP address, localhost, 0.0.0.0 or *." },
        { ["serve", "-np", "0"], "-np/--parallel must be at least 1. Actual value was 0." },
        { ["serve", "--queue", "0"], "--queue must be at least 1. Actual value was 0." },
        { ["serve", "--max-tokens", "0"], "--max-tokens must be at least 1. Actual value was 0." },
        { ["serve", "--api-key", ""], "--api-key must not be empty (leave it out for an open server)." },
        { ["serve", "-t", "0"], "-t/--threads must be ≥ 1. Actual value was 0." },
        { ["serve", "-c", "0"], "-c/--ctx-size must be ≥ 1. Actual value was 0." },
        { ["bench", "-r", "0"], "-r/--repetitions must be ≥ 1. Actual value was 0." },
        { ["bench", "-ub", "0"], "-ub/--ubatch-size must be ≥ 1. Actual value was 0." },
    };

    [Theory]
    [MemberData(nameof(BadValues))]
    public void A_bad_value_names_its_flag_before_the_model_is_looked_for(string[] args, string message) =>
        AssertUsageError([args[0], "-m", Missing, .. args[1..]], message);

    public static TheoryData<string[], string> BadConversionValues => new()
    {
        { ["synth", "--layers", "0"], "--layers must be ≥ 1. Actual value was 0." },
        { ["synth", "--eps", "0"], "--eps must be a finite number > 0. Actual value was 0." },
        { ["synth", "--arch", "gpt"], "--arch: Architecture \"gpt\" cannot be synthesized; supported: llama, qwen2, qwen3, qwen3moe, gemma2, gemma3, phi3, granite, bert." },
        { ["synth", "--type", "Q9"], "--type: Unknown file type \"Q9\"; supported: F32, F16, Q4_0, Q4_1, Q8_0, Q5_0, Q5_1, Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K, BF16." },
        { ["quantize", Missing, Missing + ".out", "--type", "Q8_0", "-t", "0"], "-t/--threads must be ≥ 1. Actual value was 0." },
    };

    [Theory]
    [MemberData(nameof(BadConversionValues))]
    public void Conversion_flags_are_named_too(string[] args, string message) => AssertUsageError(args, message);

    // Exit code 1, nothing on stdout, and the parse error's one line.
    private static void AssertUsageError(string[] args, string message)
    {
        var (code, output, error) = CliRun.Invoke(args);
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Equal("", output);
        Assert.Equal($"managedlm {args[0]}: error: {message} See 'managedlm {args[0]} --help'.", error.TrimEnd());
    }

    [Fact]
    public void A_context_longer_than_the_models_is_refused_before_the_prompt_is_printed()
    {
        var (code, output, error) = CliRun.Invoke("generate", "-m", TestData.Model("stories260K.gguf"), "-p", "Once upon a time", "-c", "4096");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Equal("", output);
        Assert.Equal("managedlm generate: error: -c/--ctx-size must be in [1, 2048] (the model's context length). Actual value was 4096.", error.TrimEnd());
    }

    [Fact]
    public void Chat_has_every_sampling_flag_generate_has()
    {
        var root = ManagedLmCli.CreateRoot();
        string[] Names(string command) => root.Subcommands.Single(c => c.Name == command).Options.Select(o => o.Name).ToArray();
        string[] flags = new SamplingFlags(1, "n").All.Select(o => o.Name).ToArray();
        Assert.Equal(["--n-predict", "--temp", "--top-k", "--top-p", "--min-p", "--typical", "--repeat-penalty", "--repeat-last-n",
            "--presence-penalty", "--frequency-penalty", "--stop", "--ignore-eos", "--seed", "--grammar", "--grammar-file", "--json-schema",
            "--json-schema-file", "--context-shift", "--keep"], flags);
        Assert.Subset(Names("generate").ToHashSet(), flags.ToHashSet());
        Assert.Subset(Names("chat").ToHashSet(), flags.ToHashSet());
    }

    [Fact]
    public void Sampling_flags_become_generation_options()
    {
        var flags = new SamplingFlags(64, "Most tokens");
        var command = new Command("test");
        foreach (var option in flags.All)
            command.Options.Add(option);
        var parse = command.Parse(["-n", "-1", "--temp", "0.5", "--top-k", "7", "--top-p", "0.9", "--min-p", "0.2", "--typical", "0.8",
            "--repeat-penalty", "1.1", "--repeat-last-n", "-1", "--presence-penalty", "0.3", "--frequency-penalty", "0.4",
            "--stop", "User:", "--stop", "\n\n", "--ignore-eos", "--seed", "18446744073709551615", "--context-shift", "--keep", "3"]);
        Assert.Empty(parse.Errors);
        var options = flags.Generation(parse);
        Assert.Equal(int.MaxValue, options.MaxTokens);
        Assert.Equal(["User:", "\n\n"], options.StopStrings);
        Assert.True(options.IgnoreEndOfGeneration);
        Assert.Equal(ManagedLM.Generation.ContextOverflow.Shift, options.ContextOverflow);
        Assert.Equal(3, options.KeepTokens);
        Assert.Equal(new ManagedLM.Sampling.SamplingOptions
        {
            Temperature = 0.5f, TopK = 7, TopP = 0.9f, MinP = 0.2f, TypicalP = 0.8f, RepeatPenalty = 1.1f, RepeatLastN = -1,
            PresencePenalty = 0.3f, FrequencyPenalty = 0.4f, Seed = ulong.MaxValue,
        }, options.Sampling);

        var defaults = flags.Generation(command.Parse(["--seed", "-1"]));
        Assert.Equal(64, defaults.MaxTokens);
        Assert.Equal(ManagedLM.Sampling.SamplingOptions.Default, defaults.Sampling);
        Assert.Empty(defaults.StopStrings);
        Assert.False(defaults.IgnoreEndOfGeneration);
        Assert.Equal(ManagedLM.Generation.ContextOverflow.Stop, defaults.ContextOverflow);
        Assert.Equal(0, defaults.KeepTokens);
    }
}

using System.Text.Json;
using ManagedLM.Cli.Commands;
using ManagedLM.Inference;
using ManagedLM.Sampling;

namespace ManagedLM.Tests.Cli;

public class GenerateCommandTests
{
    private static GenerateCommand.GenerateRequest Request(string? prompt = null, int[]? ids = null, bool json = false, int n = 32) =>
        new(TestData.Model("stories260K.gguf"), prompt, ids, n, SamplingOptions.Greedy, Threads: 1, ContextLength: null, json);

    [Fact]
    public void Greedy_text_is_llama_cpps()
    {
        var output = new StringWriter();
        var log = new StringWriter();
        GenerateCommand.Run(Request("Once upon a time"), output, log);
        Assert.Equal("Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw\n", output.ToString());
        Assert.Matches(TimingsPattern(promptTokens: 5, evalRuns: 31, "MaxTokens after 32 tokens"), log.ToString());
    }

    // llama.cpp's timings lines, then why it stopped.
    private static string TimingsPattern(int promptTokens, int evalRuns, string stop) =>
        @"^load time        = +[\d.]+ ms \(model [\d.]+ ms, warm-up [\d.]+ ms\)\n"
        + $@"prompt eval time = +[\d.]+ ms / +{promptTokens} tokens \( *[\d.]+ ms per token, +[\d.]+ tokens per second\)\n"
        + $@"eval time        = +[\d.]+ ms / +{evalRuns} runs   \( *[\d.]+ ms per token, +[\d.]+ tokens per second\)\n"
        + @"jit time         = +[\d.]+ ms \(compiling code the warm-up did not reach; not in the times above\)\n"
        + $@"stop: {stop}\n$";

    [Fact]
    public void Json_with_prompt_ids_uses_the_ids_as_given()
    {
        var output = new StringWriter();
        GenerateCommand.Run(Request(ids: [1, 403, 407, 261, 378], json: true, n: 8), output, TextWriter.Null);
        var o = JsonDocument.Parse(output.ToString()).RootElement;
        Assert.Equal([1, 403, 407, 261, 378], o.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal([432, 383, 286, 261, 376, 298, 315, 421], o.GetProperty("generated_ids").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(", there was a little girl", o.GetProperty("text").GetString());
        Assert.True(o.GetProperty("prompt_tokens_per_s").GetDouble() > 0);
        Assert.True(o.GetProperty("decode_tokens_per_s").GetDouble() > 0);
        Assert.Equal(7, o.GetProperty("eval_runs").GetInt32()); // the 8th token is printed, never evaluated
        Assert.True(o.GetProperty("load_ms").GetDouble() >= o.GetProperty("warmup_ms").GetDouble());
        Assert.All(new[] { "prompt_eval_ms", "eval_ms", "jit_ms" }, name => Assert.True(o.GetProperty(name).GetDouble() >= 0, name));
        Assert.EndsWith("}\n", output.ToString());
    }

    [Fact]
    public void Stop_strings_and_sampling_flags_reach_the_generator()
    {
        var output = new StringWriter();
        var result = GenerateCommand.Run(Request("Once upon a time") with { StopStrings = ["Lily"], KvCacheType = ManagedLM.Inference.KvCacheType.F32 }, output, TextWriter.Null);
        Assert.Equal(ManagedLM.Generation.StopReason.StopString, result.StopReason);
        Assert.Equal("Once upon a time, there was a little girl named \n", output.ToString());
    }

    [Fact]
    public void Command_line_parses_and_runs()
    {
        var (code, output, error) = CliRun.Invoke("generate", "-m", TestData.Model("stories260K.gguf"), "--prompt-ids", "1,403,407", "-n", "3", "--temp", "0", "-t", "1",
            "--repeat-penalty", "1.0", "--typical", "1", "--stop", "zzz", "--kv-type", "F32", "--json");
        Assert.True(code == 0, error);
        Assert.Equal("", error);
        Assert.Contains("\"generated_ids\":[261,378,432]", Assert.Single(output.TrimEnd().Split('\n')));
    }

    [Theory]
    [InlineData("q8_0")]
    [InlineData("Q8_0")]
    [InlineData("q4_0")]
    public void A_quantized_kv_type_is_named_as_llama_cpp_names_it(string name)
    {
        var (code, output, error) = CliRun.Invoke("generate", "-m", TestData.Model("stories260K.gguf"), "--prompt-ids", "1,403,407,261,378", "-n", "8",
            "--temp", "0", "-t", "1", "--kv-type", name, "--json");
        Assert.True(code == 0, error);
        // The first tokens of the greedy text ("..., there was a little girl named") hold with either cache.
        Assert.Contains("\"generated_ids\":[", output);
        Assert.StartsWith(", there was", JsonDocument.Parse(output).RootElement.GetProperty("text").GetString());
    }

    [Fact]
    public void Text_goes_to_stdout_and_the_speed_to_stderr()
    {
        var (code, output, error) = CliRun.Invoke("generate", "-m", TestData.Model("stories260K.gguf"), "-p", "Once upon a time", "-n", "8", "--temp", "0", "-t", "1");
        Assert.Equal(0, code);
        Assert.Equal("Once upon a time, there was a little girl\n", output);
        Assert.Matches(TimingsPattern(promptTokens: 5, evalRuns: 7, "MaxTokens after 8 tokens"), error);
    }

    [Fact]
    public void Cancelling_ends_the_line_and_throws()
    {
        var output = new StringWriter();
        Assert.ThrowsAny<OperationCanceledException>(() => GenerateCommand.Run(Request("Once upon a time"), output, TextWriter.Null, new CancellationToken(canceled: true)));
        Assert.Equal("Once upon a time\n", output.ToString());
    }

    [Fact]
    public void N_predict_minus_one_generates_until_the_context_is_full()
    {
        var (code, output, error) = CliRun.Invoke("generate", "-m", TestData.Model("stories260K.gguf"), "--prompt-ids", "1,403,407,261,378",
            "-c", "16", "-n", "-1", "--temp", "0", "--ignore-eos", "--json");
        Assert.True(code == 0, error);
        var o = JsonDocument.Parse(output).RootElement;
        Assert.Equal("ContextFull", o.GetProperty("stop_reason").GetString());
        Assert.Equal(12, o.GetProperty("generated_ids").GetArrayLength()); // 11 evaluated after the prompt fill the context; the 12th is printed
        Assert.Equal(11, o.GetProperty("eval_runs").GetInt32());
    }

    [Fact]
    public void Seed_minus_one_picks_a_random_seed_and_reports_it()
    {
        ulong Seed(string seed)
        {
            var (code, output, error) = CliRun.Invoke("generate", "-m", TestData.Model("stories260K.gguf"), "--prompt-ids", "1", "-n", "1", "--seed", seed, "--json");
            Assert.True(code == 0, error);
            return JsonDocument.Parse(output).RootElement.GetProperty("seed").GetUInt64();
        }
        Assert.Equal(ulong.MaxValue, Seed("18446744073709551615"));
        Assert.Equal(42UL, Seed("42"));
        Assert.NotEqual(Seed("-1"), Seed("-1"));
    }
}

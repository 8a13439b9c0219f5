using System.Text.Json;
using ManagedLM.Cli.Commands;
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
        Assert.Matches(@"prompt: 5 tokens, [\d.]+ tokens/s \| generated: 32 tokens, [\d.]+ tokens/s \| stop: MaxTokens", log.ToString());
    }

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
    }

    [Fact]
    public void Stop_strings_and_sampling_flags_reach_the_generator()
    {
        var output = new StringWriter();
        var result = GenerateCommand.Run(Request("Once upon a time") with { StopStrings = ["Lily"], KvCacheType = ManagedLM.Generation.KvCacheType.F32 }, output, TextWriter.Null);
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

    [Fact]
    public void Text_goes_to_stdout_and_the_speed_to_stderr()
    {
        var (code, output, error) = CliRun.Invoke("generate", "-m", TestData.Model("stories260K.gguf"), "-p", "Once upon a time", "-n", "8", "--temp", "0", "-t", "1");
        Assert.Equal(0, code);
        Assert.Equal("Once upon a time, there was a little girl\n", output);
        Assert.StartsWith("prompt: 5 tokens, ", Assert.Single(error.TrimEnd().Split('\n')));
    }

    [Fact]
    public void Cancelling_ends_the_line_and_throws()
    {
        var output = new StringWriter();
        Assert.ThrowsAny<OperationCanceledException>(() => GenerateCommand.Run(Request("Once upon a time"), output, TextWriter.Null, new CancellationToken(canceled: true)));
        Assert.Equal("Once upon a time\n", output.ToString());
    }
}

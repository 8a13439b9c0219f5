using System.Text.Json;
using ManagedLM.Cli.Commands;

namespace ManagedLM.Tests.Cli;

public class BenchCommandTests
{
    [Fact]
    public void Json_lines_carry_the_llama_bench_fields()
    {
        var output = new StringWriter();
        var settings = new BenchCommand.BenchSettings(TestData.Model("stories260K.gguf"), [8], [4], [1, 2], 2);
        var results = BenchCommand.Run(settings, json: true, output);

        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, lines.Length);
        Assert.Equal(4, results.Count);
        var tests = lines.Select(l => JsonDocument.Parse(l).RootElement).Select(e => (
            Prompt: e.GetProperty("n_prompt").GetInt32(), Gen: e.GetProperty("n_gen").GetInt32(),
            Threads: e.GetProperty("n_threads").GetInt32(), Avg: e.GetProperty("avg_ts").GetDouble(),
            Std: e.GetProperty("stddev_ts").GetDouble(), Samples: e.GetProperty("samples_ts").GetArrayLength())).ToArray();
        Assert.Equal([(8, 0, 1), (0, 4, 1), (8, 0, 2), (0, 4, 2)], tests.Select(t => (t.Prompt, t.Gen, t.Threads)));
        Assert.All(tests, t => Assert.True(t.Avg > 0 && t.Std >= 0 && t.Samples == 2));
    }

    [Fact]
    public void Table_has_a_row_per_test()
    {
        var output = new StringWriter();
        BenchCommand.Run(new BenchCommand.BenchSettings(TestData.Model("stories260K.gguf"), [4], [0], [1], 1), json: false, output);
        var rows = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, rows.Length);
        Assert.Contains("pp4", rows[2]);
        Assert.Contains("llama", rows[2]);
    }
}

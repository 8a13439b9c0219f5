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
        Assert.Equal(4, rows.Length);
        Assert.Contains("pp4", rows[2]);
        Assert.Contains("llama", rows[2]);
        Assert.Equal(ManagedLM.Kernels.CpuFeatures.Description, rows[3]);
        Assert.EndsWith("\n", output.ToString());
    }

    [Fact]
    public void Tests_run_on_top_of_each_depth_and_are_named_as_llama_bench_names_them()
    {
        var output = new StringWriter();
        var settings = new BenchCommand.BenchSettings(TestData.Model("stories260K.gguf"), [4], [2], [1], 1) { Depths = [0, 16] };
        var results = BenchCommand.Run(settings, json: false, output);

        Assert.Equal(["pp4", "tg2", "pp4 @ d16", "tg2 @ d16"], results.Select(r => r.Name));
        var rows = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)[2..^1];
        Assert.Equal(results.Select(r => r.Name), rows.Select(r => r.Split('|')[5].Trim()));
    }

    [Fact]
    public void A_depth_past_the_training_context_is_run_as_llama_bench_runs_it()
    {
        var output = new StringWriter();
        // stories260K was trained on 2048 tokens: llama-bench's context grows to depth + test, and so does ours.
        var settings = new BenchCommand.BenchSettings(TestData.Model("stories260K.gguf"), [0], [2], [1], 1) { Depths = [2048] };
        var r = Assert.Single(BenchCommand.Run(settings, json: true, output));

        Assert.Equal(2048, JsonDocument.Parse(output.ToString()).RootElement.GetProperty("n_depth").GetInt32());
        Assert.Equal(2, r.NGen);
        Assert.True(r.AvgTs > 0);
    }

    [Theory]
    [InlineData("synthetic/synth-llama-Q4_K_M.gguf", "llama 656.1K Q4_K - Medium")]
    [InlineData("synthetic/synth-qwen2-Q4_K_M.gguf", "qwen2 ")]
    [InlineData("stories260K.gguf", "llama 292.8K F32")]
    public void Models_are_labelled_by_their_file_type(string file, string label)
    {
        var output = new StringWriter();
        BenchCommand.Run(new BenchCommand.BenchSettings(TestData.Model(file), [2], [0], [1], 1), json: true, output);
        Assert.EndsWith("\n", output.ToString());
        string type = JsonDocument.Parse(output.ToString()).RootElement.GetProperty("model_type").GetString()!;
        Assert.StartsWith(label, type);
        Assert.EndsWith(file.StartsWith("synthetic", StringComparison.Ordinal) ? "Q4_K - Medium" : "F32", type);
    }
}

public class ParallelBenchTests
{
    [Fact]
    public void Json_lines_carry_the_parallel_fields_one_per_generator_count()
    {
        var output = new StringWriter();
        var settings = new BenchCommand.BenchSettings(TestData.Model("stories260K.gguf"), [0], [6], [1], 2);
        var results = ParallelBench.Run(settings, [1, 3], json: true, output);

        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.Equal(2, lines.Length);
        Assert.Equal([1, 3], lines.Select(e => e.GetProperty("n_parallel").GetInt32()));
        Assert.All(lines, e =>
        {
            Assert.Equal("parallel", e.GetProperty("mode").GetString());
            Assert.Equal(1, e.GetProperty("n_threads").GetInt32());
            Assert.Equal(6, e.GetProperty("n_gen").GetInt32());
            Assert.True(e.GetProperty("speed_tg").GetDouble() > 0);
            Assert.Equal(2, e.GetProperty("samples_ts").GetArrayLength());
            Assert.True(e.GetProperty("rss_mb").GetDouble() > 0);
        });
        // Three generators hold three caches of the same size.
        Assert.Equal(3 * results[0].KvBytes, results[1].KvBytes);

        // Q8_0 caches: 34/64 of the F16 bytes.
        var q8 = ParallelBench.Run(settings with { KvCacheType = ManagedLM.Inference.KvCacheType.Q8_0 }, [1], json: true, TextWriter.Null);
        Assert.Equal(results[0].KvBytes * 34 / 64, q8[0].KvBytes);
    }

    [Fact]
    public void A_kv_type_reaches_the_tests_and_their_type_fields()
    {
        var output = new StringWriter();
        var settings = new BenchCommand.BenchSettings(TestData.Model("stories260K.gguf"), [4], [3], [1], 1) { KvCacheType = ManagedLM.Inference.KvCacheType.Q4_0 };
        BenchCommand.Run(settings, json: true, output);
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.Equal(2, lines.Length);
        Assert.All(lines, e => Assert.Equal(("q4_0", "q4_0"), (e.GetProperty("type_k").GetString(), e.GetProperty("type_v").GetString())));
        var (code, _, error) = CliRun.Invoke("bench", "-m", TestData.Model("stories260K.gguf"), "-p", "4", "-n", "0", "--batch", "1", "--kv-type", "q8_0");
        Assert.NotEqual(0, code);
        Assert.Contains("--kv-type applies to the -p/-n tests and --parallel", error);
    }

    [Fact]
    public void Parallel_mode_needs_a_generation_length()
    {
        var settings = new BenchCommand.BenchSettings(TestData.Model("stories260K.gguf"), [8], [0], [1], 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => ParallelBench.Run(settings, [2], json: false, TextWriter.Null));
    }
}

public class BatchedBenchTests
{
    [Theory]
    [InlineData(false, "batched")]
    [InlineData(true, "engine")]
    public void Json_lines_carry_the_batched_bench_fields_one_per_batch_size(bool engine, string mode)
    {
        var output = new StringWriter();
        var settings = new BenchCommand.BenchSettings(TestData.Model("stories260K.gguf"), [4], [3], [1], 2);
        var results = BatchedBench.Run(settings, [1, 4], json: true, output, engine);
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.Equal([1, 4], lines.Select(e => e.GetProperty("n_parallel").GetInt32()));
        Assert.All(lines, e =>
        {
            Assert.Equal(mode, e.GetProperty("mode").GetString());
            Assert.True(e.GetProperty("speed_pp").GetDouble() > 0);
            Assert.True(e.GetProperty("t_first_token").GetDouble() > 0);
            Assert.Equal(4, e.GetProperty("n_prompt").GetInt32());
            Assert.Equal(3, e.GetProperty("n_gen").GetInt32());
            Assert.True(e.GetProperty("speed_tg").GetDouble() > 0);
        });
        Assert.Equal(2, results.Count);
    }
}

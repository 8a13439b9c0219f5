using System.Text.Json;
using ManagedLM.Cli;
using ManagedLM.Cli.Commands;

namespace ManagedLM.Tests.Cli;

/// <summary>`managedlm bench --peer`, against fake llama-bench and llama-batched-bench scripts that print recorded output.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public class PeerBenchTests
{
    private static readonly string Model = TestData.Model("stories260K.gguf");

    // llama-bench's answer to one repetition of a test: ns nanoseconds.
    private static (string, string) LlamaBench(int nPrompt, int nGen, int threads, long ns, int depth = 0) =>
        ($"-m {Model} -p {nPrompt} -n {nGen}{(depth > 0 ? $" -d {depth}" : "")} -t {threads} -r 1 -o jsonl",
            FakePeer.Prints(FakePeer.LlamaBenchLine(Model, nPrompt, nGen, depth, threads, ns)));

    // bench, without the line the model's load logs (the memory of the weights' copies).
    private static (int Code, string Output, string Error) Bench(params string[] args)
    {
        var (code, output, error) = CliRun.Invoke(["bench", .. args]);
        return (code, output, string.Join('\n', error.Split('\n').Where(l => !l.StartsWith("repacked ", StringComparison.Ordinal))));
    }

    [Fact]
    public void Runs_alternate_between_the_engines_and_the_table_compares_them()
    {
        // 100 t/s on one thread, 200 on two.
        using var peer = new FakePeer("llama-bench",
            [LlamaBench(8, 0, 1, 80_000_000), LlamaBench(0, 4, 1, 40_000_000), LlamaBench(8, 0, 2, 40_000_000), LlamaBench(0, 4, 2, 20_000_000)]);
        var (code, output, error) = Bench("-m", Model, "-p", "8", "-n", "4", "-t", "1,2", "-r", "2", "--peer", peer.Path, "--progress");

        Assert.True(code == ExitCodes.Ok, error);
        string[] tests = ["-p 8 -n 0 -t 1", "-p 0 -n 4 -t 1", "-p 8 -n 0 -t 2", "-p 0 -n 4 -t 2"];
        Assert.Equal(tests.SelectMany(t => Enumerable.Repeat($"-m {Model} {t} -r 1 -o jsonl", 2)), peer.Calls);
        // Ours, the peer, ours, the peer: each repetition of one engine right after the other's.
        var runs = error.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l[..l.LastIndexOf(':')]).ToArray();
        string[] names = ["pp8 -t 1", "tg4 -t 1", "pp8 -t 2", "tg4 -t 2"];
        Assert.Equal(names.SelectMany(n => new[] { 1, 2 }.SelectMany(rep => new[] { $"managedlm {n}: run {rep}/2", $"llama-bench {n}: run {rep}/2" })), runs);
        Assert.All(error.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("llama-bench", StringComparison.Ordinal)),
            l => Assert.EndsWith(l.Contains("-t 1", StringComparison.Ordinal) ? ": 100.00 t/s" : ": 200.00 t/s", l));

        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["model", "threads", "test", "ours t/s", "peer t/s", "ours/peer"], Cells(lines[0]));
        var rows = lines[2..6].Select(Cells).ToArray();
        Assert.Equal(["pp8", "tg4", "pp8", "tg4"], rows.Select(r => r[2]));
        Assert.Equal(["100.00 ±    0.00", "100.00 ±    0.00", "200.00 ±    0.00", "200.00 ±    0.00"], rows.Select(r => r[4]));
        Assert.All(rows, r => Assert.Matches(@"^\d+\.\d\d ± \d+\.\d\d$", r[5]));
        Assert.Equal(ManagedLM.Kernels.CpuFeatures.Description, lines[6]);
        Assert.Equal($"peer: {peer.Path}, build b9749 (d32676d77)", lines[7]);
        Assert.Equal(8, lines.Length);
    }

    [Fact]
    public void Json_lines_carry_both_speeds_and_their_ratio_at_a_depth()
    {
        using var peer = new FakePeer("llama-bench", [LlamaBench(0, 4, 1, 40_000_000, depth: 16)]);
        var output = new StringWriter();
        var settings = new BenchCommand.BenchSettings(Model, [0], [4], [1], 3) { Depths = [16] };
        var results = BenchCommand.Run(settings, json: true, output, peer: new PeerProgram(peer.Path));

        Assert.Equal(Enumerable.Repeat($"-m {Model} -p 0 -n 4 -d 16 -t 1 -r 1 -o jsonl", 3), peer.Calls);
        var r = Assert.Single(results);
        Assert.Equal([100.0, 100.0, 100.0], r.PeerTokensPerSecond);
        var e = JsonDocument.Parse(output.ToString()).RootElement;
        Assert.Equal((0, 4, 16, 1), (e.GetProperty("n_prompt").GetInt32(), e.GetProperty("n_gen").GetInt32(), e.GetProperty("n_depth").GetInt32(), e.GetProperty("n_threads").GetInt32()));
        Assert.Equal(peer.Path, e.GetProperty("peer").GetString());
        Assert.Equal("b9749 (d32676d77)", e.GetProperty("peer_build").GetString());
        Assert.Equal(100.0, e.GetProperty("peer_avg_ts").GetDouble());
        Assert.Equal(0.0, e.GetProperty("peer_stddev_ts").GetDouble());
        Assert.Equal(3, e.GetProperty("peer_samples_ts").GetArrayLength());
        Assert.Equal(3, e.GetProperty("samples_ts").GetArrayLength());
        Assert.Equal(e.GetProperty("avg_ts").GetDouble() / 100, e.GetProperty("ratio").GetDouble(), tolerance: 1e-3);
        Assert.Equal(e.GetProperty("stddev_ts").GetDouble() / 100, e.GetProperty("ratio_stddev").GetDouble(), tolerance: 1e-3);
    }

    [Fact]
    public void Batched_runs_alternate_with_llama_batched_bench()
    {
        string one = $"-m {Model} -npp 4 -ntg 3 -npl 1 -t 1 -c 256 --output-format jsonl", two = $"-m {Model} -npp 4 -ntg 3 -npl 2 -t 1 -c 512 --output-format jsonl";
        using var peer = new FakePeer("llama-batched-bench",
            [(one, FakePeer.Prints(FakePeer.BatchedBenchLine(4, 3, 1, 1, 400, 300))), (two, FakePeer.Prints(FakePeer.BatchedBenchLine(4, 3, 2, 1, 800, 600)))]);
        var (code, output, error) = Bench("-m", Model, "-p", "4", "-n", "3", "--batch", "1,2", "-t", "1", "-r", "2",
            "--peer", peer.Path, "--progress", "--json");

        Assert.True(code == ExitCodes.Ok, error);
        Assert.Equal([one, one, two, two], peer.Calls);
        var runs = error.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l[..l.IndexOf(": tg", StringComparison.Ordinal)]).ToArray();
        Assert.Equal(new[] { 1, 2 }.SelectMany(b => new[] { 1, 2 }.SelectMany(rep => new[]
            { $"managedlm B={b} pp4+tg3 -t 1: run {rep}/2", $"llama-batched-bench B={b} pp4+tg3 -t 1: run {rep}/2" })), runs);

        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.Equal([1, 2], lines.Select(e => e.GetProperty("n_parallel").GetInt32()));
        Assert.Equal([300.0, 600.0], lines.Select(e => e.GetProperty("peer_speed_tg").GetDouble()));
        Assert.Equal([400.0, 800.0], lines.Select(e => e.GetProperty("peer_speed_pp").GetDouble()));
        Assert.All(lines, e =>
        {
            double peerTg = e.GetProperty("peer_speed_tg").GetDouble();
            Assert.Equal(e.GetProperty("speed_tg").GetDouble() / peerTg, e.GetProperty("ratio_tg").GetDouble(), tolerance: 1e-3);
            Assert.Equal(e.GetProperty("speed_pp").GetDouble() / e.GetProperty("peer_speed_pp").GetDouble(), e.GetProperty("ratio_pp").GetDouble(), tolerance: 1e-3);
            Assert.Equal([peerTg, peerTg], e.GetProperty("peer_samples_ts").EnumerateArray().Select(v => v.GetDouble()));
        });
    }

    [Fact]
    public void A_batched_bench_run_that_loses_its_result_is_run_again()
    {
        string arguments = $"-m {Model} -npp 4 -ntg 3 -npl 1 -t 1 -c 256 --output-format jsonl";
        // The first run ends well with its result lost, as llama.cpp's asynchronous log can at exit.
        using var peer = new FakePeer("llama-batched-bench",
            [(arguments, $"[ \"$runs\" -eq 1 ] && exit 0\n{FakePeer.Prints(FakePeer.BatchedBenchLine(4, 3, 1, 1, 400, 300))}")]);
        var (code, output, error) = Bench("-m", Model, "-p", "4", "-n", "3", "--batch", "1", "-t", "1", "-r", "1", "--peer", peer.Path, "--json");

        Assert.True(code == ExitCodes.Ok, error);
        Assert.Equal([arguments, arguments], peer.Calls);
        Assert.Equal(300.0, JsonDocument.Parse(output).RootElement.GetProperty("peer_speed_tg").GetDouble());
    }

    [Fact]
    public void A_batched_bench_that_never_prints_its_result_fails_after_its_attempts()
    {
        string arguments = $"-m {Model} -npp 4 -ntg 3 -npl 1 -t 1 -c 256 --output-format jsonl";
        using var peer = new FakePeer("llama-batched-bench", [(arguments, "echo")]);
        var (code, output, error) = Bench("-m", Model, "-p", "4", "-n", "3", "--batch", "1", "-t", "1", "-r", "1", "--peer", peer.Path, "--json");

        Assert.Equal(ExitCodes.Failure, code);
        Assert.Equal("", output);
        Assert.Equal(PeerProgram.BatchedBenchAttempts, peer.Calls.Length);
        Assert.Equal($"managedlm bench: error: {peer.Path} {arguments} printed no result for B=1 pp4+tg3 on 1 threads in 3 runs (expected JSON lines with its fields).",
            error.TrimEnd());
    }

    public static TheoryData<string, string> BadPeers => new()
    {
        // A failing run: its exit code and the last line it wrote on stderr.
        { "echo 'llama_model_loader: loading' >&2; echo \"main: error: failed to load model\" >&2; exit 1", "failed (exit code 1): main: error: failed to load model" },
        { "exit 134", "failed (exit code 134): (nothing on stderr)" },
        // Output without the test's result: a markdown table, another test's line, a truncated line.
        { FakePeer.Prints("| model | size |\n| --- | --- |"), "printed no result for pp8 on 1 threads (expected JSON lines with its fields)." },
        { FakePeer.Prints(FakePeer.LlamaBenchLine(Model, 512, 0, 0, 1, 1000)), "printed no result for pp8 on 1 threads (expected JSON lines with its fields)." },
        { FakePeer.Prints("{\"n_prompt\": 8, \"n_gen\""), "printed a line that is not JSON: " },
    };

    [Theory]
    [MemberData(nameof(BadPeers))]
    public void A_failing_or_unreadable_peer_is_a_one_line_error(string command, string message)
    {
        using var peer = new FakePeer("llama-bench", [], otherwise: command);
        var (code, output, error) = Bench("-m", Model, "-p", "8", "-n", "0", "-t", "1", "-r", "1", "--peer", peer.Path, "--json");

        Assert.Equal(ExitCodes.Failure, code);
        Assert.Equal("", output);
        Assert.Single(error.TrimEnd().Split('\n'));
        Assert.StartsWith($"managedlm bench: error: {peer.Path} -m {Model} -p 8 -n 0 -t 1 -r 1 -o jsonl {message}", error);
    }

    [Theory]
    [InlineData("/nonexistent/llama-bench", "--peer \"/nonexistent/llama-bench\" is not a file.")]
    [InlineData("managedlm-no-such-llama-bench", "--peer \"managedlm-no-such-llama-bench\" is not a file nor a program on PATH.")]
    [InlineData(null, "--peer \"{0}\" is not executable.")]
    public void A_peer_that_cannot_run_is_a_usage_error_before_the_model_is_looked_for(string? path, string message)
    {
        using var peer = new FakePeer("llama-bench", []);
        File.SetUnixFileMode(peer.Path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var (code, output, error) = Bench("-m", "/nonexistent/model.gguf", "--peer", path ?? peer.Path);

        Assert.Equal(ExitCodes.Usage, code);
        Assert.Equal("", output);
        Assert.Equal($"managedlm bench: error: {string.Format(System.Globalization.CultureInfo.InvariantCulture, message, peer.Path)}", error.TrimEnd());
        Assert.Empty(peer.Calls);
    }

    [Theory]
    [InlineData("--parallel", "--peer compares the -p/-n tests or --batch, not --parallel.")]
    [InlineData("--depth", "-d/--n-depth applies to the -p/-n tests, not to --batch or --parallel.")]
    public void Modes_that_do_not_combine_are_usage_errors(string flag, string message)
    {
        using var peer = new FakePeer("llama-bench", []);
        string[] args = flag == "--parallel" ? ["--parallel", "2", "--peer", peer.Path] : ["--batch", "2", "-d", "16"];
        var (code, output, error) = Bench(["-m", Model, "-n", "4", .. args]);

        Assert.Equal(ExitCodes.Usage, code);
        Assert.Equal("", output);
        Assert.Equal($"managedlm bench: error: {message}", error.TrimEnd());
        Assert.Empty(peer.Calls);
    }

    [Fact]
    public void The_ratio_is_of_the_mean_speeds_and_spreads_as_the_paired_runs_do()
    {
        Assert.Equal(new SpeedRatio(2, 0), SpeedRatio.Of([2, 4], [1, 2]));
        var r = SpeedRatio.Of([3, 3], [1, 3]);
        Assert.Equal(1.5, r.Value, 12);
        Assert.Equal(Math.Sqrt(2), r.Stddev, 12);
        Assert.Equal("1.50 ± 1.41", r.ToString());
    }

    private static string[] Cells(string row) => row.Trim('|').Split('|').Select(c => c.Trim()).ToArray();
}

using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace ManagedLM.Cli.Commands;

/// <summary>
/// llama.cpp's llama-bench, llama-batched-bench or llama-embedding, run by `managedlm bench --peer` for one repetition of
/// one test at a time, so that its runs alternate with ours. The benchmarks print JSON lines (llama-bench <c>-o jsonl</c>,
/// llama-batched-bench <c>--output-format jsonl</c>; other lines, logs, are ignored); llama-embedding is timed from
/// outside (<see cref="RunLlamaEmbedding"/>). A start failure, a non-zero exit or output without the expected result is
/// a <see cref="CommandFailedException"/>.
/// </summary>
internal sealed class PeerProgram(string path)
{
    /// <summary>The executable's full path.</summary>
    public string Path { get; } = path;

    /// <summary>The executable's file name, as tables and progress lines name the peer.</summary>
    public string Name => System.IO.Path.GetFileName(Path);

    /// <summary>
    /// The full path of <paramref name="name"/> (the value of --peer): a path, or a file name looked for on PATH. Throws an
    /// <see cref="ArgumentException"/> unless it is an executable file.
    /// </summary>
    public static string Locate(string name)
    {
        bool isPath = name.Contains('/', StringComparison.Ordinal) || name.Contains(System.IO.Path.DirectorySeparatorChar, StringComparison.Ordinal);
        string? path = isPath ? System.IO.Path.GetFullPath(name)
            : (Environment.GetEnvironmentVariable("PATH") ?? "").Split(System.IO.Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
                .Select(d => System.IO.Path.Combine(d, name)).FirstOrDefault(File.Exists);
        if (name.Length == 0 || path is null || !File.Exists(path))
            throw new ArgumentException($"--peer \"{name}\" is not a file{(isPath ? "" : " nor a program on PATH")}.");
        const UnixFileMode executable = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
        if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(path) & executable) == 0)
            throw new ArgumentException($"--peer \"{path}\" is not executable.");
        return path;
    }

    /// <summary>llama-bench's arguments for one repetition of <paramref name="test"/>: -d only for a depth, which older builds lack.</summary>
    public static string[] LlamaBenchArguments(string model, BenchCommand.BenchTest test, int threads) =>
    [
        "-m", model, "-p", Invariant(test.NPrompt), "-n", Invariant(test.NGen), .. test.Depth > 0 ? ["-d", Invariant(test.Depth)] : Array.Empty<string>(),
        "-t", Invariant(threads), "-r", "1", "-o", "jsonl",
    ];

    /// <summary>
    /// llama-batched-bench's arguments for B sequences with a prompt and a generation length each. The context holds every
    /// sequence, at least 256 tokens each: its default, the model's training context, can be too small (a test that does
    /// not fit is skipped) or needlessly large, and a tiny one would cap the batch below the 16 tokens of its warm-up.
    /// </summary>
    public static string[] BatchedBenchArguments(string model, int prompt, int gen, int sequences, int threads) =>
    [
        "-m", model, "-npp", Invariant(prompt), "-ntg", Invariant(gen), "-npl", Invariant(sequences), "-t", Invariant(threads),
        "-c", Invariant(sequences * Math.Max(prompt + gen, 256)), "--output-format", "jsonl",
    ];

    /// <summary>One repetition of a llama-bench test: its seconds and the build that ran it ("b6123 (1a2b3c4)").</summary>
    public (double Seconds, string Build) RunLlamaBench(string model, BenchCommand.BenchTest test, int threads)
    {
        string[] args = LlamaBenchArguments(model, test, threads);
        var line = Run(args).FirstOrDefault(e =>
            Int(e, "n_prompt") == test.NPrompt && Int(e, "n_gen") == test.NGen && Int(e, "n_threads") == threads
            && (Int(e, "n_depth") ?? 0) == test.Depth);
        if (Number(line, "avg_ns") is not (> 0 and var ns))
            throw NoResult($"{test.Name} on {threads} threads", args);
        string build = line.TryGetProperty("build_number", out var number) && line.TryGetProperty("build_commit", out var commit)
            ? $"b{number} ({commit})" : "";
        return (ns / 1e9, build);
    }

    /// <summary>
    /// One llama-batched-bench test: speed_pp and speed_tg, tokens/s of all sequences together. It prints its results
    /// through llama.cpp's asynchronous log, which can lose the last lines when the process exits (a busy machine makes it
    /// likely: see common_log_main in llama.cpp's common/log.cpp), so a run that ends well without its result is run again,
    /// up to <see cref="BatchedBenchAttempts"/> times in all.
    /// </summary>
    public (double SpeedPp, double SpeedTg) RunBatchedBench(string model, int prompt, int gen, int sequences, int threads)
    {
        string[] args = BatchedBenchArguments(model, prompt, gen, sequences, threads);
        for (int attempt = 0; attempt < BatchedBenchAttempts; attempt++)
        {
            var line = Run(args).FirstOrDefault(e => Int(e, "pp") == prompt && Int(e, "tg") == gen && Int(e, "pl") == sequences);
            if (Number(line, "speed_pp") is > 0 and var pp && Number(line, "speed_tg") is > 0 and var tg)
                return (pp, tg);
        }
        throw NoResult($"B={sequences} pp{prompt}+tg{gen} on {threads} threads", args, BatchedBenchAttempts);
    }

    /// <summary>Runs of llama-batched-bench for one result before its missing output is an error.</summary>
    public const int BatchedBenchAttempts = 3;

    /// <summary>
    /// llama-embedding's arguments for a file of texts of <paramref name="tokens"/> tokens each, encoded
    /// <paramref name="sequences"/> at a time: batch, ubatch and context of sequences × tokens, so that each batch is one
    /// llama_encode of that many sequences; the output as one JSON array, small and quick to print.
    /// </summary>
    public static string[] LlamaEmbeddingArguments(string model, string textsFile, int sequences, int tokens, int threads, string pooling)
    {
        string n = Invariant(sequences * tokens);
        return
        [
            "-m", model, "-f", textsFile, "-np", Invariant(sequences), "-b", n, "-ub", n, "-c", n, "-t", Invariant(threads),
            "--pooling", pooling, "--embd-output-format", "array",
        ];
    }

    /// <summary>
    /// One run of llama-embedding over <paramref name="textsFile"/>: its wall seconds, load included (it prints no time of
    /// its own for an encoder). Its log must show <paramref name="batches"/> batches of exactly sequences × tokens tokens
    /// in <paramref name="sequences"/> sequences (<c>batch_decode: n_tokens = N, n_seq = B</c>), which proves that its
    /// tokenizer gave every text the same count as ours; a run whose log lost lines (llama.cpp's asynchronous log, at exit)
    /// is run again, up to <see cref="BatchedBenchAttempts"/> times in all.
    /// </summary>
    public double RunLlamaEmbedding(string model, string textsFile, int sequences, int tokens, int threads, string pooling, int batches)
    {
        string[] args = LlamaEmbeddingArguments(model, textsFile, sequences, tokens, threads, pooling);
        for (int attempt = 0; attempt < BatchedBenchAttempts; attempt++)
        {
            var (stdout, stderr, seconds) = Execute(args);
            var logged = Regex.Matches(stderr + "\n" + stdout, BatchLine)
                .Select(m => (Tokens: int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), Sequences: int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture)))
                .ToArray();
            if (logged.FirstOrDefault(b => b != (sequences * tokens, sequences)) is { Tokens: > 0 } other)
                throw new CommandFailedException(
                    $"{CommandLine(args)} encoded a batch of {other.Tokens} tokens in {other.Sequences} sequences, not {sequences * tokens} in {sequences}: " +
                    $"its tokenizer does not give each text {tokens} tokens.");
            if (logged.Length == batches)
                return seconds;
        }
        throw new CommandFailedException(
            $"{CommandLine(args)} did not log its {batches} batches (batch_decode: n_tokens = {sequences * tokens}, n_seq = {sequences}) in {BatchedBenchAttempts} runs.");
    }

    // llama-embedding's log line for each batch it encodes.
    private const string BatchLine = @"batch_decode: n_tokens = (\d+), n_seq = (\d+)";

    /// <summary>The build the program reports with --version ("b9749 (d32676d77)"), or "" when it reports none.</summary>
    public string Version()
    {
        try
        {
            var (stdout, stderr, _) = Execute(["--version"]);
            var match = Regex.Match(stderr + "\n" + stdout, VersionLine);
            return match.Success ? $"b{match.Groups[1].Value} ({match.Groups[2].Value})" : "";
        }
        catch (CommandFailedException)
        {
            return "";
        }
    }

    // What llama.cpp's programs print for --version: "version: 9749 (d32676d77)".
    private const string VersionLine = @"version: (\d+) \(([0-9a-f]+)\)";

    // Runs the program to its end and returns the JSON objects of its stdout.
    private JsonElement[] Run(string[] args)
    {
        var lines = Execute(args).Stdout.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Where(l => l.StartsWith('{')).ToArray();
        try
        {
            return lines.Select(l => JsonSerializer.Deserialize<JsonElement>(l)).ToArray();
        }
        catch (JsonException e)
        {
            throw new CommandFailedException($"{CommandLine(args)} printed a line that is not JSON: {e.Message}", e);
        }
    }

    // Runs the program to its end: its stdout, its stderr and its wall seconds from start to exit. A start failure or a
    // non-zero exit code is a CommandFailedException.
    private (string Stdout, string Stderr, double Seconds) Execute(string[] args)
    {
        var start = new ProcessStartInfo(Path)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (string a in args)
            start.ArgumentList.Add(a);
        Process process;
        var clock = Stopwatch.StartNew();
        try
        {
            process = Process.Start(start) ?? throw new CommandFailedException($"Could not start {Path}.");
        }
        catch (Win32Exception e)
        {
            throw new CommandFailedException($"Could not start {Path}: {e.Message}", e);
        }
        using (process)
        {
            // Both streams at once: a full pipe would block the program.
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            process.WaitForExit();
            double seconds = clock.Elapsed.TotalSeconds;
            if (process.ExitCode != 0)
                throw new CommandFailedException($"{CommandLine(args)} failed (exit code {process.ExitCode}): {LastLine(stderr.Result)}");
            return (stdout.Result, stderr.Result, seconds);
        }
    }

    private CommandFailedException NoResult(string test, string[] args, int runs = 1) =>
        new($"{CommandLine(args)} printed no result for {test}{(runs > 1 ? $" in {runs} runs" : "")} (expected JSON lines with its fields).");

    private string CommandLine(string[] args) => string.Join(' ', args.Prepend(Path).Select(a => a.Contains(' ', StringComparison.Ordinal) ? $"\"{a}\"" : a));

    private static string LastLine(string text) =>
        text.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).LastOrDefault() ?? "(nothing on stderr)";

    private static int? Int(JsonElement e, string name) => Number(e, name) is { } v && v == Math.Floor(v) ? (int)v : null;

    private static double? Number(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;

    private static string Invariant(int v) => v.ToString(CultureInfo.InvariantCulture);
}

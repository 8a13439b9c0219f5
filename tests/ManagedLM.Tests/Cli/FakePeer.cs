namespace ManagedLM.Tests.Cli;

/// <summary>
/// A stand-in for llama.cpp's llama-bench or llama-batched-bench: a shell script that records its arguments (a line per
/// run, in <see cref="Calls"/>) and runs the shell command given for exactly those arguments, else fails as llama.cpp
/// does on arguments it does not know. POSIX only, as the peer is.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
internal sealed class FakePeer : IDisposable
{
    private readonly string _dir = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"managedlm-peer-{Guid.NewGuid():N}");

    /// <param name="name">The script's file name (progress lines and tables name the peer by it).</param>
    /// <param name="cases">For an argument line ("-m x.gguf -p 8 ..."), the shell command that answers it (see <see cref="Prints"/>).</param>
    /// <param name="otherwise">The command for any other arguments.</param>
    public FakePeer(string name, IEnumerable<(string Arguments, string Command)> cases, string? otherwise = null)
    {
        Directory.CreateDirectory(_dir);
        Path = System.IO.Path.Combine(_dir, name);
        var script = new System.Text.StringBuilder();
        script.Append($"#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{CallsFile}'\nruns=$(wc -l < '{CallsFile}')\ncase \"$*\" in\n");
        foreach (var (arguments, command) in cases)
            script.Append($"'{arguments}')\n{command}\n;;\n");
        script.Append($"*)\n{otherwise ?? "echo \"error: invalid parameter for argument: $*\" >&2; exit 1"}\n;;\nesac\n");
        File.WriteAllText(Path, script.ToString());
        File.SetUnixFileMode(Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    public string Path { get; }

    /// <summary>The argument line of each run so far, in order.</summary>
    public string[] Calls => File.Exists(CallsFile) ? File.ReadAllLines(CallsFile) : [];

    /// <summary>A command that prints <paramref name="stdout"/>, and llama.cpp's log chatter on stderr.</summary>
    public static string Prints(string stdout) =>
        $"echo 'llama_model_loader: loaded meta data' >&2\ncat <<'END_OF_OUTPUT'\n{stdout}\nEND_OF_OUTPUT\necho 'llama_perf_context_print: total time' >&2";

    /// <summary>
    /// A llama-bench -o jsonl line as build b9749 prints it, for one test taking <paramref name="ns"/> nanoseconds.
    /// </summary>
    public static string LlamaBenchLine(string model, int nPrompt, int nGen, int depth, int threads, long ns) =>
        $$"""{"build_commit": "d32676d77", "build_number": 9749, "cpu_info": "AMD EPYC", "gpu_info": "", "backends": "CPU", "model_filename": "{{model}}", "model_type": "llama ?B (guessed) all F32", "model_size": 1171200, "model_n_params": 292800, "n_batch": 2048, "n_ubatch": 512, "n_threads": {{threads}}, "cpu_mask": "0x0", "cpu_strict": false, "poll": 50, "type_k": "f16", "type_v": "f16", "n_gpu_layers": -1, "n_cpu_moe": 0, "split_mode": "layer", "main_gpu": 0, "no_kv_offload": false, "flash_attn": -1, "devices": "auto", "tensor_split": "0.00", "tensor_buft_overrides": "none", "load_mode": "mmap", "embeddings": false, "no_op_offload": 0, "no_host": false, "fit_target": 0, "fit_min_ctx": 0, "n_prompt": {{nPrompt}}, "n_gen": {{nGen}}, "n_depth": {{depth}}, "test_time": "2026-12-07T12:02:54Z", "avg_ns": {{ns}}, "stddev_ns": 0, "avg_ts": {{1e9 * (nPrompt + nGen) / ns:F6}}, "stddev_ts": 0.000000, "samples_ns": [ {{ns}} ],"samples_ts": [ {{1e9 * (nPrompt + nGen) / ns:F1}} ]}""";

    /// <summary>A llama-batched-bench --output-format jsonl line, and the empty line it prints after its results.</summary>
    public static string BatchedBenchLine(int pp, int tg, int pl, int threads, double speedPp, double speedTg) =>
        $$"""{"n_kv_max": {{pl * 256}}, "n_batch": 2048, "n_ubatch": 512, "flash_attn": -1, "is_pp_shared": 0, "n_gpu_layers": -1, "n_threads": {{threads}}, "n_threads_batch": {{threads}}, "pp": {{pp}}, "tg": {{tg}}, "pl": {{pl}}, "n_kv": {{pl * (pp + tg)}}, "t_pp": {{pl * pp / speedPp:F6}}, "speed_pp": {{speedPp:F6}}, "t_tg": {{pl * tg / speedTg:F6}}, "speed_tg": {{speedTg:F6}}, "t": 0.1, "speed": 100.0}""" + "\n";

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string CallsFile => System.IO.Path.Combine(_dir, "calls");
}

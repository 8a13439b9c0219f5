using System.Diagnostics;

namespace ManagedLM.Tests.Server;

/// <summary>
/// The real clients of the server tests: Node.js scripts in tests/node using the pinned openai and puppeteer-core packages,
/// and Debian's chromium. tests/node/setup.sh installs them (npm ci from package-lock.json, apt-get install chromium)
/// once per test run.
/// </summary>
public static class ClientTools
{
    private static readonly Lazy<Task<string>> s_setup = new(Setup);

    public static string NodeDirectory => Path.Combine(TestData.RepoRoot, "tests", "node");

    /// <summary>Runs the setup (once) and returns chromium's path.</summary>
    public static Task<string> EnsureInstalledAsync() => s_setup.Value;

    private static async Task<string> Setup()
    {
        var r = await RunAsync("bash", [Path.Combine(NodeDirectory, "setup.sh")], TimeSpan.FromMinutes(10));
        if (r.ExitCode != 0)
            throw new InvalidOperationException($"tests/node/setup.sh failed ({r.ExitCode}):\n{r.Stdout}\n{r.Stderr}");
        return r.Stdout.Trim().Split('\n')[^1];
    }

    /// <summary>Runs a script of tests/node with node, after the setup.</summary>
    public static async Task<ProcessResult> NodeAsync(string script, params string[] args)
    {
        await EnsureInstalledAsync();
        return await RunAsync("node", [Path.Combine(NodeDirectory, script), .. args], TimeSpan.FromMinutes(3));
    }

    public sealed record ProcessResult(int ExitCode, string Stdout, string Stderr)
    {
        public override string ToString() => $"exit {ExitCode}\nstdout:\n{Stdout}\nstderr:\n{Stderr}";
    }

    private static async Task<ProcessResult> RunAsync(string file, string[] args, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = NodeDirectory,
        };
        foreach (string a in args)
            start.ArgumentList.Add(a);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {file}.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} ran longer than {timeout}.");
        }
        return new ProcessResult(process.ExitCode, await stdout, await stderr);
    }
}

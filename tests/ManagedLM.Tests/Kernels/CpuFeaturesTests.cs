using System.Diagnostics;
using System.Text.Json;
using ManagedLM.Kernels;
using ManagedLM.Tests.Model;

namespace ManagedLM.Tests.Kernels;

/// <summary>The capability flags, and the capped levels (MANAGEDLM_CPU) run in a subprocess: their kernels still give llama.cpp's tokens.</summary>
public class CpuFeaturesTests
{
    [Theory]
    [InlineData("avx2", CpuLevel.Avx2)]
    [InlineData(" AVX2 ", CpuLevel.Avx2)]
    [InlineData("scalar", CpuLevel.Scalar)]
    [InlineData("Scalar", CpuLevel.Scalar)]
    [InlineData("avx512", null)]
    [InlineData("", null)]
    [InlineData(null, null)]
    [InlineData("sse2", null)]
    public void The_variable_names_a_cap_or_none(string? setting, CpuLevel? cap) => Assert.Equal(cap, CpuFeatures.ParseCap(setting));

    [Fact]
    public void The_flags_agree_with_the_level_and_with_each_other()
    {
        Assert.Equal(CpuFeatures.Avx512 ? CpuLevel.Avx512 : CpuFeatures.Avx2 ? CpuLevel.Avx2 : CpuLevel.Scalar, CpuFeatures.Level);
        Assert.True(!CpuFeatures.Avx512 || CpuFeatures.Avx2);
        Assert.True(!CpuFeatures.AvxVnni || CpuFeatures.Avx2);
        Assert.True(!CpuFeatures.Avx512Vnni || CpuFeatures.Avx512);
        Assert.True(!CpuFeatures.Vector512 || CpuFeatures.Vector256);
        Assert.StartsWith($"kernels: {CpuFeatures.Level.ToString().ToLowerInvariant()} (", CpuFeatures.Description);
    }

    // Q4_0, Q5_0, Q8_0 and F16 weights; Q4_K and Q6_K weights.
    public static TheoryData<string, string> Caps => new()
    {
        { "avx2", "stories260K-mix-Q4_0.gguf|reference/stories260K-mix-Q4_0.ref.json.gz" },
        { "avx2", "synthetic/synth-llama-Q4_K_M.gguf|synthetic/synth-llama-Q4_K_M.ref.json.gz" },
        { "scalar", "stories260K-mix-Q4_0.gguf|reference/stories260K-mix-Q4_0.ref.json.gz" },
        { "scalar", "synthetic/synth-llama-Q4_K_M.gguf|synthetic/synth-llama-Q4_K_M.ref.json.gz" },
    };

    [Theory]
    [MemberData(nameof(Caps))]
    public void A_capped_level_runs_its_own_paths_and_generates_llama_cpps_tokens(string cap, string files)
    {
        string[] paths = files.Split('|');
        var reference = ReferenceOutput.Load(paths[1]);
        string model = TestData.Model(paths[0]);

        var (code, table, stderr) = Cli(cap, "bench", "-m", model, "-p", "2", "-n", "0", "-r", "1", "-t", "1");
        Assert.True(code == 0, stderr);
        var level = (CpuLevel)Math.Min((int)CpuFeatures.ParseCap(cap)!.Value, (int)CpuFeatures.Level);
        Assert.Contains($"kernels: {level.ToString().ToLowerInvariant()} (", table);
        Assert.Contains($"MANAGEDLM_CPU={cap}", table);

        const int Steps = 16;
        (code, string stdout, stderr) = Cli(cap, "generate", "-m", model, "--prompt-ids", string.Join(',', reference.PromptTokens),
            "-n", $"{Steps}", "--temp", "0", "--json");
        Assert.True(code == 0, stderr);
        int[] generated = JsonDocument.Parse(stdout).RootElement.GetProperty("generated_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal(reference.GeneratedTokens[..Steps], generated);
    }

    // Runs the managedlm CLI (built beside the tests) with MANAGEDLM_CPU set.
    private static (int Code, string Stdout, string Stderr) Cli(string cap, params string[] args)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        start.Environment[CpuFeatures.Variable] = cap;
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "ManagedLM.Cli.dll"));
        foreach (string a in args)
            start.ArgumentList.Add(a);
        using var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start managedlm.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        string stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result, stderr);
    }
}

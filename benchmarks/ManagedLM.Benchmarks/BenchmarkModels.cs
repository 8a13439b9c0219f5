using ManagedLM.Gguf;
using ManagedLM.Quantization;
using ManagedLM.Synthesis;

namespace ManagedLM.Benchmarks;

/// <summary>
/// Models for end-to-end benchmarks: <c>$MANAGEDLM_BENCH_MODEL</c> when set, else a <c>synth</c> preset in
/// the repository's checkpoints/ folder, written there (random weights, deterministic) the first time.
/// </summary>
public static class BenchmarkModels
{
    public static string Get(string preset, LlamaFileType type)
    {
        if (Environment.GetEnvironmentVariable("MANAGEDLM_BENCH_MODEL") is { Length: > 0 } configured)
            return configured;
        string root = RepositoryRoot();
        string path = Path.Combine(root, "checkpoints", $"{preset}-{LlamaFileTypes.Name(type)}.gguf");
        if (File.Exists(path))
            return path;
        var p = SynthesisPreset.Get(preset);
        List<KeyValuePair<string, GgufValue>> tokenizer;
        using (var vocab = GgufFile.OpenOrUnzip(Path.Combine(root, "..", "shared", "models", p.VocabFile)))
            tokenizer = ModelSynthesizer.TokenizerMetadata(vocab.Metadata);
        ModelSynthesizer.WriteFile(p.Spec, p.Name, 1, new QuantizationOptions(type) { Threads = Environment.ProcessorCount }, tokenizer, path);
        return path;
    }

    // BenchmarkDotNet runs each case from a generated project under bin/: walk up to the solution.
    internal static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ManagedLM.sln")))
                return dir.FullName;
        }
        throw new InvalidOperationException("ManagedLM.sln not found above " + AppContext.BaseDirectory + "; set MANAGEDLM_BENCH_MODEL.");
    }
}

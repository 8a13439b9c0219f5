using ManagedLM.Generation;
using ManagedLM.Kernels;
using ManagedLM.Model;
using ManagedLM.Quantization;
using ManagedLM.Sampling;
using ManagedLM.Synthesis;
using ManagedLM.Tests.Synthesis;

namespace ManagedLM.Tests.Model;

/// <summary>A model's logits are bit-identical with its weights repacked (<see cref="ModelOptions.RepackWeights"/>) or not, stepped or in batches.</summary>
public class RepackedWeightsTests
{
    public static TheoryData<string, int> Cases => new()
    {
        { "stories260K-mix-Q4_0.gguf", 1 }, { "stories260K-mix-Q5_0.gguf", 2 }, { "stories260K-mix-Q8_0.gguf", 2 },
        { "synthetic/synth-llama-Q4_0.gguf", 1 }, { "synthetic/synth-llama-Q4_0.gguf", 2 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Logits_are_the_same_with_and_without_repacking(string file, int threads)
    {
        using var plain = TransformerModel.Load(TestData.Model(file), new ModelOptions { RepackWeights = false, LargePages = false, WarmUp = false });
        using var repacked = TransformerModel.Load(TestData.Model(file), new ModelOptions { RepackWeights = true, LargePages = false, WarmUp = false });
        Assert.Equal(0, plain.Weights.RepackedBytes);
        Assert.Equal(CpuFeatures.AvxVnni, repacked.Weights.RepackedBytes > 0);
        AssertSameLogits(plain, repacked, threads);
    }

    [Fact]
    public void A_model_mapped_from_a_file_gives_back_the_pages_of_its_repacked_matrices_and_its_logits_stay()
    {
        var spec = SynthesisSpec.Tiny with { FeedForwardLength = 8192, BlockCount = 2 };
        byte[] bytes = ModelSynthesizerTests.Synthesize(spec, "release", 5, LlamaFileType.Q4_0);
        string path = Path.Combine(Directory.CreateTempSubdirectory("managedlm-release-").FullName, "release-Q4_0.gguf");
        File.WriteAllBytes(path, bytes);
        try
        {
            using var plain = TransformerModel.Load(bytes, new ModelOptions { RepackWeights = false, WarmUp = false });
            using var fromMemory = TransformerModel.Load(bytes, new ModelOptions { RepackWeights = true, WarmUp = false });
            using var fromFile = TransformerModel.Load(path, new ModelOptions { RepackWeights = true, WarmUp = false });
            var weights = fromFile.Weights;
            var released = weights.Matrices.Where(m => m.FileBytesReleased).ToList();
            // Repacked, or else copied into large pages where the OS offers them; the token embedding's rows are read from
            // the file even when repacked.
            Assert.Equal(weights.Matrices.Where(m => (m.RepackedBytes > 0 && !ReferenceEquals(m, weights.TokenEmbedding)) || m.InLargePages), released);
            Assert.Equal(CpuFeatures.AvxVnni || WeightArena.LargePages, released.Count > 0);
            Assert.DoesNotContain(fromMemory.Weights.Matrices, m => m.FileBytesReleased || m.InLargePages); // the bytes are the only copy

            AssertSameLogits(plain, fromFile, threads: 2);
            AssertSameLogits(plain, fromMemory, threads: 1);

            // The released pages stay out: the file's mapping holds the rest of the file, and of the released half at
            // most what the kernel maps around other faults (fault-around: up to 64 KiB each; a few dozen faults here).
            if (OperatingSystem.IsLinux() && released.Count > 0)
            {
                long releasedBytes = released.Sum(m => m.Rows * m.RowBytes);
                Assert.True(releasedBytes > bytes.Length / 2);
                Assert.InRange(MappedResidentBytes(path), 0, bytes.Length - releasedBytes / 2);
            }
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
        }
    }

    // Resident bytes of this process's mappings of the file (/proc/self/smaps).
    private static long MappedResidentBytes(string path)
    {
        long total = 0;
        bool inFile = false;
        foreach (string line in File.ReadLines("/proc/self/smaps"))
        {
            if (line.Length > 0 && char.IsAsciiHexDigit(line[0]) && line.Contains('-'))
                inFile = line.EndsWith(path, StringComparison.Ordinal);
            else if (inFile && line.StartsWith("Rss:", StringComparison.Ordinal))
                total += long.Parse(line.AsSpan(4).Trim().TrimEnd("kB").Trim()) * 1024;
        }
        return total;
    }

    internal static void AssertSameLogits(TransformerModel plain, TransformerModel repacked, int threads)
    {
        int[] prompt = Enumerable.Range(0, 19).Select(i => (i * 131 + 7) % plain.Config.VocabSize).ToArray();
        foreach (int batch in new[] { 1, 7 })
        {
            var options = new GeneratorOptions { Threads = threads, BatchSize = batch, Sampling = SamplingOptions.Greedy };
            using var a = plain.CreateGenerator(options);
            using var b = repacked.CreateGenerator(options);
            Assert.Equal(a.Prefill(prompt).ToArray(), b.Prefill(prompt).ToArray());
            for (int step = 0; step < 3; step++)
                Assert.Equal(a.Step(step + 3).ToArray(), b.Step(step + 3).ToArray());
        }
    }
}

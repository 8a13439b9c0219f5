using ManagedLM.Generation;
using ManagedLM.Kernels;
using ManagedLM.Model;
using ManagedLM.Sampling;

namespace ManagedLM.Tests.Model;

/// <summary>A model's logits are bit-identical with its weights repacked (<see cref="ModelOptions.RepackWeights"/>) or not, stepped or in batches.</summary>
public class RepackedWeightsTests
{
    public static TheoryData<string, int> Cases => new()
    {
        { "stories260K-mix-Q4_0.gguf", 1 }, { "stories260K-mix-Q8_0.gguf", 2 },
        { "synthetic/synth-llama-Q4_0.gguf", 1 }, { "synthetic/synth-llama-Q4_0.gguf", 2 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Logits_are_the_same_with_and_without_repacking(string file, int threads)
    {
        using var plain = TransformerModel.Load(TestData.Model(file), new ModelOptions { RepackWeights = false, WarmUp = false });
        using var repacked = TransformerModel.Load(TestData.Model(file), new ModelOptions { RepackWeights = true, WarmUp = false });
        Assert.Equal(0, plain.Weights.RepackedBytes);
        Assert.Equal(CpuFeatures.AvxVnni, repacked.Weights.RepackedBytes > 0);
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

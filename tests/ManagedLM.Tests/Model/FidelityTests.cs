using ManagedLM.Generation;
using ManagedLM.Model;
using ManagedLM.Sampling;
using Xunit.Abstractions;

namespace ManagedLM.Tests.Model;

/// <summary>
/// Logits against llama.cpp on every shared model, teacher-forced with the reference's tokens.
/// Tolerances are max |Δlogit| over all steps and the whole vocabulary; each has its reason:
/// llama.cpp rounds activations (to F16 for F16 weights, to Q8 blocks for quantized weights) and
/// keeps an F16 KV cache, while ManagedLM keeps F32 activations and an F32 cache, so the gap grows
/// with how much those roundings move a quantized model (see MANIFEST.md and synthetic/README.md).
/// </summary>
public class FidelityTests(ITestOutputHelper output)
{
    public static TheoryData<string, string, float> Cases => new()
    {
        // F32 weights: only the F16 KV cache and summation order differ.
        { "stories260K.gguf", "reference/stories260K.ref.json.gz", 0.02f },
        // F16 weights: llama.cpp also rounds activations to F16 before each matmul.
        { "stories260K-F16.gguf", "reference/stories260K-F16.ref.json.gz", 0.05f },
        // Q8 activation blocks flip int8 roundings; the error grows as the weights get coarser.
        { "stories260K-mix-Q8_0.gguf", "reference/stories260K-mix-Q8_0.ref.json.gz", 0.25f },
        { "stories260K-mix-Q5_0.gguf", "reference/stories260K-mix-Q5_0.ref.json.gz", 0.35f },
        { "stories260K-mix-Q4_0.gguf", "reference/stories260K-mix-Q4_0.ref.json.gz", 0.5f },
        { "synthetic/synth-llama-Q4_K_M.gguf", "synthetic/synth-llama-Q4_K_M.ref.json.gz", 0.3f },
        { "synthetic/synth-llama-Q6_K.gguf", "synthetic/synth-llama-Q6_K.ref.json.gz", 0.3f },
        { "synthetic/synth-llama-Q4_0.gguf", "synthetic/synth-llama-Q4_0.ref.json.gz", 0.3f },
        { "synthetic/synth-llama-tied-Q4_K_M.gguf", "synthetic/synth-llama-tied-Q4_K_M.ref.json.gz", 0.3f },
        { "synthetic/synth-qwen2-Q4_K_M.gguf", "synthetic/synth-qwen2-Q4_K_M.ref.json.gz", 0.3f },
        { "synthetic/synth-qwen3-Q4_K_M.gguf", "synthetic/synth-qwen3-Q4_K_M.ref.json.gz", 0.3f },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Logits_match_llama_cpp(string modelFile, string referenceFile, float tolerance)
    {
        var reference = ReferenceOutput.Load(referenceFile);
        using var model = TransformerModel.Load(TestData.Model(modelFile));
        var generator = model.CreateGenerator(new GeneratorOptions { Sampling = SamplingOptions.Greedy });

        var logits = generator.Prefill(reference.PromptTokens).ToArray();
        float maxError = 0;
        foreach (var step in reference.Steps)
        {
            Assert.Equal(step.Logits.Length, logits.Length);
            Assert.True(step.ArgMax == SamplerChain.ArgMax(logits), $"{modelFile} step {step.Step}: argmax {SamplerChain.ArgMax(logits)}, reference {step.ArgMax}");
            Assert.Equal(step.Top5, Top5(logits));
            float stepError = 0;
            for (int i = 0; i < logits.Length; i++)
                stepError = Math.Max(stepError, Math.Abs(logits[i] - step.Logits[i]));
            output.WriteLine($"  step {step.Step}: {stepError:G4}");
            maxError = Math.Max(maxError, stepError);
            if (step.Step + 1 < reference.Steps.Length)
                logits = generator.Decode(reference.GeneratedTokens[step.Step]).ToArray();
        }
        output.WriteLine($"{modelFile}: max |Δlogit| {maxError:G4} over {reference.Steps.Length} steps (tolerance {tolerance})");
        Assert.True(maxError <= tolerance, $"{modelFile}: max |Δlogit| {maxError} > {tolerance}");
    }

    private static int[] Top5(float[] logits) =>
        Enumerable.Range(0, logits.Length).OrderByDescending(i => logits[i]).ThenBy(i => i).Take(5).ToArray();
}

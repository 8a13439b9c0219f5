using System.Runtime.InteropServices;
using ManagedLM.Gguf;
using ManagedLM.Kernels;
using ManagedLM.Synthesis;

namespace ManagedLM.Tests.Synthesis;

public class SyntheticWeightsTests
{
    /// <summary>Synthetic fixtures and the seed each was generated with (synthetic/README.md).</summary>
    public static readonly (string File, ulong Seed)[] Fixtures =
    [
        ("synthetic/synth-llama-Q4_K_M.gguf", 15),
        ("synthetic/synth-llama-Q6_K.gguf", 15),
        ("synthetic/synth-llama-Q4_0.gguf", 15),
        ("synthetic/synth-qwen2-Q4_K_M.gguf", 9),
        ("synthetic/synth-qwen3-Q4_K_M.gguf", 9),
        ("synthetic/synth-llama-tied-Q4_K_M.gguf", 3),
    ];

    /// <summary>The regenerated F32 values of a fixture tensor.</summary>
    public static float[] Regenerate(ulong seed, GgufTensorInfo tensor)
    {
        var (kind, std) = SyntheticWeights.ForTensor(tensor.Name);
        return SyntheticWeights.Generate(seed, tensor.Name, checked((int)tensor.ElementCount), kind, std);
    }

    [Fact]
    public void Every_F32_fixture_tensor_is_regenerated_bit_exactly()
    {
        int checkedTensors = 0;
        foreach (var (file, seed) in Fixtures)
        {
            using var gguf = GgufFile.Open(TestData.Model(file));
            foreach (var t in gguf.Tensors.Where(t => t.Type == GgmlType.F32))
            {
                float[] expected = MemoryMarshal.Cast<byte, float>(gguf.GetTensorData(t)).ToArray();
                float[] actual = Regenerate(seed, t);
                Assert.True(expected.AsSpan().SequenceEqual(actual), $"{file} {t.Name}");
                checkedTensors++;
            }
        }
        Assert.Equal(3 * 3 + 6 + 5 + 3, checkedTensors);
    }

    [Fact]
    public void Name_hash_is_fnv1a_64()
    {
        Assert.Equal(0xcbf29ce484222325UL, SyntheticWeights.NameHash(""));
        Assert.Equal(0xaf63dc4c8601ec8cUL, SyntheticWeights.NameHash("a"));
    }
}

using System.Numerics.Tensors;
using ManagedLM.Embeddings;
using ManagedLM.Gguf;
using ManagedLM.Model;
using ManagedLM.Quantization;
using ManagedLM.Synthesis;

namespace ManagedLM.Tests.Synthesis;

/// <summary>The encoder presets (all-minilm-l6, bge-small, bge-base) against the synth-bert fixture.</summary>
public class EncoderPresetTests
{
    /// <summary>Each encoder preset and the pooling its model card gives.</summary>
    public static TheoryData<string, PoolingType> Presets => new()
    {
        { "all-minilm-l6", PoolingType.Mean },
        { "bge-small", PoolingType.Cls },
        { "bge-base", PoolingType.Cls },
    };

    private static byte[] Synthesize(SynthesisSpec spec, LlamaFileType type)
    {
        using var stream = new MemoryStream();
        ModelSynthesizer.Write(spec, "synth-test", 5, new QuantizationOptions(type) { Threads = 2 }, ModelSynthesizerTests.FixtureTokenizer(spec), stream);
        return stream.ToArray();
    }

    [Theory]
    [MemberData(nameof(Presets))]
    public void Scaled_down_preset_loads_and_embeds_finite_unit_vectors(string presetName, PoolingType pooling)
    {
        var preset = SynthesisPreset.Get(presetName);
        Assert.Equal(SynthesisPreset.BertVocab, preset.VocabFile);
        // Two layers of 4 heads of 16, 64 wide, the vocabulary and positions kept.
        var spec = preset.Spec with { EmbeddingLength = 64, FeedForwardLength = 256, BlockCount = 2, HeadCount = 4, HeadCountKv = 4, HeadDim = 16 };
        using var model = TransformerModel.Load(Synthesize(spec, LlamaFileType.Q8_0));
        var c = model.Config;
        Assert.Equal(("bert", 64, 2, 4, 30522, pooling), (c.Architecture, c.EmbeddingLength, c.BlockCount, c.HeadCount, c.VocabSize, c.Pooling));

        using var embedder = model.CreateEmbedder();
        Assert.Equal((pooling, 64, 512), (embedder.Pooling, embedder.Dimensions, embedder.MaxTokens));
        string[] texts = ["a cat sat on the mat", "stock markets fell sharply today", "hello"];
        var vectors = embedder.Embed(texts);
        foreach (var v in vectors)
        {
            Assert.All(v, x => Assert.True(float.IsFinite(x)));
            Assert.Equal(1f, TensorPrimitives.Norm(v), 1e-5f);
        }
        Assert.True(vectors.Select(v => string.Join(',', v)).Distinct().Count() == texts.Length, "texts have distinct embeddings");
        Assert.True(TensorPrimitives.CosineSimilarity(vectors[0], vectors[1]) < 0.9999f);
    }

    [Theory]
    [MemberData(nameof(Presets))]
    public void Preset_tensors_and_keys_are_those_of_the_bert_fixture(string presetName, PoolingType pooling)
    {
        var preset = SynthesisPreset.Get(presetName);
        var f = ModelSynthesizerTests.SpecOf("synth-bert");
        var spec = preset.Spec with
        {
            EmbeddingLength = f.EmbeddingLength, FeedForwardLength = f.FeedForwardLength, BlockCount = f.BlockCount, HeadCount = f.HeadCount,
            HeadCountKv = f.HeadCountKv, HeadDim = f.HeadDim,
        };
        // What a real encoder has in common with the fixture: vocabulary, positions, epsilon.
        Assert.Equal((f.VocabSize, f.ContextLength, f.RmsNormEps), (spec.VocabSize, spec.ContextLength, spec.RmsNormEps));
        using var want = GgufFile.Open(TestData.Model("synthetic/synth-bert-Q8_0.gguf"));
        using var got = GgufFile.Parse(Synthesize(spec, LlamaFileType.Q8_0));

        Assert.Equal(want.Tensors.Select(t => $"{t.Name} {t.Type} [{string.Join(", ", t.Shape)}]"),
            got.Tensors.Select(t => $"{t.Name} {t.Type} [{string.Join(", ", t.Shape)}]"));
        Assert.Equal(want.Metadata.ToKeyValueList().Select(p => $"{p.Key} {p.Value.Type}"), got.Metadata.ToKeyValueList().Select(p => $"{p.Key} {p.Value.Type}"));
        Assert.True(got.Metadata.TryGetValue("bert.pooling_type", out var value));
        Assert.Equal((uint)pooling, value.Value);
    }

    [Fact]
    public void Presets_have_the_published_models_sizes()
    {
        // The Hugging Face parameter counts less the pooler (a dense layer of n_embd² + n_embd that GGUF files do not carry).
        long Parameters(string preset) => ModelSynthesizer.Tensors(SynthesisPreset.Get(preset).Spec).Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b));
        Assert.Equal(22_713_216 - (384 * 384 + 384), Parameters("all-minilm-l6"));   // all-MiniLM-L6-v2: 22.7M
        Assert.Equal(33_360_000 - (384 * 384 + 384), Parameters("bge-small"));       // bge-small-en-v1.5: 33.4M
        Assert.Equal(109_482_240 - (768 * 768 + 768), Parameters("bge-base"));       // bge-base-en-v1.5: 109M
    }
}

using ManagedLM.Generation;
using ManagedLM.Gguf;
using ManagedLM.Model;
using ManagedLM.Quantization;
using ManagedLM.Sampling;
using ManagedLM.Synthesis;

namespace ManagedLM.Tests.Synthesis;

/// <summary>The presets of the gemma2, gemma3, phi3, qwen3moe and granite families.</summary>
public class FamilyPresetTests
{
    /// <summary>Each new preset and the second-wave fixture of its family (../shared/models/synthetic).</summary>
    public static TheoryData<string, string, string> Presets => new()
    {
        { "gemma-2-2b", "synth-gemma2-Q8_0.gguf", "synth-gemma2" },
        { "gemma-3-1b", "synth-gemma3-Q8_0.gguf", "synth-gemma3" },
        { "phi-3.5-mini", "synth-phi3-longrope-Q8_0.gguf", "synth-phi-mini-longrope" },
        { "qwen3-moe-small", "synth-qwen3moe-Q8_0.gguf", "synth-qwen3moe" },
        { "granite-3-2b", "synth-granite-Q8_0.gguf", "synth-granite" },
    };

    private static readonly Lazy<List<KeyValuePair<string, GgufValue>>> Stories260KTokenizer = new(() =>
    {
        using var vocab = GgufFile.Open(TestData.Model("stories260K.gguf"));
        return ModelSynthesizer.TokenizerMetadata(vocab.Metadata);
    });

    private static byte[] Synthesize(SynthesisSpec spec, LlamaFileType type, IReadOnlyList<KeyValuePair<string, GgufValue>>? tokenizer = null)
    {
        using var stream = new MemoryStream();
        ModelSynthesizer.Write(spec, "synth-test", 5, new QuantizationOptions(type) { Threads = 2 }, tokenizer ?? Stories260KTokenizer.Value, stream);
        return stream.ToArray();
    }

    // The preset at 256 wide, 4 heads of 64, 512 tokens: two blocks (gemma3: six, so that its sixth is global), 8 experts
    // of 64 (2 used), a window of 8.
    private static SynthesisSpec ScaledDown(SynthesisPreset preset, int vocab = 512)
    {
        var s = preset.Spec;
        return new SynthesisOverrides
        {
            EmbeddingLength = 256, FeedForwardLength = s.ExpertCount > 0 ? 128 : 512, BlockCount = s.Architecture == "gemma3" ? 6 : 2,
            HeadCount = 4, HeadCountKv = 4 * s.HeadCountKv / s.HeadCount, HeadDim = 64, VocabSize = vocab,
            SlidingWindow = s.SlidingWindow > 0 ? 8 : null,
            ExpertCount = s.ExpertCount > 0 ? 8 : null, ExpertUsedCount = s.ExpertCount > 0 ? 2 : null, ExpertFeedForwardLength = s.ExpertCount > 0 ? 64 : null,
        }.ApplyTo(s);
    }

    // The preset with its fixture's dimensions: what must then differ from the fixture is only what the real model does
    // differently. Granite 3 ties its embeddings, the fixture does not (llama.cpp's granite loader takes both).
    private static SynthesisSpec AtFixtureDimensions(SynthesisPreset preset, SynthesisSpec f) => preset.Spec with
    {
        TiedEmbeddings = f.TiedEmbeddings,
        EmbeddingLength = f.EmbeddingLength, FeedForwardLength = f.FeedForwardLength, BlockCount = f.BlockCount, HeadCount = f.HeadCount,
        HeadCountKv = f.HeadCountKv, HeadDim = f.HeadDim, VocabSize = f.VocabSize, RopeDimensions = f.RopeDimensions,
        LongRope = preset.Spec.LongRope?.Resized(f.RotaryDimensions / 2), SlidingWindow = preset.Spec.SlidingWindow > 0 ? f.SlidingWindow : 0,
        ExpertCount = f.ExpertCount, ExpertUsedCount = f.ExpertUsedCount, ExpertFeedForwardLength = f.ExpertFeedForwardLength,
    };

    [Theory]
    [MemberData(nameof(Presets))]
    public void Scaled_down_preset_loads_and_generates_finite_logits(string presetName, string fixtureFile, string fixtureName)
    {
        _ = (fixtureFile, fixtureName);
        var preset = SynthesisPreset.Get(presetName);
        var spec = ScaledDown(preset);
        using var model = TransformerModel.Load(Synthesize(spec, LlamaFileType.Q4_K_M));
        var c = model.Config;
        Assert.Equal((preset.Spec.Architecture, 256, spec.BlockCount, 4, 64, 512), (c.Architecture, c.EmbeddingLength, c.BlockCount, c.HeadCount, c.HeadDim, c.VocabSize));
        Assert.Equal(spec.SlidingWindow, c.Architecture == "phi3" ? spec.SlidingWindow : c.SlidingWindow);
        Assert.Equal((spec.ExpertCount, spec.ExpertUsedCount), (c.ExpertCount, c.ExpertUsedCount));
        if (preset.Spec.LongRope is not null)
            Assert.Equal(32, model.Weights.RopeLongFactors.Length);

        using var g = model.CreateGenerator(new GeneratorOptions { Threads = 1, ContextLength = 48, Sampling = SamplingOptions.Greedy });
        var result = g.Complete([1, 403, 407, 261, 378, 432, 383, 286, 261, 403, 407, 261], new GenerationOptions { MaxTokens = 12 });
        Assert.Equal(12, result.GeneratedTokens.Length);
        Assert.All(g.Logits.ToArray(), v => Assert.True(float.IsFinite(v)));
        Assert.True(g.Logits.ToArray().Distinct().Count() > 100, "logits vary over the vocabulary");
    }

    [Theory]
    [MemberData(nameof(Presets))]
    public void Preset_tensors_and_keys_are_those_of_its_familys_fixture(string presetName, string fixtureFile, string fixtureName)
    {
        var preset = SynthesisPreset.Get(presetName);
        var spec = AtFixtureDimensions(preset, ModelSynthesizerTests.SpecOf(fixtureName));
        using var want = GgufFile.Open(TestData.Model("synthetic/" + fixtureFile));
        using var got = GgufFile.Parse(Synthesize(spec, LlamaFileType.Q8_0));

        // Names, types and shapes of every tensor (llama.cpp's create_tensor checks each shape), blocks included.
        Assert.Equal(want.Tensors.Select(t => $"{t.Name} {t.Type} [{string.Join(", ", t.Shape)}]"),
            got.Tensors.Select(t => $"{t.Name} {t.Type} [{string.Join(", ", t.Shape)}]"));

        // Keys and their GGUF types (llama.cpp refuses a key of another type). Gemma 3 1B has no RoPE scaling; the
        // fixture has Gemma 3 4B+'s linear ×8.
        string[] onlyInFixture = presetName == "gemma-3-1b" ? ["gemma3.rope.scaling.type", "gemma3.rope.scaling.factor"] : [];
        Assert.Equal(want.Metadata.ToKeyValueList().Where(p => !onlyInFixture.Contains(p.Key)).Select(p => $"{p.Key} {p.Value.Type}"),
            got.Metadata.ToKeyValueList().Select(p => $"{p.Key} {p.Value.Type}"));
    }

    [Fact]
    public void Presets_have_the_published_models_sizes()
    {
        long Parameters(string preset) => ModelSynthesizer.Tensors(SynthesisPreset.Get(preset).Spec).Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b));
        Assert.Equal(2_614_341_888, Parameters("gemma-2-2b"));      // Gemma 2 2B: 2.61B
        Assert.Equal(999_885_952, Parameters("gemma-3-1b"));        // Gemma 3 1B: 1.0B
        Assert.Equal(3_821_079_648, Parameters("phi-3.5-mini"));    // Phi-3.5-mini: 3.8B
        Assert.Equal(2_533_531_648, Parameters("granite-3-2b"));    // Granite 3.0 2B: 2.5B
        var moe = SynthesisPreset.Get("qwen3-moe-small").Spec;
        Assert.Equal((64, 8, 512, 4096), (moe.ExpertCount, moe.ExpertUsedCount, moe.ExpertFeedForwardLength, moe.FeedForwardLength));
        Assert.Contains(ModelSynthesizer.Tensors(moe), t => t.Name == "blk.11.ffn_down_exps.weight" && t.Shape.SequenceEqual([512L, 1024, 64]));
    }

    [Fact]
    public void Phi_3_5_mini_writes_its_longrope_factors_and_attention_factor()
    {
        var spec = SynthesisPreset.Get("phi-3.5-mini").Spec;
        var lr = spec.LongRope!;
        Assert.Equal(48, lr.LongFactors.Length);
        Assert.Equal(1.08, lr.LongFactors[0], 1e-6);
        Assert.Equal(64.84, lr.LongFactors[^1], 1e-5);
        Assert.Equal(1.0, lr.ShortFactors[0]);
        Assert.Equal(2.84, lr.ShortFactors[^1], 1e-5);
        Assert.Equal(1.1902381f, lr.AttentionFactor, 6);   // √(1 + ln 32 / ln 4096), as in Phi-3.5-mini's GGUF files
        var keys = ModelSynthesizer.Metadata(spec, "p", Phi3Tokenizer.Value, LlamaFileType.Q4_K_M).ToDictionary(p => p.Key, p => p.Value.Value);
        Assert.Equal(4096u, keys["phi3.rope.scaling.original_context_length"]);
        Assert.Equal(96u, keys["phi3.rope.dimension_count"]);
        Assert.Equal(262144u, keys["phi3.attention.sliding_window"]);
        Assert.Contains(ModelSynthesizer.Tensors(spec), t => t.Name == "blk.31.attn_qkv.weight" && t.Shape.SequenceEqual([3072L, 9216]));
        Assert.Contains(ModelSynthesizer.Tensors(spec), t => t.Name == "blk.31.ffn_up.weight" && t.Shape.SequenceEqual([3072L, 16384]));
    }

    private static readonly Lazy<List<KeyValuePair<string, GgufValue>>> Phi3Tokenizer = new(() =>
    {
        using var vocab = GgufFile.OpenOrUnzip(TestData.Model(SynthesisPreset.Phi3Vocab));
        return ModelSynthesizer.TokenizerMetadata(vocab.Metadata);
    });

    [Fact]
    public void Gemma_presets_write_their_windows_soft_caps_and_rope_bases()
    {
        var g2 = ModelSynthesizer.Metadata(SynthesisPreset.Get("gemma-2-2b").Spec with { VocabSize = 512 }, "g", Stories260KTokenizer.Value, LlamaFileType.Q4_K_M)
            .ToDictionary(p => p.Key, p => p.Value.Value);
        Assert.Equal((4096u, 50f, 30f, 256u), (g2["gemma2.attention.sliding_window"], g2["gemma2.attn_logit_softcapping"], g2["gemma2.final_logit_softcapping"],
            g2["gemma2.attention.key_length"]));
        var g3 = ModelSynthesizer.Metadata(SynthesisPreset.Get("gemma-3-1b").Spec with { VocabSize = 512 }, "g", Stories260KTokenizer.Value, LlamaFileType.Q4_K_M)
            .ToDictionary(p => p.Key, p => p.Value.Value);
        Assert.Equal((512u, 6u, 1e6f, 10000f), (g3["gemma3.attention.sliding_window"], g3["gemma3.attention.sliding_window_pattern"], g3["gemma3.rope.freq_base"],
            g3["gemma3.rope.freq_base_swa"]));
        Assert.False(g3.ContainsKey("gemma3.final_logit_softcapping"));
    }

    [Fact]
    public void A_padded_vocabulary_loads_and_keeps_the_donors_tokens()
    {
        var padded = SyntheticVocabulary.Pad(Stories260KTokenizer.Value, 640);
        var tokens = padded.Single(p => p.Key == "tokenizer.ggml.tokens").Value.AsArray!.AsSpan<string>().ToArray();
        var types = padded.Single(p => p.Key == "tokenizer.ggml.token_type").Value.AsArray!.AsSpan<int>().ToArray();
        var scores = padded.Single(p => p.Key == "tokenizer.ggml.scores").Value.AsArray!.AsSpan<float>().ToArray();
        Assert.Equal(640, tokens.Length);
        Assert.Equal(640, tokens.Distinct().Count());
        Assert.Equal("<unused0>", tokens[512]);
        Assert.Equal("<unused127>", tokens[^1]);
        Assert.All(types[512..], t => Assert.Equal(SyntheticVocabulary.AddedTokenType, t));
        Assert.All(scores[512..], s => Assert.True(s < scores[..512].Min()));
        Assert.Equal(Stories260KTokenizer.Value.Select(p => p.Key), padded.Select(p => p.Key));
        Assert.Same(Stories260KTokenizer.Value.Single(p => p.Key == "tokenizer.ggml.model").Value, padded.Single(p => p.Key == "tokenizer.ggml.model").Value);

        var spec = ScaledDown(SynthesisPreset.Get("gemma-2-2b"), vocab: 640);
        using var model = TransformerModel.Load(Synthesize(spec, LlamaFileType.Q8_0, padded));
        Assert.Equal(640, model.Config.VocabSize);
        using (var stories = TransformerModel.Load(TestData.Model("stories260K.gguf")))
            Assert.Equal(stories.Tokenizer.Encode("Once upon a time"), model.Tokenizer.Encode("Once upon a time"));
        using var g = model.CreateGenerator(new GeneratorOptions { Threads = 1, ContextLength = 16, Sampling = SamplingOptions.Greedy });
        Assert.Equal(4, g.Complete([1, 403, 407, 261], new GenerationOptions { MaxTokens = 4 }).GeneratedTokens.Length);
        Assert.Equal(640, g.Logits.Length);
    }

    [Fact]
    public void Padding_a_full_vocabulary_changes_nothing_and_a_larger_one_is_an_error()
    {
        Assert.Equal(Stories260KTokenizer.Value, SyntheticVocabulary.Pad(Stories260KTokenizer.Value, 512));
        var e = Assert.Throws<ArgumentException>(() => SyntheticVocabulary.Pad(Stories260KTokenizer.Value, 500));
        Assert.Contains("512 tokens, more than the model's 500", e.Message);
    }

    [Fact]
    public void Family_features_are_checked()
    {
        void Rejected(SynthesisSpec spec, string message) => Assert.Contains(message, Assert.Throws<ArgumentException>(spec.Validate).Message);
        Rejected(SynthesisSpec.Tiny with { AttentionSoftCap = 30 }, "for gemma2 models, not llama");
        Rejected(SynthesisSpec.Tiny with { ExpertCount = 8, ExpertUsedCount = 2, ExpertFeedForwardLength = 64 }, "for qwen3moe models");
        Rejected(SynthesisSpec.TinyOf("qwen3moe") with { ExpertUsedCount = 9 }, "1 to that many used");
        Rejected(SynthesisSpec.TinyOf("gemma2") with { SlidingWindow = 0 }, "needs a sliding window");
        Rejected(SynthesisSpec.TinyOf("gemma2") with { TiedEmbeddings = false }, "tied embeddings");
        Rejected(SynthesisSpec.TinyOf("phi3") with { LongRope = LongRopeScaling.Ramp(24, 1f) }, "needs 32 long and short factors");
        Rejected(SynthesisSpec.TinyOf("phi3") with { RopeDimensions = 66 }, "RoPE dimensions must be even and in [2, head dim 64]");
        Rejected(SynthesisSpec.TinyOf("granite") with { LogitScale = 0 }, "logit scale must be positive");
        foreach (string arch in SynthesisSpec.Architectures)
            SynthesisSpec.TinyOf(arch).Validate();
    }

    [Fact]
    public void Scaling_the_head_scales_partial_rotary_dimensions_and_resamples_longrope()
    {
        var fixture = ModelSynthesizerTests.SpecOf("synth-phi-mini-longrope");
        var wider = new SynthesisOverrides { HeadDim = 128 }.ApplyTo(fixture);
        Assert.Equal(96, wider.RopeDimensions);
        Assert.Equal(48, wider.LongRope!.LongFactors.Length);
        Assert.Equal(fixture.LongRope!.LongFactors[0], wider.LongRope.LongFactors[0]);
        Assert.Equal(fixture.LongRope.LongFactors[^1], wider.LongRope.LongFactors[^1]);
        Assert.True(wider.LongRope.LongFactors.Zip(wider.LongRope.LongFactors.Skip(1)).All(p => p.First <= p.Second));
        wider.Validate();
    }
}

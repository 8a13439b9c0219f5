using ManagedLM.Generation;
using ManagedLM.Gguf;
using ManagedLM.Kernels;
using ManagedLM.Model;
using ManagedLM.Quantization;
using ManagedLM.Sampling;
using ManagedLM.Synthesis;

namespace ManagedLM.Tests.Synthesis;

public class ModelSynthesizerTests
{
    /// <summary>The synthetic fixtures' dimensions (synthetic/README.md), with the stories260K vocabulary.</summary>
    public static SynthesisSpec FixtureSpec(string arch, bool tied = false, float ropeBase = 500000f) => new()
    {
        Architecture = arch, EmbeddingLength = 256, FeedForwardLength = 256, BlockCount = 1, HeadCount = 4,
        HeadCountKv = arch == "qwen3" ? 1 : 2, HeadDim = arch == "qwen3" ? 128 : 64, VocabSize = 512, ContextLength = 256,
        RopeFreqBase = ropeBase, RmsNormEps = arch == "llama" ? 1e-5f : 1e-6f, TiedEmbeddings = tied,
    };

    public static TheoryData<string, string, ulong, LlamaFileType> Fixtures => new()
    {
        { "synth-llama-Q4_K_M.gguf", "synth-llama", 15, LlamaFileType.Q4_K_M },
        { "synth-llama-Q6_K.gguf", "synth-llama", 15, LlamaFileType.Q6_K },
        { "synth-llama-Q4_0.gguf", "synth-llama", 15, LlamaFileType.Q4_0 },
        { "synth-llama-tied-Q4_K_M.gguf", "synth-llama-tied", 3, LlamaFileType.Q4_K_M },
        { "synth-qwen2-Q4_K_M.gguf", "synth-qwen2", 9, LlamaFileType.Q4_K_M },
        { "synth-qwen3-Q4_K_M.gguf", "synth-qwen3", 9, LlamaFileType.Q4_K_M },
        { "synth-gemma2-Q8_0.gguf", "synth-gemma2", 39, LlamaFileType.Q8_0 },
        { "synth-gemma3-Q8_0.gguf", "synth-gemma3", 33, LlamaFileType.Q8_0 },
        { "synth-phi3-Q8_0.gguf", "synth-phi-mini", 43, LlamaFileType.Q8_0 },
        { "synth-phi3-longrope-Q8_0.gguf", "synth-phi-mini-longrope", 67, LlamaFileType.Q8_0 },
        { "synth-qwen3moe-Q8_0.gguf", "synth-qwen3moe", 45, LlamaFileType.Q8_0 },
        { "synth-granite-Q8_0.gguf", "synth-granite", 76, LlamaFileType.Q8_0 },
        { "synth-bert-Q8_0.gguf", "synth-bert", 25, LlamaFileType.Q8_0 },
    };

    /// <summary>The spec of a fixture by its general.name (the second wave's: each family's tiny shape, with its post-norms at 32×).</summary>
    public static SynthesisSpec SpecOf(string name) => name switch
    {
        "synth-llama" => FixtureSpec("llama"),
        "synth-llama-tied" => FixtureSpec("llama", tied: true, ropeBase: 10000f),
        "synth-qwen2" => FixtureSpec("qwen2", tied: true, ropeBase: 1000000f),
        "synth-qwen3" => FixtureSpec("qwen3", tied: true, ropeBase: 1000000f),
        "synth-gemma2" => SynthesisSpec.TinyOf("gemma2") with { PostNormScale = 32 },
        "synth-gemma3" => SynthesisSpec.TinyOf("gemma3") with { PostNormScale = 32 },
        "synth-phi-mini" => SynthesisSpec.TinyOf("phi3"),
        "synth-phi-mini-longrope" => SynthesisSpec.TinyOf("phi3") with
        {
            HeadCountKv = 2, ContextLength = 2048, RopeDimensions = 48, RopeOriginalContextLength = 128,
            LongRope = LongRopeScaling.Ramp(24, LongRopeScaling.AttentionFactorFor(2048, 128)),
        },
        "synth-qwen3moe" => SynthesisSpec.TinyOf("qwen3moe"),
        "synth-granite" => SynthesisSpec.TinyOf("granite"),
        "synth-bert" => SynthesisSpec.TinyOf("bert"),
        _ => throw new ArgumentException(name),
    };

    private static readonly Lazy<List<KeyValuePair<string, GgufValue>>> Stories260KTokenizer = new(() =>
    {
        using var vocab = GgufFile.Open(TestData.Model("stories260K.gguf"));
        return ModelSynthesizer.TokenizerMetadata(vocab.Metadata);
    });

    private static readonly Lazy<List<KeyValuePair<string, GgufValue>>> BertTokenizer = new(() =>
    {
        using var vocab = GgufFile.Parse(TestData.ReadBytes(TestData.Model(SynthesisPreset.BertVocab)));
        return ModelSynthesizer.TokenizerMetadata(vocab.Metadata);
    });

    /// <summary>The fixtures' vocabulary of a spec: stories260K's 512 tokens, or BERT's WordPiece one for an encoder.</summary>
    public static List<KeyValuePair<string, GgufValue>> FixtureTokenizer(SynthesisSpec spec) => spec.Encoder ? BertTokenizer.Value : Stories260KTokenizer.Value;

    public static byte[] Synthesize(SynthesisSpec spec, string name, ulong seed, LlamaFileType type, int threads = 2)
    {
        using var stream = new MemoryStream();
        ModelSynthesizer.Write(spec, name, seed, new QuantizationOptions(type) { Threads = threads }, FixtureTokenizer(spec), stream);
        return stream.ToArray();
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Fixture_dimensions_seed_and_type_reproduce_the_fixture_byte_for_byte(string file, string name, ulong seed, LlamaFileType type)
    {
        byte[] expected = File.ReadAllBytes(TestData.Model("synthetic/" + file));
        byte[] actual = Synthesize(SpecOf(name), name, seed, type);

        using var want = GgufFile.Parse(expected);
        using var got = GgufFile.Parse(actual);
        Assert.Equal(want.Tensors.Select(t => t.ToString()), got.Tensors.Select(t => t.ToString()));
        foreach (var t in want.Tensors)
        {
            var data = got.GetTensorData(got.GetTensor(t.Name));
            int same = want.GetTensorData(t).CommonPrefixLength(data);
            Assert.True(same == t.ByteSize, $"{file} {t.Name} ({t.Type}): first differing byte {same} of {t.ByteSize}");
        }
        Assert.Equal(want.Metadata.Keys, got.Metadata.Keys);
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Output_does_not_depend_on_threads_and_differs_by_seed()
    {
        var spec = FixtureSpec("llama") with { BlockCount = 2 };
        byte[] first = Synthesize(spec, "m", 7, LlamaFileType.Q4_K_M, threads: 1);
        Assert.Equal(first, Synthesize(spec, "m", 7, LlamaFileType.Q4_K_M, threads: 2));
        Assert.NotEqual(first, Synthesize(spec, "m", 8, LlamaFileType.Q4_K_M, threads: 2));
    }

    [Fact]
    public void Tensors_longer_than_a_chunk_are_streamed_with_the_same_values()
    {
        // token_embd of 256 x 20000 spans two chunks of QuantizingWriter.ChunkElements.
        var spec = FixtureSpec("llama") with { VocabSize = 20000, TiedEmbeddings = true };
        var tokenizer = SyntheticVocabulary(20000);
        using var stream = new MemoryStream();
        ModelSynthesizer.Write(spec, "big", 5, new QuantizationOptions(LlamaFileType.F32) { Threads = 1 }, tokenizer, stream);
        using var gguf = GgufFile.Parse(stream.ToArray());
        var embd = gguf.GetTensor("token_embd.weight");
        Assert.True(embd.ElementCount > QuantizingWriter.ChunkElements);
        float[] expected = SyntheticWeights.Generate(5, embd.Name, (int)embd.ElementCount, SyntheticTensorKind.Matrix, 0.1);
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(gguf.GetTensorData(embd)).SequenceEqual(expected));
    }

    [Fact]
    public void A_synthesized_two_layer_model_loads_and_generates()
    {
        string path = Path.Combine(Path.GetTempPath(), $"managedlm-synth-{Guid.NewGuid():N}.gguf");
        try
        {
            var spec = FixtureSpec("llama") with { BlockCount = 2 };
            var summary = ModelSynthesizer.WriteFile(spec, "synth-2l", 11, new QuantizationOptions(LlamaFileType.Q4_K_M),
                Stories260KTokenizer.Value, path);
            Assert.Equal(new FileInfo(path).Length, summary.FileBytes);
            Assert.Equal(2 * 256 * 512 + 2 * (256 * 256 * 5 + 256 * 128 * 2 + 256 * 2) + 256, summary.Parameters);

            using var model = TransformerModel.Load(path);
            Assert.Equal(2, model.Config.BlockCount);
            Assert.Equal(512, model.Config.VocabSize);
            using var g = model.CreateGenerator(new GeneratorOptions { Threads = 1, ContextLength = 32, Sampling = SamplingOptions.Greedy });
            var result = g.Complete([1, 403, 407, 261, 378], new GenerationOptions { MaxTokens = 8 });
            Assert.Equal(8, result.GeneratedTokens.Length);
            Assert.All(result.GeneratedTokens, t => Assert.InRange(t, 0, 511));
            Assert.All(g.Logits.ToArray(), v => Assert.True(float.IsFinite(v)));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Stories15m_preset_has_the_llama2c_dimensions()
    {
        var preset = SynthesisPreset.Get("stories15m");
        var s = preset.Spec;
        Assert.Equal(("llama", 288, 768, 6, 6, 6, 48, 32000, 256), (s.Architecture, s.EmbeddingLength, s.FeedForwardLength, s.BlockCount,
            s.HeadCount, s.HeadCountKv, s.HeadDim, s.VocabSize, s.ContextLength));
        Assert.True(s.TiedEmbeddings);
        Assert.Equal(SynthesisPreset.LlamaSpmVocab, preset.VocabFile);
        var tensors = ModelSynthesizer.Tensors(s);
        Assert.Equal(2 + 6 * 9, tensors.Count);
        Assert.Equal(15_191_712, tensors.Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b)));
        Assert.Equal([768L, 288], tensors.Single(t => t.Name == "blk.5.ffn_down.weight").Shape);
    }

    [Fact]
    public void Every_preset_has_a_vocabulary_of_its_size()
    {
        foreach (var preset in SynthesisPreset.All)
        {
            preset.Spec.Validate();
            using var vocab = GgufFile.OpenOrUnzip(TestData.Model(preset.VocabFile));
            var tokenizer = ModelSynthesizer.TokenizerMetadata(vocab.Metadata);
            int donor = vocab.Metadata.GetArray<string>("tokenizer.ggml.tokens").Length;
            Assert.True(preset.PadVocabulary ? donor < preset.Spec.VocabSize : donor == preset.Spec.VocabSize, preset.Name);
            if (preset.PadVocabulary)
                tokenizer = ManagedLM.Synthesis.SyntheticVocabulary.Pad(tokenizer, preset.Spec.VocabSize);
            ModelSynthesizer.Metadata(preset.Spec, preset.Name, tokenizer, LlamaFileType.Q4_K_M);
        }
    }

    [Fact]
    public void Llama_3_2_preset_writes_rope_frequency_factors()
    {
        var s = SynthesisPreset.Get("llama-3.2-1b").Spec;
        float[] f = s.RopeScaling!.Factors(s.HeadDim, s.RopeFreqBase);
        Assert.Equal(32, f.Length);
        Assert.Equal(1f, f[0]);
        Assert.Equal(32f, f[^1]);
        Assert.True(f.Zip(f.Skip(1)).All(p => p.First <= p.Second));
        Assert.Contains(ModelSynthesizer.Tensors(s), t => t.Name == "rope_freqs.weight" && t.Shape.SequenceEqual([32L]));
        Assert.DoesNotContain(ModelSynthesizer.Tensors(s), t => t.Name == "output.weight");
    }

    [Fact]
    public void Qwen3_metadata_has_key_and_value_lengths_and_llama_has_vocab_size()
    {
        var qwen3 = ModelSynthesizer.Metadata(FixtureSpec("qwen3", tied: true), "q", Stories260KTokenizer.Value, LlamaFileType.Q8_0);
        Assert.Equal(128u, qwen3.Single(p => p.Key == "qwen3.attention.key_length").Value.Value);
        Assert.DoesNotContain(qwen3, p => p.Key.EndsWith(".vocab_size", StringComparison.Ordinal));
        var llama = ModelSynthesizer.Metadata(FixtureSpec("llama"), "l", Stories260KTokenizer.Value, LlamaFileType.Q8_0);
        Assert.Equal(512u, llama.Single(p => p.Key == "llama.vocab_size").Value.Value);
        Assert.Equal(["general.quantization_version", "general.file_type"], llama.TakeLast(2).Select(p => p.Key));
        Assert.Equal(7u, llama[^1].Value.Value);
    }

    [Fact]
    public void A_vocabulary_of_another_size_is_rejected()
    {
        var spec = FixtureSpec("llama") with { VocabSize = 1000 };
        var e = Assert.Throws<ArgumentException>(() => ModelSynthesizer.Metadata(spec, "x", Stories260KTokenizer.Value, LlamaFileType.F16));
        Assert.Contains("512 tokens", e.Message);
    }

    [Fact]
    public void Invalid_dimensions_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => ModelSynthesizer.Tensors(FixtureSpec("llama") with { HeadCountKv = 3 }));
        Assert.Throws<ArgumentException>(() => ModelSynthesizer.Tensors(FixtureSpec("gpt2")));
        Assert.Throws<ArgumentException>(() => ModelSynthesizer.Tensors(FixtureSpec("llama") with { BlockCount = 0 }));
    }

    // A vocabulary of n distinct tokens for shapes that no shared vocabulary has.
    private static List<KeyValuePair<string, GgufValue>> SyntheticVocabulary(int n) =>
    [
        KeyValuePair.Create("tokenizer.ggml.model", GgufValue.Of("llama")),
        KeyValuePair.Create("tokenizer.ggml.tokens", GgufValue.Of(GgufArray.Of(Enumerable.Range(0, n).Select(i => $"t{i}").ToArray()))),
    ];
}

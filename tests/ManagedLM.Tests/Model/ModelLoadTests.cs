using ManagedLM.Generation;
using ManagedLM.Gguf;
using ManagedLM.Kernels;
using ManagedLM.Model;

namespace ManagedLM.Tests.Model;

/// <summary>What loading accepts and rejects: variants of the shared files written to a temporary folder.</summary>
public sealed class ModelLoadTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("managedlm-load-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // A copy of a shared model with metadata edited by `edit` and tensors re-declared by `retype`.
    private string Variant(string source, Action<List<KeyValuePair<string, GgufValue>>> edit,
        Func<GgufTensorInfo, GgufTensorSpec>? retype = null)
    {
        using var file = GgufFile.Open(TestData.Model(source));
        var metadata = file.Metadata.ToKeyValueList();
        edit(metadata);
        var tensors = file.Tensors.Select(t =>
        {
            var spec = retype?.Invoke(t) ?? GgufTensorSpec.From(t);
            byte[] data = spec.Type == t.Type ? file.GetTensorData(t).ToArray()
                : new byte[GgmlTypes.RowBytes(spec.Type, t.ElementCount)];
            return (spec, data);
        }).ToList();
        string path = Path.Combine(_dir, Guid.NewGuid().ToString("N") + ".gguf");
        File.WriteAllBytes(path, GgufWriter.ToBytes(metadata, tensors));
        return path;
    }

    private static void Set(List<KeyValuePair<string, GgufValue>> m, string key, GgufValue value) => ModelBytes.Set(m, key, value);

    [Fact]
    public void Config_of_stories260K()
    {
        using var model = TransformerModel.Load(TestData.Model("stories260K.gguf"));
        var c = model.Config;
        Assert.Equal(("llama", 64, 172, 5, 8, 4, 8, 512), (c.Architecture, c.EmbeddingLength, c.FeedForwardLength, c.BlockCount, c.HeadCount, c.KvHeadCount, c.HeadDim, c.VocabSize));
        Assert.Equal(RopeLayout.Normal, c.RopeLayout);
        Assert.Equal(1e-5f, c.RmsNormEps);
        Assert.False(model.Weights.TiedEmbeddings);
        Assert.Equal(512, model.Tokenizer.VocabSize);
    }

    [Fact]
    public void Qwen3_head_dim_and_tied_embeddings_come_from_the_file()
    {
        using var model = TransformerModel.Load(TestData.Model("synthetic/synth-qwen3-Q4_K_M.gguf"));
        Assert.Equal(128, model.Config.HeadDim);
        Assert.Equal(512, model.Config.QueryLength);
        Assert.Equal(RopeLayout.NeoX, model.Config.RopeLayout);
        Assert.True(model.Weights.TiedEmbeddings);
        Assert.False(model.Weights.Layers[0].QueryNorm.IsEmpty);
    }

    [Fact]
    public void Unsupported_architecture_is_named()
    {
        string path = Variant("stories260K.gguf", m => Set(m, "general.architecture", GgufValue.Of("gpt2")));
        var ex = Assert.Throws<NotSupportedException>(() => TransformerModel.Load(path));
        Assert.Contains("\"gpt2\"", ex.Message);
        Assert.Contains("llama", ex.Message);
    }

    [Fact]
    public void Unsupported_tensor_type_names_the_tensor_and_the_type()
    {
        string path = Variant("synthetic/synth-llama-Q4_K_M.gguf", _ => { },
            t => t.Name == "blk.0.attn_q.weight" ? new GgufTensorSpec(t.Name, GgmlType.TQ2_0, t.Shape) : GgufTensorSpec.From(t));
        var ex = Assert.Throws<NotSupportedException>(() => TransformerModel.Load(path));
        Assert.Contains("blk.0.attn_q.weight", ex.Message);
        Assert.Contains("TQ2_0", ex.Message);
    }

    [Fact]
    public void Missing_key_or_tensor_is_a_format_error_naming_it()
    {
        string noLayers = Variant("stories260K.gguf", m => m.RemoveAll(kv => kv.Key == "llama.block_count"));
        Assert.Contains("llama.block_count", Assert.Throws<GgufFormatException>(() => TransformerModel.Load(noLayers)).Message);

        string moreLayers = Variant("stories260K.gguf", m => Set(m, "llama.block_count", GgufValue.Of(6u)));
        Assert.Contains("\"llama.block_count\" = 6, but the file has no tensors for block 5 (no \"blk.5.\" names; it has 5 blocks)",
            Assert.Throws<GgufFormatException>(() => TransformerModel.Load(moreLayers)).Message);

        string wrongWidth = Variant("stories260K.gguf", m => Set(m, "llama.feed_forward_length", GgufValue.Of(128u)));
        var ex = Assert.Throws<GgufFormatException>(() => TransformerModel.Load(wrongWidth));
        Assert.Contains("ffn_gate", ex.Message);
        Assert.Contains("[64, 128]", ex.Message);
    }

    [Fact]
    public void Linear_rope_scaling_scales_positions_and_an_unknown_scaling_is_refused()
    {
        string linear = Variant("stories260K.gguf", m =>
        {
            Set(m, "llama.rope.scaling.type", GgufValue.Of("linear"));
            Set(m, "llama.rope.scaling.factor", GgufValue.Of(4f));
        });
        using (var model = TransformerModel.Load(linear))
            Assert.Equal(0.25f, model.Config.RopePositionScale);

        string unknown = Variant("stories260K.gguf", m => Set(m, "llama.rope.scaling.type", GgufValue.Of("ntk-by-parts")));
        Assert.Contains("ntk-by-parts", Assert.Throws<NotSupportedException>(() => TransformerModel.Load(unknown)).Message);
        // YaRN needs the context the model was trained for.
        string yarn = Variant("stories260K.gguf", m => Set(m, "llama.rope.scaling.type", GgufValue.Of("yarn")));
        Assert.Contains("original_context_length", Assert.Throws<GgufFormatException>(() => TransformerModel.Load(yarn)).Message);
    }

    [Fact]
    public void Scaled_positions_change_the_logits_only_past_position_zero()
    {
        string linear = Variant("stories260K.gguf", m =>
        {
            Set(m, "llama.rope.scaling.type", GgufValue.Of("linear"));
            Set(m, "llama.rope.scaling.factor", GgufValue.Of(2f));
        });
        using var plain = TransformerModel.Load(TestData.Model("stories260K.gguf"));
        using var scaled = TransformerModel.Load(linear);
        using var a = plain.CreateGenerator();
        using var b = scaled.CreateGenerator();
        Assert.Equal(a.Prefill([1]).ToArray(), b.Prefill([1]).ToArray());
        Assert.NotEqual(a.Step(403).ToArray(), b.Step(403).ToArray());
    }

    public static TheoryData<string, GgufValue, string> PoisonousHyperParameters => new()
    {
        { "llama.attention.layer_norm_rms_epsilon", GgufValue.Of(float.NaN), "\"llama.attention.layer_norm_rms_epsilon\" = NaN: it must be a positive finite number" },
        { "llama.attention.layer_norm_rms_epsilon", GgufValue.Of(float.PositiveInfinity), "\"llama.attention.layer_norm_rms_epsilon\" = Infinity: it must be a positive finite number" },
        { "llama.attention.layer_norm_rms_epsilon", GgufValue.Of(-1e-5f), "\"llama.attention.layer_norm_rms_epsilon\" = -1E-05: it must be a positive finite number" },
        { "llama.attention.layer_norm_rms_epsilon", GgufValue.Of(0f), "\"llama.attention.layer_norm_rms_epsilon\" = 0: it must be a positive finite number" },
        { "llama.rope.freq_base", GgufValue.Of(double.NaN), "\"llama.rope.freq_base\" = NaN: it must be a positive finite number" },
        { "llama.rope.freq_base", GgufValue.Of(float.NegativeInfinity), "\"llama.rope.freq_base\" = -Infinity: it must be a positive finite number" },
        { "llama.rope.freq_base", GgufValue.Of(-10000f), "\"llama.rope.freq_base\" = -10000: it must be a positive finite number" },
        { "llama.rope.scaling.factor", GgufValue.Of(float.NaN), "\"llama.rope.scaling.factor\" = NaN: it must be a finite number ≥ 0 (0: no scaling)" },
        { "llama.rope.scaling.factor", GgufValue.Of(-2f), "\"llama.rope.scaling.factor\" = -2: it must be a finite number ≥ 0 (0: no scaling)" },
        { "llama.rope.scaling.factor", GgufValue.Of(float.Epsilon), "\"llama.rope.scaling.factor\" = 1E-45: so small that 1 / factor overflows" },
        { "llama.rope.scale_linear", GgufValue.Of(float.PositiveInfinity), "\"llama.rope.scale_linear\" = Infinity: it must be a finite number ≥ 0 (0: no scaling)" },
        { "llama.logit_scale", GgufValue.Of(float.Epsilon), "\"llama.logit_scale\" = 1E-45: it must be a positive number whose reciprocal is finite" },
        { "llama.attn_logit_softcapping", GgufValue.Of(-1f), "\"llama.attn_logit_softcapping\" = -1: it must be 0 (none) or a positive number whose reciprocal is finite" },
        { "llama.final_logit_softcapping", GgufValue.Of(float.NaN), "\"llama.final_logit_softcapping\" = NaN: it must be 0 (none)" },
        { "llama.embedding_scale", GgufValue.Of(float.PositiveInfinity), "\"llama.embedding_scale\" = Infinity: it must be a positive finite number" },
        { "llama.residual_scale", GgufValue.Of(0f), "\"llama.residual_scale\" = 0: it must be a positive finite number" },
        { "llama.rope.scaling.attn_factor", GgufValue.Of(-1f), "\"llama.rope.scaling.attn_factor\" = -1: it must be a positive finite number" },
    };

    [Theory]
    [InlineData(int.MaxValue)]
    [InlineData(1)]
    public void A_sliding_window_of_any_length_loads_and_generates(int window)
    {
        using var file = GgufFile.Open(TestData.Model("synthetic/synth-gemma2-Q8_0.gguf"));
        var metadata = file.Metadata.ToKeyValueList();
        Set(metadata, "gemma2.attention.sliding_window", GgufValue.Of((uint)window));
        using var model = TransformerModel.Load(GgufWriter.ToBytes(metadata, file.Tensors.Select(t => (GgufTensorSpec.From(t), file.GetTensorData(t).ToArray())).ToList()));
        using var g = model.CreateGenerator(new GeneratorOptions { ContextLength = 64 });
        g.Prefill([1, 2, 3, 4, 5]);
        for (int i = 0; i < 40; i++)
            Assert.All(g.Step(7).ToArray(), x => Assert.True(float.IsFinite(x)));
    }

    [Theory]
    [MemberData(nameof(PoisonousHyperParameters))]
    public void Float_hyper_parameters_that_would_poison_every_logit_are_rejected_naming_key_and_value(string key, GgufValue value, string message)
    {
        byte[] bytes = ModelBytes.Stories(m =>
        {
            Set(m, key, value);
            if (key.StartsWith("llama.rope.scal", StringComparison.Ordinal))
                Set(m, "llama.rope.scaling.type", GgufValue.Of("linear"));
        });
        var ex = Assert.Throws<GgufFormatException>(() => TransformerModel.Load(bytes));
        Assert.Contains(message, ex.Message);
    }

    [Theory]
    [InlineData("blk.2.ffn_norm.weight", 17, float.NaN, "tensor \"blk.2.ffn_norm.weight\": element 17 is NaN; every element must be finite")]
    [InlineData("output_norm.weight", 0, float.NegativeInfinity, "tensor \"output_norm.weight\": element 0 is -Infinity; every element must be finite")]
    public void Non_finite_values_in_the_vectors_read_at_load_are_rejected_naming_the_tensor(string tensor, int element, float value, string message)
    {
        byte[] bytes = ModelBytes.Stories(tensor: (name, w) =>
        {
            if (name == tensor)
                w[element] = value;
        });
        Assert.Contains(message, Assert.Throws<GgufFormatException>(() => TransformerModel.Load(bytes)).Message);
    }

    [Theory]
    [InlineData(0f, "tensor \"rope_freqs.weight\": element 1 is 0; every element must be a positive finite number")]
    [InlineData(float.NaN, "tensor \"rope_freqs.weight\": element 1 is NaN; every element must be a positive finite number")]
    [InlineData(1e-44f, "the RoPE frequencies overflow a float (\"llama.rope.freq_base\" = 10000, divided by rope_freqs.weight)")]
    public void Rope_frequency_factors_must_be_positive_finite_divisors(float factor, string message)
    {
        using var file = GgufFile.Open(TestData.Model("stories260K.gguf"));
        var tensors = file.Tensors.Select(t => (GgufTensorSpec.From(t), file.GetTensorData(t).ToArray()))
            .Append((new GgufTensorSpec("rope_freqs.weight", GgmlType.F32, [4]), System.Runtime.InteropServices.MemoryMarshal.AsBytes<float>([1f, factor, 2f, 4f]).ToArray()));
        byte[] bytes = GgufWriter.ToBytes(file.Metadata.ToKeyValueList(), tensors);
        Assert.Contains(message, Assert.Throws<GgufFormatException>(() => TransformerModel.Load(bytes)).Message);
    }

    [Theory]
    [InlineData(int.MaxValue)]     // new LayerWeights[2^31-1] was an OutOfMemoryException
    [InlineData(1 << 27)]          // and this asked for 1 GiB
    public void A_block_count_past_the_blocks_in_the_file_fails_before_anything_is_sized_by_it(int blocks)
    {
        byte[] bytes = ModelBytes.StoriesWith("llama.block_count", GgufValue.Of((uint)blocks));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var ex = Assert.Throws<GgufFormatException>(() => TransformerModel.Load(bytes));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains($"\"llama.block_count\" = {blocks}, but the file has no tensors for block 5 (no \"blk.5.\" names; it has 5 blocks)", ex.Message);
        Assert.True(allocated < 16 << 20, $"the failed load allocated {allocated} bytes");
    }

    [Theory]
    [InlineData("llama.embedding_length", 1u << 25, "\"llama.embedding_length\" must be in [1, 16777216], found 33554432")]
    [InlineData("llama.feed_forward_length", 0u, "\"llama.feed_forward_length\" must be in [1, 16777216], found 0")]
    [InlineData("llama.attention.key_length", 1u << 22, "head_count 8 × head size 4194304 is larger than 16777216")]
    [InlineData("llama.attention.head_count", 128u, "the head size is 0 (embedding_length 64 / head_count 128, or attention.key_length): it must be positive")]
    [InlineData("llama.vocab_size", 0u, "\"llama.vocab_size\" must be in [1, 2147483647], found 0")]
    public void Counts_and_widths_are_bounded_before_they_size_anything(string key, uint value, string message)
    {
        byte[] bytes = ModelBytes.StoriesWith(key, GgufValue.Of(value));
        Assert.Contains(message, Assert.Throws<GgufFormatException>(() => TransformerModel.Load(bytes)).Message);
    }

    [Fact]
    public void A_model_loads_from_memory_and_computes_what_the_file_does()
    {
        byte[] bytes = File.ReadAllBytes(TestData.Model("stories260K.gguf"));
        using var fromFile = TransformerModel.Load(TestData.Model("stories260K.gguf"));
        using var fromMemory = TransformerModel.Load(bytes.AsMemory());
        Assert.Null(fromMemory.Path);
        Assert.Equal("llama", fromMemory.Name); // general.name
        using var a = fromFile.CreateGenerator();
        using var b = fromMemory.CreateGenerator();
        Assert.Equal(a.Prefill([1, 403, 407]).ToArray(), b.Prefill([1, 403, 407]).ToArray());
        Assert.StartsWith("Invalid GGUF at byte 0: expected magic", Assert.Throws<GgufFormatException>(() => TransformerModel.Load(new byte[64])).Message);
    }
}

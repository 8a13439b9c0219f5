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

    private static void Set(List<KeyValuePair<string, GgufValue>> m, string key, GgufValue value)
    {
        int i = m.FindIndex(kv => kv.Key == key);
        if (i >= 0) m[i] = KeyValuePair.Create(key, value);
        else m.Add(KeyValuePair.Create(key, value));
    }

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
    public void Linear_rope_scaling_scales_positions_and_yarn_is_refused()
    {
        string linear = Variant("stories260K.gguf", m =>
        {
            Set(m, "llama.rope.scaling.type", GgufValue.Of("linear"));
            Set(m, "llama.rope.scaling.factor", GgufValue.Of(4f));
        });
        using (var model = TransformerModel.Load(linear))
            Assert.Equal(0.25f, model.Config.RopePositionScale);

        string yarn = Variant("stories260K.gguf", m => Set(m, "llama.rope.scaling.type", GgufValue.Of("yarn")));
        Assert.Contains("yarn", Assert.Throws<NotSupportedException>(() => TransformerModel.Load(yarn)).Message);
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
}

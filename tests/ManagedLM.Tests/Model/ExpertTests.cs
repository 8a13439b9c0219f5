using ManagedLM.Generation;
using ManagedLM.Gguf;
using ManagedLM.Kernels;
using ManagedLM.Model;
using ManagedLM.Sampling;

namespace ManagedLM.Tests.Model;

/// <summary>
/// Mixture-of-experts blocks beyond the qwen3moe fixture (which FidelityTests checks against llama.cpp): Qwen2 MoE's
/// unnormalized expert weights and its sigmoid-gated shared expert, and Mixtral's experts under <c>llama</c>, on variants
/// of that fixture. ExpertVariants.llama.json holds llama.cpp's logits for two of them (made by this file's code from the
/// shared fixture, run through libllama b9749 with the settings of the shared references).
/// </summary>
public class ExpertTests
{
    private const string Fixture = "synthetic/synth-qwen3moe-Q8_0.gguf";
    private static readonly int[] Prompt = [1, 403, 407, 261, 378, 432, 383, 286, 261];

    [Fact]
    public void The_qwen3moe_fixture_routes_each_token_to_two_of_eight_experts()
    {
        using var model = TransformerModel.Load(TestData.Model(Fixture));
        var c = model.Config;
        Assert.Equal((8, 2, 64), (c.ExpertCount, c.ExpertUsedCount, c.ExpertFeedForwardLength));
        var layer = model.Weights.Layers[0];
        Assert.Null(layer.Gate);
        Assert.Equal(8, layer.Experts.Length);
        Assert.All(layer.Experts, e => Assert.Equal((64, 256, 256, 64), (e.Gate.Rows, e.Gate.Columns, e.Down.Rows, e.Down.Columns)));
    }

    // The fixture as qwen2moe (without q/k norms, as Qwen1.5-MoE); shared: the shared expert's tensors (expert 0's slabs),
    // with its down projection zeroed if asked.
    private static byte[] Qwen2Moe(bool shared, bool zeroDown = false)
    {
        using var file = GgufFile.Open(TestData.Model(Fixture));
        var metadata = Renamed(file, "qwen2moe");
        ModelBytes.Set(metadata, "qwen2moe.expert_shared_feed_forward_length", GgufValue.Of(64u));
        var tensors = WithoutQueryKeyNorms(file);
        if (shared)
        {
            byte[] Slab(string name, int rows, int columns)
            {
                var t = file.GetTensor(name);
                return file.GetTensorData(t)[..(int)(GgmlTypes.RowBytes(t.Type, columns) * rows)].ToArray();
            }
            var gate = Slab("blk.0.ffn_gate_exps.weight", 64, 256);
            var up = Slab("blk.0.ffn_up_exps.weight", 64, 256);
            var down = zeroDown ? new byte[Slab("blk.0.ffn_down_exps.weight", 256, 64).Length] : Slab("blk.0.ffn_down_exps.weight", 256, 64);
            var gateInput = new float[256];
            for (int i = 0; i < gateInput.Length; i++)
                gateInput[i] = MathF.Sin(i) / 8;
            tensors.Add((new GgufTensorSpec("blk.0.ffn_gate_inp_shexp.weight", GgmlType.F32, [256]), gateInput.SelectMany(BitConverter.GetBytes).ToArray()));
            tensors.Add((new GgufTensorSpec("blk.0.ffn_gate_shexp.weight", GgmlType.Q8_0, [256, 64]), gate));
            tensors.Add((new GgufTensorSpec("blk.0.ffn_up_shexp.weight", GgmlType.Q8_0, [256, 64]), up));
            tensors.Add((new GgufTensorSpec("blk.0.ffn_down_shexp.weight", GgmlType.Q8_0, [64, 256]), down));
        }
        return GgufWriter.ToBytes(metadata, tensors);
    }

    // The fixture's metadata as another architecture's: general.architecture and every "qwen3moe." key renamed.
    private static List<KeyValuePair<string, GgufValue>> Renamed(GgufFile file, string arch) =>
        [.. file.Metadata.ToKeyValueList().Select(kv => KeyValuePair.Create(
            kv.Key.StartsWith("qwen3moe.", StringComparison.Ordinal) ? arch + "." + kv.Key["qwen3moe.".Length..] : kv.Key,
            kv.Key == "general.architecture" ? GgufValue.Of(arch) : kv.Value))];

    private static List<(GgufTensorSpec, byte[])> WithoutQueryKeyNorms(GgufFile file) =>
        [.. file.Tensors.Where(t => !t.Name.Contains("attn_q_norm") && !t.Name.Contains("attn_k_norm"))
            .Select(t => (GgufTensorSpec.From(t), file.GetTensorData(t).ToArray()))];

    // The fixture as a `llama` file without q/k norms (as Mixtral is laid out): experts from the router's presence.
    private static byte[] Mixtral()
    {
        using var file = GgufFile.Open(TestData.Model(Fixture));
        var metadata = Renamed(file, "llama");
        metadata.RemoveAll(kv => kv.Key == "llama.expert_feed_forward_length");
        ModelBytes.Set(metadata, "llama.feed_forward_length", GgufValue.Of(64u));
        return GgufWriter.ToBytes(metadata, WithoutQueryKeyNorms(file));
    }

    // llama.cpp's logits after the prompt and after one more token, for a variant made by this file's code.
    private static float[][] LlamaCppLogits(string variant)
    {
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(TestData.RepoRoot, "tests", "ManagedLM.Tests", "Model", "ExpertVariants.llama.json")));
        var root = json.RootElement;
        Assert.Equal(Prompt, root.GetProperty("prompt").EnumerateArray().Select(e => e.GetInt32()));
        return [.. root.GetProperty("logits").GetProperty(variant).EnumerateArray().Select(step => step.EnumerateArray().Select(e => e.GetSingle()).ToArray())];
    }

    [Theory]
    [InlineData("qwen2moe-shared")]
    [InlineData("mixtral")]
    public void Expert_variants_give_llama_cpps_logits(string variant)
    {
        using var model = TransformerModel.Load(variant == "mixtral" ? Mixtral() : Qwen2Moe(shared: true));
        using var g = model.CreateGenerator(new GeneratorOptions { Sampling = SamplingOptions.Greedy });
        float[][] expected = LlamaCppLogits(variant);
        float[][] actual = [g.Prefill(Prompt).ToArray(), g.Step(7).ToArray()];
        for (int s = 0; s < expected.Length; s++)
        {
            Assert.Equal(Top(expected[s], 5), Top(actual[s], 5));
            float delta = expected[s].Zip(actual[s], (a, b) => Math.Abs(a - b)).Max();
            Assert.True(delta < 1e-4f, $"{variant} step {s}: max |Δlogit| {delta} (measured 2e-6)");
        }
    }

    private static int[] Top(float[] logits, int k) => [.. Enumerable.Range(0, logits.Length).OrderByDescending(i => logits[i]).ThenBy(i => i).Take(k)];

    private static float[] Logits(TransformerModel model, int batchSize = 512)
    {
        using var g = model.CreateGenerator(new GeneratorOptions { Sampling = SamplingOptions.Greedy, BatchSize = batchSize });
        g.Prefill(Prompt);
        return g.Step(7).ToArray();
    }

    [Fact]
    public void Qwen2moe_keeps_the_router_probabilities_unnormalized()
    {
        using var qwen3 = TransformerModel.Load(TestData.Model(Fixture));
        using var qwen2 = TransformerModel.Load(Qwen2Moe(shared: false));
        Assert.Equal("qwen2moe", qwen2.Config.Architecture);
        Assert.Null(qwen2.Weights.Layers[0].SharedExpert);
        // Two of eight softmax probabilities sum to less than 1: the same experts, scaled down.
        Assert.NotEqual(Logits(qwen3), Logits(qwen2));
    }

    [Fact]
    public void The_shared_expert_adds_its_gated_output_and_nothing_when_its_output_is_zero()
    {
        using var plain = TransformerModel.Load(Qwen2Moe(shared: false));
        using var silent = TransformerModel.Load(Qwen2Moe(shared: true, zeroDown: true));
        using var shared = TransformerModel.Load(Qwen2Moe(shared: true));
        Assert.Equal(64, shared.Config.SharedExpertFeedForwardLength);
        Assert.NotNull(shared.Weights.Layers[0].SharedExpert);
        float[] expected = Logits(plain);
        Assert.Equal(expected, Logits(silent));
        float[] withShared = Logits(shared);
        Assert.NotEqual(expected, withShared);
        Assert.All(withShared, x => Assert.True(float.IsFinite(x)));
        // Routed and shared experts run per row: a prompt in chunks of 3 gives the same bits as in one pass.
        Assert.Equal(withShared, Logits(shared, batchSize: 3));
    }

    [Fact]
    public void Mixtral_style_experts_load_under_llama()
    {
        using var model = TransformerModel.Load(Mixtral());
        Assert.Equal((8, 2, 64), (model.Config.ExpertCount, model.Config.ExpertUsedCount, model.Config.ExpertFeedForwardLength));
        float[] logits = Logits(model);
        Assert.All(logits, x => Assert.True(float.IsFinite(x)));
        Assert.Equal(logits, Logits(model, batchSize: 4));
    }

    [Fact]
    public void A_router_tensor_without_expert_count_is_a_format_error()
    {
        using var file = GgufFile.Open(TestData.Model(Fixture));
        var metadata = file.Metadata.ToKeyValueList().Where(kv => kv.Key != "qwen3moe.expert_count").ToList();
        var tensors = file.Tensors.Select(t => (GgufTensorSpec.From(t), file.GetTensorData(t).ToArray())).ToList();
        var e = Assert.Throws<GgufFormatException>(() => TransformerModel.Load(GgufWriter.ToBytes(metadata, tensors)));
        Assert.Contains("expert_count", e.Message);
    }
}

using ManagedLM.Gguf;
using ManagedLM.Kernels;
using ManagedLM.Quantization;
using ManagedLM.Synthesis;
using ManagedLM.Tests.Synthesis;

namespace ManagedLM.Tests.Quantization;

public class QuantizationMixTests
{
    private static Dictionary<string, GgmlType> Types(SynthesisSpec spec, LlamaFileType type, GgmlType? tokenEmbd = null, GgmlType? output = null)
    {
        var options = new QuantizationOptions(type) { TokenEmbeddingType = tokenEmbd, OutputTensorType = output };
        var model = new MixModel(spec.Architecture, spec.BlockCount, spec.HeadCount, spec.HeadCountKv);
        return QuantizationMix.Plan(options, model, ModelSynthesizer.Tensors(spec)).ToDictionary(t => t.Name, t => t.Type);
    }

    private static readonly SynthesisSpec TwoLayers = ModelSynthesizerTests.FixtureSpec("llama") with { BlockCount = 2 };

    [Theory]
    [InlineData(LlamaFileType.Q4_K_M, GgmlType.Q4_K)]
    [InlineData(LlamaFileType.Q5_K_M, GgmlType.Q5_K)]
    public void Two_layer_K_M_mix_gives_Q6_K_to_the_output_and_to_attn_v_and_ffn_down_of_layer_1(LlamaFileType type, GgmlType baseType)
    {
        // use_more_bits(i, 2): i < 0 || i >= 1 || (i - 0) % 3 == 2, so layer 1 only.
        var expected = new Dictionary<string, GgmlType>
        {
            ["token_embd.weight"] = baseType, ["output_norm.weight"] = GgmlType.F32, ["output.weight"] = GgmlType.Q6_K,
        };
        for (int i = 0; i < 2; i++)
        {
            foreach (string n in new[] { "attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up" })
                expected[$"blk.{i}.{n}.weight"] = baseType;
            expected[$"blk.{i}.attn_v.weight"] = expected[$"blk.{i}.ffn_down.weight"] = i == 1 ? GgmlType.Q6_K : baseType;
            expected[$"blk.{i}.attn_norm.weight"] = expected[$"blk.{i}.ffn_norm.weight"] = GgmlType.F32;
        }
        Assert.Equal(expected.OrderBy(p => p.Key), Types(TwoLayers, type).OrderBy(p => p.Key));
    }

    [Fact]
    public void More_bits_layers_are_the_first_and_last_eighth_and_every_third_between()
    {
        var spec = TwoLayers with { BlockCount = 32 };
        var types = Types(spec, LlamaFileType.Q4_K_M);
        int[] moreBits = Enumerable.Range(0, 32).Where(i => types[$"blk.{i}.ffn_down.weight"] == GgmlType.Q6_K).ToArray();
        Assert.Equal([0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31], moreBits);
        Assert.Equal(moreBits, Enumerable.Range(0, 32).Where(i => types[$"blk.{i}.attn_v.weight"] == GgmlType.Q6_K));
    }

    [Fact]
    public void Tensors_are_ordered_as_llama_cpp_loads_them()
    {
        var spec = TwoLayers with { BlockCount = 11 };
        var names = QuantizationMix.Plan(new QuantizationOptions(LlamaFileType.F16), new MixModel("llama", 11, 4, 2), ModelSynthesizer.Tensors(spec))
            .Select(t => t.Name).ToList();
        Assert.Equal(["output.weight", "output_norm.weight", "token_embd.weight", "blk.0.attn_k.weight"], names.Take(4));
        Assert.True(names.IndexOf("blk.9.ffn_up.weight") < names.IndexOf("blk.10.attn_k.weight"));
        Assert.Equal("blk.10.ffn_up.weight", names[^1]);
    }

    [Fact]
    public void Rows_that_are_not_whole_super_blocks_fall_back_as_in_llama_cpp()
    {
        // Qwen2.5-0.5B: n_embd 896 = 3.5 super-blocks, n_ff 4864 = 19; tied.
        var types = Types(SynthesisPreset.Get("qwen2.5-0.5b").Spec, LlamaFileType.Q4_K_M);
        Assert.Equal(GgmlType.Q8_0, types["token_embd.weight"]);      // the output rule: Q8_0 when not whole blocks
        Assert.Equal(GgmlType.Q5_0, types["blk.1.attn_q.weight"]);    // Q4_K → Q5_0
        Assert.Equal(GgmlType.Q8_0, types["blk.0.attn_v.weight"]);    // Q6_K → Q8_0 (more bits)
        Assert.Equal(GgmlType.Q5_0, types["blk.4.attn_v.weight"]);    // use_more_bits(4, 24) is false
        Assert.Equal(GgmlType.Q6_K, types["blk.0.ffn_down.weight"]);  // 4864 is whole super-blocks
        Assert.Equal(GgmlType.Q4_K, types["blk.4.ffn_down.weight"]);
        Assert.Equal(GgmlType.F32, types["blk.0.attn_q.bias"]);
        Assert.Equal(GgmlType.Q5_1, Types(SynthesisPreset.Get("qwen2.5-0.5b").Spec, LlamaFileType.Q5_K_S)["blk.1.attn_q.weight"]);
        Assert.Equal(GgmlType.F16, QuantizationMix.Fallback(GgmlType.Q6_K, 172));
        Assert.Equal(GgmlType.F16, QuantizationMix.Fallback(GgmlType.Q8_0, 172));
        Assert.Equal(GgmlType.Q4_0, QuantizationMix.Fallback(GgmlType.Q4_0, 64));
    }

    [Fact]
    public void Q4_0_gives_the_output_Q6_K_or_Q8_0_and_Q8_0_keeps_it()
    {
        Assert.Equal(GgmlType.Q6_K, Types(TwoLayers, LlamaFileType.Q4_0)["output.weight"]);
        Assert.Equal(GgmlType.Q4_0, Types(TwoLayers, LlamaFileType.Q4_0)["token_embd.weight"]);
        Assert.Equal(GgmlType.Q8_0, Types(TwoLayers with { EmbeddingLength = 288, HeadDim = 72 }, LlamaFileType.Q4_0)["output.weight"]);
        Assert.Equal(GgmlType.Q8_0, Types(TwoLayers, LlamaFileType.Q8_0)["output.weight"]);
        Assert.Equal(GgmlType.Q6_K, Types(TwoLayers with { TiedEmbeddings = true }, LlamaFileType.Q4_0)["token_embd.weight"]);
    }

    [Fact]
    public void Float_file_types_convert_matrices_and_keep_norms_F32()
    {
        var types = Types(TwoLayers, LlamaFileType.F16);
        Assert.All(types, p => Assert.Equal(p.Key.EndsWith("_norm.weight", StringComparison.Ordinal) ? GgmlType.F32 : GgmlType.F16, p.Value));
        Assert.All(Types(TwoLayers, LlamaFileType.F32), p => Assert.Equal(GgmlType.F32, p.Value));
    }

    [Fact]
    public void Q4_K_S_gives_Q5_K_to_the_first_four_attn_v_and_the_first_eighth_of_ffn_down()
    {
        var types = Types(TwoLayers with { BlockCount = 16 }, LlamaFileType.Q4_K_S);
        Assert.Equal([0, 1, 2, 3], Enumerable.Range(0, 16).Where(i => types[$"blk.{i}.attn_v.weight"] == GgmlType.Q5_K));
        Assert.Equal([0, 1], Enumerable.Range(0, 16).Where(i => types[$"blk.{i}.ffn_down.weight"] == GgmlType.Q5_K));
        Assert.Equal(GgmlType.Q6_K, types["output.weight"]);
    }

    [Fact]
    public void An_80_layer_llama_with_grouped_query_attention_gets_Q5_K_attn_v()
    {
        var types = Types(TwoLayers with { BlockCount = 80 }, LlamaFileType.Q4_K_M);
        Assert.Equal(GgmlType.Q5_K, types["blk.11.attn_v.weight"]);   // not a more-bits layer: Q4_K → Q5_K
        Assert.Equal(GgmlType.Q6_K, types["blk.12.attn_v.weight"]);
        Assert.Equal(GgmlType.Q4_K, types["blk.11.ffn_down.weight"]);
        Assert.Equal(GgmlType.Q4_K, Types(TwoLayers with { BlockCount = 80, HeadCountKv = 4 }, LlamaFileType.Q4_K_M)["blk.11.attn_v.weight"]);
    }

    [Fact]
    public void Overrides_apply_as_given_and_must_fit_the_rows()
    {
        var types = Types(TwoLayers, LlamaFileType.Q4_K_M, tokenEmbd: GgmlType.Q8_0, output: GgmlType.Q4_K);
        Assert.Equal(GgmlType.Q8_0, types["token_embd.weight"]);
        Assert.Equal(GgmlType.Q4_K, types["output.weight"]);
        Assert.Equal(GgmlType.Q5_0, Types(TwoLayers with { TiedEmbeddings = true }, LlamaFileType.Q4_K_M, output: GgmlType.Q5_0)["token_embd.weight"]);
        Assert.Throws<ArgumentException>(() => Types(TwoLayers with { EmbeddingLength = 288, HeadDim = 72 }, LlamaFileType.Q4_0, tokenEmbd: GgmlType.Q4_K));
    }

    [Fact]
    public void Only_named_weights_of_two_or_more_dimensions_are_quantized()
    {
        Assert.True(QuantizationMix.AllowsQuantization(new GgufTensorSpec("blk.0.attn_q.weight", GgmlType.F32, [64, 64])));
        Assert.False(QuantizationMix.AllowsQuantization(new GgufTensorSpec("blk.0.attn_q.weight", GgmlType.F32, [64, 1])));
        Assert.False(QuantizationMix.AllowsQuantization(new GgufTensorSpec("blk.0.attn_q.bias", GgmlType.F32, [64, 64])));
        Assert.False(QuantizationMix.AllowsQuantization(new GgufTensorSpec("blk.0.attn_q_norm.weight", GgmlType.F32, [64, 64])));
        Assert.False(QuantizationMix.AllowsQuantization(new GgufTensorSpec("blk.0.ffn_gate_inp.weight", GgmlType.F32, [64, 8])));
    }

    [Fact]
    public void File_type_names_parse_and_number_as_llama_cpp()
    {
        Assert.Equal(LlamaFileType.Q4_K_M, LlamaFileTypes.Parse("q4_k_m"));
        Assert.Equal(15u, (uint)LlamaFileType.Q4_K_M);
        Assert.Equal(GgmlType.Q5_K, LlamaFileTypes.DefaultTensorType(LlamaFileType.Q5_K_S));
        Assert.Throws<ArgumentException>(() => LlamaFileTypes.Parse("Q3_K_M"));
    }
}

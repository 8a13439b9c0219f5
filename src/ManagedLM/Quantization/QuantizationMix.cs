using System.Collections.Immutable;
using ManagedLM.Gguf;
using ManagedLM.Kernels;

namespace ManagedLM.Quantization;

/// <summary>A quantization run's settings: the file type and llama-quantize's per-tensor overrides.</summary>
/// <param name="FileType">The mix to apply.</param>
public sealed record QuantizationOptions(LlamaFileType FileType)
{
    /// <summary>Type of <c>token_embd.weight</c> instead of the mix's (<c>--token-embedding-type</c>); applied as given, without fallback.</summary>
    public GgmlType? TokenEmbeddingType { get; init; }

    /// <summary>Type of <c>output.weight</c> instead of the mix's (<c>--output-tensor-type</c>); also of a tied <c>token_embd.weight</c>.</summary>
    public GgmlType? OutputTensorType { get; init; }

    /// <summary>Allow quantized source tensors to be quantized again (<c>--allow-requantize</c>).</summary>
    public bool AllowRequantize { get; init; }

    /// <summary>Threads that quantize rows; the output does not depend on it.</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;
}

/// <summary>What the mix reads from a model's hyperparameters.</summary>
/// <param name="Architecture">general.architecture.</param>
/// <param name="BlockCount">Layers: the "more bits" rules of ffn_down count against it.</param>
/// <param name="HeadCount">Attention heads (with <paramref name="HeadCountKv"/> and 80 layers, a llama is llama.cpp's 70B type).</param>
/// <param name="HeadCountKv">Key/value heads.</param>
public sealed record MixModel(string Architecture, int BlockCount, int HeadCount, int HeadCountKv)
{
    /// <summary>Reads the hyperparameters from GGUF metadata.</summary>
    /// <exception cref="NotSupportedException">A mixture-of-experts model (its expert rules are not implemented).</exception>
    public static MixModel FromMetadata(GgufMetadata metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        string arch = metadata.GetString("general.architecture");
        if (metadata.GetInt32($"{arch}.expert_count", 0) > 1)
            throw new NotSupportedException($"Quantizing mixture-of-experts models ({arch}.expert_count > 1) is not supported.");
        int heads = metadata.GetInt32($"{arch}.attention.head_count", 0);
        return new MixModel(arch, metadata.GetInt32($"{arch}.block_count"), heads, metadata.GetInt32($"{arch}.attention.head_count_kv", heads));
    }
}

/// <summary>
/// Chooses each tensor's type as llama.cpp's quantizer does (llama-quant.cpp: <c>tensor_allows_quantization</c>,
/// <c>llama_tensor_get_type</c> and its shape fallbacks) for the file types of <see cref="LlamaFileType"/>:
/// <list type="bullet">
/// <item>only 2-D+ tensors named <c>*weight</c> are quantized; norms, biases and other 1-D tensors keep their type;</item>
/// <item><c>output.weight</c> (or <c>token_embd.weight</c> when there is no output matrix) gets Q8_0 when its row is not
/// whole blocks of the mix's type, else Q6_K unless the mix is Q8_0;</item>
/// <item>Q4_K_M and Q5_K_M give Q6_K to attn_v and ffn_down on "more bits" layers (the first and last eighth and every
/// third layer between; fused attn_qkv and attn_kv_b count as attn_v); Q4_K_S gives Q5_K to the first four attn_v and
/// the first eighth of ffn_down; a llama of 80 layers with grouped-query attention (70B) gets Q5_K for a Q4_K attn_v;</item>
/// <item>a row that is not whole K-quant blocks falls back Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0, and a row that is not
/// whole blocks of 32 to F16.</item>
/// </list>
/// Layer counters run in llama.cpp's tensor order (<see cref="CompareNames"/>), which is also the order of the output.
/// One deliberate difference: llama.cpp aborts when a row is not whole blocks of a 32-element type the mix asks for
/// directly (Q4_0, Q5_0, Q8_0...), e.g. stories260K's 172-wide ffn_down under Q8_0; here it falls back to F16 as it does
/// after a K-quant fallback.
/// </summary>
public static class QuantizationMix
{
    private enum Category { TokenEmbd, AttentionQ, AttentionV, AttentionK, AttentionQkv, AttentionKvB, AttentionOutput, FfnUp, FfnGate, FfnDown, Output, Other }

    // Name fragments of 2-D weights llama.cpp never quantizes (gating, positional and tiny auxiliary tensors).
    private static readonly ImmutableArray<string> KeptWeights =
    [
        "ffn_gate_inp.weight", "altup", "laurel", "per_layer_model_proj", "ssm_conv1d", "shortconv.conv.weight",
        "attn_rel_b.weight", "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight",
        "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight", "time_mix_a0.weight", "time_mix_a1.weight",
        "time_mix_a2.weight", "time_mix_g1.weight", "time_mix_g2.weight", "time_mix_decay_w1.weight",
        "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight",
    ];

    // Checked in this order, as llama.cpp's tensor_get_category.
    private static readonly ImmutableArray<(string Fragment, Category Category)> CategoryFragments =
    [
        ("attn_qkv.weight", Category.AttentionQkv), ("attn_kv_b.weight", Category.AttentionKvB),
        ("attn_v.weight", Category.AttentionV), ("attn_k.weight", Category.AttentionK), ("attn_q.weight", Category.AttentionQ),
        ("attn_output.weight", Category.AttentionOutput), ("ffn_up", Category.FfnUp), ("ffn_gate", Category.FfnGate),
        ("ffn_down", Category.FfnDown),
    ];

    /// <summary>
    /// The output tensors of a quantization: <paramref name="tensors"/> (source names, shapes and types) in llama.cpp's
    /// order, each with the type the mix gives it.
    /// </summary>
    /// <exception cref="NotSupportedException">The architecture is falcon, whose special rules are not implemented.</exception>
    /// <exception cref="ArgumentException">An override type that does not fit a tensor's rows.</exception>
    public static IReadOnlyList<GgufTensorSpec> Plan(QuantizationOptions options, MixModel model, IEnumerable<GgufTensorSpec> tensors)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tensors);
        if (model.Architecture == "falcon")
            throw new NotSupportedException("Quantizing falcon models is not supported (llama.cpp has falcon-specific rules).");
        var ordered = tensors.OrderBy(t => t.Name, Comparer<string>.Create(CompareNames)).ToList();
        var state = new State(options, model, ordered);
        return ordered.Select(t => t with { Type = state.TypeOf(t) }).ToList();
    }

    /// <summary>
    /// llama.cpp's tensor order (llama_model_loader's <c>weight_name_comparer</c>): tensors outside blocks first, then
    /// by block number (<c>blk.N.</c>), and by ordinal name within each group.
    /// </summary>
    public static int CompareNames(string? a, string? b)
    {
        int byLayer = LayerOf(a).CompareTo(LayerOf(b));
        return byLayer != 0 ? byLayer : string.CompareOrdinal(a, b);
    }

    /// <summary>True when llama.cpp quantizes the tensor at all (llama-quant.cpp <c>tensor_allows_quantization</c>).</summary>
    public static bool AllowsQuantization(GgufTensorSpec tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        string name = tensor.Name;
        return DimensionCount(tensor.Shape) >= 2
            && name.EndsWith("weight", StringComparison.Ordinal)
            && !name.Contains("_norm.weight", StringComparison.Ordinal)
            && name != "position_embd.weight" && name != "token_types.weight"
            && !KeptWeights.Any(k => name.Contains(k, StringComparison.Ordinal));
    }

    /// <summary>A 256-element K-quant's fallback for a row that is not whole super-blocks, then F16 for one that is not whole blocks of 32.</summary>
    public static GgmlType Fallback(GgmlType type, long rowLength)
    {
        if (rowLength % GgmlTypes.BlockSize(type) == 0)
            return type;
        var fallback = type switch
        {
            GgmlType.Q4_K => GgmlType.Q5_0,
            GgmlType.Q5_K => GgmlType.Q5_1,
            GgmlType.Q6_K => GgmlType.Q8_0,
            _ => type,
        };
        return rowLength % GgmlTypes.BlockSize(fallback) == 0 ? fallback : GgmlType.F16;
    }

    // llama.cpp's use_more_bits: the first and last eighth of the layers and every third one between.
    internal static bool UseMoreBits(int layer, int layers) =>
        layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;

    // sscanf(name, "blk.%d.", &layer) with -1 when the name is not in a block.
    private static long LayerOf(string? name)
    {
        if (name is null || !name.StartsWith("blk.", StringComparison.Ordinal))
            return -1;
        int end = 4;
        while (end < name.Length && char.IsAsciiDigit(name[end]))
            end++;
        return end > 4 && long.TryParse(name.AsSpan(4, end - 4), out long layer) ? layer : -1;
    }

    // ggml_n_dims: trailing dimensions of 1 do not count.
    private static int DimensionCount(IReadOnlyList<long> shape)
    {
        for (int i = shape.Count - 1; i >= 1; i--)
        {
            if (shape[i] > 1)
                return i + 1;
        }
        return 1;
    }

    private static Category CategoryOf(string name)
    {
        if (name == "output.weight")
            return Category.Output;
        if (name is "token_embd.weight" or "per_layer_token_embd.weight")
            return Category.TokenEmbd;
        foreach (var (fragment, category) in CategoryFragments)
        {
            if (name.Contains(fragment, StringComparison.Ordinal))
                return category;
        }
        return Category.Other;
    }

    // The counters llama.cpp advances tensor by tensor.
    private sealed class State
    {
        private readonly QuantizationOptions _options;
        private readonly LlamaFileType _ftype;
        private readonly MixModel _model;
        private readonly bool _tiedEmbeddings;
        private readonly int _attentionV;
        private readonly bool _is70B;
        private int _iAttentionV;
        private int _iFfnDown;

        public State(QuantizationOptions options, MixModel model, IReadOnlyList<GgufTensorSpec> tensors)
        {
            _options = options;
            _ftype = options.FileType;
            _model = model;
            _tiedEmbeddings = !tensors.Any(t => CategoryOf(t.Name) == Category.Output);
            _attentionV = tensors.Count(t => CategoryOf(t.Name) is Category.AttentionV or Category.AttentionQkv or Category.AttentionKvB);
            _is70B = model.Architecture == "llama" && model.BlockCount == 80 && model.HeadCount != model.HeadCountKv;
        }

        public GgmlType TypeOf(GgufTensorSpec tensor)
        {
            if (!AllowsQuantization(tensor))
                return tensor.Type;
            var category = CategoryOf(tensor.Name);
            long rowLength = tensor.Shape[0];
            if (_options.TokenEmbeddingType is { } embd && category == Category.TokenEmbd)
                return Checked(embd, tensor);
            if (_options.OutputTensorType is { } output && category == Category.Output)
                return Checked(output, tensor);
            var type = LlamaFileTypes.DefaultTensorType(_ftype);
            if (type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16)
                return type;
            return Fallback(ByRole(type, category, rowLength), rowLength);
        }

        private GgmlType ByRole(GgmlType type, Category category, long rowLength)
        {
            if (category == Category.Output || (_tiedEmbeddings && category == Category.TokenEmbd))
            {
                if (_options.OutputTensorType is { } output)
                    return output;
                if (rowLength % GgmlTypes.BlockSize(type) != 0)
                    return GgmlType.Q8_0;
                return type != GgmlType.Q8_0 ? GgmlType.Q6_K : type;
            }
            switch (category)
            {
                case Category.AttentionV or Category.AttentionQkv or Category.AttentionKvB:
                    if ((_ftype is LlamaFileType.Q4_K_M or LlamaFileType.Q5_K_M) && UseMoreBits(_iAttentionV, _attentionV))
                        type = GgmlType.Q6_K;
                    else if (_ftype == LlamaFileType.Q4_K_S && _iAttentionV < 4)
                        type = GgmlType.Q5_K;
                    if (_is70B && type == GgmlType.Q4_K)
                        type = GgmlType.Q5_K;
                    _iAttentionV++;
                    return type;
                case Category.FfnDown:
                    int layer = _iFfnDown++, layers = _model.BlockCount;
                    if ((_ftype is LlamaFileType.Q4_K_M or LlamaFileType.Q5_K_M) && UseMoreBits(layer, layers))
                        return GgmlType.Q6_K;
                    if (_ftype == LlamaFileType.Q4_K_S && layer < layers / 8)
                        return GgmlType.Q5_K;
                    return type;
                default:
                    return type;
            }
        }

        private static GgmlType Checked(GgmlType type, GgufTensorSpec tensor)
        {
            if (!Quantize.Supports(type))
                throw new ArgumentException($"Cannot quantize to {GgmlTypes.Name(type)} (tensor \"{tensor.Name}\").");
            if (tensor.Shape[0] % GgmlTypes.BlockSize(type) != 0)
                throw new ArgumentException($"Tensor \"{tensor.Name}\" has rows of {tensor.Shape[0]} elements, not whole {GgmlTypes.Name(type)} blocks of {GgmlTypes.BlockSize(type)}.");
            return type;
        }
    }
}

using ManagedLM.Gguf;
using ManagedLM.Quantization;

namespace ManagedLM.Synthesis;

/// <summary>
/// Writes GGUF models with random weights at given shapes, deterministic by seed: every tensor's F32 values come
/// from its own <see cref="SyntheticTensorStream"/> (std by role, <see cref="SyntheticWeights.ForTensor(string, string)"/>), are
/// quantized as llama-quantize would quantize an F32 file of them (<see cref="QuantizationMix"/>), and are streamed
/// to the output a chunk of rows at a time. With the synthetic fixtures' dimensions, seed, name and vocabulary the
/// output is byte-identical to ../shared/models/synthetic/*.gguf.
/// </summary>
public static class ModelSynthesizer
{
    private const string RopeFreqsTensor = "rope_freqs.weight";
    private const string RopeLongTensor = "rope_factors_long.weight";
    private const string RopeShortTensor = "rope_factors_short.weight";

    /// <summary>
    /// The model's tensors as F32 declarations (GGUF shapes, ne0 first), blocks in layer order, named and shaped as
    /// llama.cpp's converter writes them for the architecture (its loader's <c>load_arch_tensors</c>).
    /// </summary>
    public static IReadOnlyList<GgufTensorSpec> Tensors(SynthesisSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        spec.Validate();
        if (spec.Encoder)
            return EncoderTensors(spec);
        long embd = spec.EmbeddingLength, ff = spec.FeedForwardLength, vocab = spec.VocabSize, hd = spec.HeadDim;
        long qDim = spec.HeadCount * hd, kvDim = spec.HeadCountKv * hd;
        var tensors = new List<GgufTensorSpec> { Spec("token_embd.weight", embd, vocab), Spec("output_norm.weight", embd) };
        if (!spec.TiedEmbeddings)
            tensors.Add(Spec("output.weight", embd, vocab));
        if (spec.RopeScaling is not null)
            tensors.Add(Spec(RopeFreqsTensor, hd / 2));
        if (spec.LongRope is not null)
        {
            tensors.Add(Spec(RopeLongTensor, spec.RotaryDimensions / 2));
            tensors.Add(Spec(RopeShortTensor, spec.RotaryDimensions / 2));
        }
        for (int i = 0; i < spec.BlockCount; i++)
        {
            string b = $"blk.{i}.";
            tensors.Add(Spec(b + "attn_norm.weight", embd));
            if (spec.FusedProjections)
                tensors.Add(Spec(b + "attn_qkv.weight", embd, qDim + 2 * kvDim));
            else
            {
                tensors.Add(Spec(b + "attn_q.weight", embd, qDim));
                tensors.Add(Spec(b + "attn_k.weight", embd, kvDim));
                tensors.Add(Spec(b + "attn_v.weight", embd, kvDim));
            }
            if (spec.Architecture == "qwen2")
            {
                tensors.Add(Spec(b + "attn_q.bias", qDim));
                tensors.Add(Spec(b + "attn_k.bias", kvDim));
                tensors.Add(Spec(b + "attn_v.bias", kvDim));
            }
            if (spec.QueryKeyNorms)
            {
                tensors.Add(Spec(b + "attn_q_norm.weight", hd));
                tensors.Add(Spec(b + "attn_k_norm.weight", hd));
            }
            tensors.Add(Spec(b + "attn_output.weight", qDim, embd));
            if (spec.PostNorms)
                tensors.Add(Spec(b + "post_attention_norm.weight", embd));
            tensors.Add(Spec(b + "ffn_norm.weight", embd));
            if (spec.ExpertCount > 0)
            {
                long n = spec.ExpertCount, eff = spec.ExpertFeedForwardLength;
                tensors.Add(Spec(b + "ffn_gate_inp.weight", embd, n));
                tensors.Add(Spec(b + "ffn_gate_exps.weight", embd, eff, n));
                tensors.Add(Spec(b + "ffn_up_exps.weight", embd, eff, n));
                tensors.Add(Spec(b + "ffn_down_exps.weight", eff, embd, n));
            }
            else if (spec.FusedProjections)
            {
                tensors.Add(Spec(b + "ffn_up.weight", embd, 2 * ff));
                tensors.Add(Spec(b + "ffn_down.weight", ff, embd));
            }
            else
            {
                tensors.Add(Spec(b + "ffn_gate.weight", embd, ff));
                tensors.Add(Spec(b + "ffn_up.weight", embd, ff));
                tensors.Add(Spec(b + "ffn_down.weight", ff, embd));
            }
            if (spec.PostNorms)
                tensors.Add(Spec(b + "post_ffw_norm.weight", embd));
        }
        return tensors;
    }

    // A BERT encoder's tensors as llama.cpp's converter names them, in the fixture's order: the embeddings and their
    // norm sorted by name, then each block's tensors sorted by name.
    private static List<GgufTensorSpec> EncoderTensors(SynthesisSpec spec)
    {
        long embd = spec.EmbeddingLength, ff = spec.FeedForwardLength;
        var tensors = new List<GgufTensorSpec>
        {
            Spec("position_embd.weight", embd, spec.ContextLength), Spec("token_embd.weight", embd, spec.VocabSize),
            Spec("token_embd_norm.bias", embd), Spec("token_embd_norm.weight", embd), Spec("token_types.weight", embd, 2),
        };
        for (int i = 0; i < spec.BlockCount; i++)
        {
            string b = $"blk.{i}.";
            var block = new List<GgufTensorSpec>();
            foreach (string p in new[] { "attn_q", "attn_k", "attn_v", "attn_output" })
                block.AddRange([Spec(b + p + ".weight", embd, embd), Spec(b + p + ".bias", embd)]);
            foreach (string norm in new[] { "attn_output_norm", "layer_output_norm" })
                block.AddRange([Spec(b + norm + ".weight", embd), Spec(b + norm + ".bias", embd)]);
            block.AddRange([Spec(b + "ffn_up.weight", embd, ff), Spec(b + "ffn_up.bias", ff), Spec(b + "ffn_down.weight", ff, embd), Spec(b + "ffn_down.bias", embd)]);
            tensors.AddRange(block.OrderBy(t => t.Name, StringComparer.Ordinal));
        }
        return tensors;
    }

    /// <summary>The <c>tokenizer.*</c> pairs of a vocabulary donor, in its order.</summary>
    public static List<KeyValuePair<string, GgufValue>> TokenizerMetadata(GgufMetadata vocab)
    {
        ArgumentNullException.ThrowIfNull(vocab);
        return vocab.ToKeyValueList().Where(p => p.Key.StartsWith("tokenizer.", StringComparison.Ordinal)).ToList();
    }

    /// <summary>
    /// The metadata, in the order of the fixtures' generator: general.architecture/type/name, the hyperparameters
    /// (as convert_hf_to_gguf.py names them), <paramref name="tokenizer"/>, llama's vocab_size and rope.dimension_count,
    /// then general.quantization_version and general.file_type.
    /// </summary>
    /// <exception cref="ArgumentException">The tokenizer has no token list, or not <see cref="SynthesisSpec.VocabSize"/> tokens.</exception>
    public static List<KeyValuePair<string, GgufValue>> Metadata(SynthesisSpec spec, string name, IReadOnlyList<KeyValuePair<string, GgufValue>> tokenizer, LlamaFileType fileType)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(tokenizer);
        spec.Validate();
        var tokens = tokenizer.FirstOrDefault(p => p.Key == "tokenizer.ggml.tokens").Value?.AsArray
            ?? throw new ArgumentException("The vocabulary has no tokenizer.ggml.tokens array.", nameof(tokenizer));
        if (tokens.Count != spec.VocabSize)
            throw new ArgumentException($"The vocabulary has {tokens.Count} tokens but the model's vocabulary size is {spec.VocabSize}.", nameof(tokenizer));

        string a = spec.Architecture;
        var m = new List<KeyValuePair<string, GgufValue>>();
        void Add(string key, GgufValue value) => m.Add(KeyValuePair.Create(key, value));
        Add("general.architecture", GgufValue.Of(a));
        Add("general.type", GgufValue.Of("model"));
        Add("general.name", GgufValue.Of(name));
        Add($"{a}.context_length", GgufValue.Of((uint)spec.ContextLength));
        Add($"{a}.embedding_length", GgufValue.Of((uint)spec.EmbeddingLength));
        Add($"{a}.block_count", GgufValue.Of((uint)spec.BlockCount));
        Add($"{a}.feed_forward_length", GgufValue.Of((uint)spec.FeedForwardLength));
        Add($"{a}.attention.head_count", GgufValue.Of((uint)spec.HeadCount));
        if (spec.Encoder)
        {
            // convert_hf_to_gguf.py's BERT keys: no KV heads, no RoPE, a LayerNorm epsilon, bidirectional, the pooling.
            Add($"{a}.attention.layer_norm_epsilon", GgufValue.Of(spec.RmsNormEps));
            m.AddRange(tokenizer);
            Add($"{a}.attention.causal", GgufValue.Of(false));
            if (spec.PoolingType is { } pooling)
                Add($"{a}.pooling_type", GgufValue.Of((uint)pooling));
            ConversionOutput.AddFileType(m, fileType);
            return m;
        }
        Add($"{a}.attention.head_count_kv", GgufValue.Of((uint)spec.HeadCountKv));
        Add($"{a}.rope.freq_base", GgufValue.Of(spec.RopeFreqBase));
        Add($"{a}.attention.layer_norm_rms_epsilon", GgufValue.Of(spec.RmsNormEps));
        // llama.cpp assumes n_embd / n_head otherwise; the qwen3 and gemma converters always write them.
        if (a is "qwen3" or "qwen3moe" or "gemma2" or "gemma3" || spec.HeadDim * spec.HeadCount != spec.EmbeddingLength)
        {
            Add($"{a}.attention.key_length", GgufValue.Of((uint)spec.HeadDim));
            Add($"{a}.attention.value_length", GgufValue.Of((uint)spec.HeadDim));
        }
        m.AddRange(tokenizer);
        // The family's keys, in the fixtures' order (which holds every family's keys in one sequence).
        if (a is "llama" or "granite")
            Add($"{a}.vocab_size", GgufValue.Of((uint)spec.VocabSize));
        if (a is "llama" or "granite" or "phi3" || spec.RopeDimensions is not null)
            Add($"{a}.rope.dimension_count", GgufValue.Of((uint)spec.RotaryDimensions));
        if (spec.LinearRopeScale is { } linear)
        {
            Add($"{a}.rope.scaling.type", GgufValue.Of("linear"));
            Add($"{a}.rope.scaling.factor", GgufValue.Of(linear));
        }
        if (a == "phi3")
            Add($"{a}.rope.scaling.original_context_length", GgufValue.Of((uint)(spec.RopeOriginalContextLength ?? spec.ContextLength)));
        if (a is "gemma2" or "phi3" || spec.SlidingWindow > 0)
            Add($"{a}.attention.sliding_window", GgufValue.Of((uint)spec.SlidingWindow));
        if (spec.SlidingWindowPattern is { } pattern)
            Add($"{a}.attention.sliding_window_pattern", GgufValue.Of((uint)pattern));
        if (spec.LocalRopeFreqBase is { } localBase)
            Add($"{a}.rope.freq_base_swa", GgufValue.Of(localBase));
        if (spec.AttentionSoftCap > 0)
            Add($"{a}.attn_logit_softcapping", GgufValue.Of(spec.AttentionSoftCap));
        if (spec.FinalLogitSoftCap > 0)
            Add($"{a}.final_logit_softcapping", GgufValue.Of(spec.FinalLogitSoftCap));
        if (spec.LongRope is { } longRope)
            Add($"{a}.rope.scaling.attn_factor", GgufValue.Of(longRope.AttentionFactor));
        if (a == "granite")
        {
            Add($"{a}.attention.scale", GgufValue.Of(spec.AttentionScale ?? 1f / MathF.Sqrt(spec.HeadDim)));
            Add($"{a}.embedding_scale", GgufValue.Of(spec.EmbeddingScale ?? 1f));
            Add($"{a}.residual_scale", GgufValue.Of(spec.ResidualScale ?? 1f));
            Add($"{a}.logit_scale", GgufValue.Of(spec.LogitScale ?? 1f));
        }
        if (spec.ExpertCount > 0)
        {
            Add($"{a}.expert_count", GgufValue.Of((uint)spec.ExpertCount));
            Add($"{a}.expert_used_count", GgufValue.Of((uint)spec.ExpertUsedCount));
            Add($"{a}.expert_feed_forward_length", GgufValue.Of((uint)spec.ExpertFeedForwardLength));
        }
        ConversionOutput.AddFileType(m, fileType);
        return m;
    }

    /// <summary>Writes the model to <paramref name="output"/> (left open).</summary>
    /// <param name="spec">The dimensions.</param>
    /// <param name="name">general.name.</param>
    /// <param name="seed">Seed of every tensor's stream.</param>
    /// <param name="options">File type and overrides, as for llama-quantize.</param>
    /// <param name="tokenizer">The <c>tokenizer.*</c> pairs (<see cref="TokenizerMetadata"/>); their token count must be the vocabulary size.</param>
    /// <param name="output">Where the GGUF bytes go.</param>
    /// <param name="progress">Called before each tensor.</param>
    public static ConversionSummary Write(SynthesisSpec spec, string name, ulong seed, QuantizationOptions options,
        IReadOnlyList<KeyValuePair<string, GgufValue>> tokenizer, Stream output, TensorProgress? progress = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(output);
        var metadata = Metadata(spec, name, tokenizer, options.FileType);
        var model = new MixModel(spec.Architecture, spec.BlockCount, spec.HeadCount, spec.HeadCountKv);
        var plan = QuantizationMix.Plan(options, model, Tensors(spec));
        float[]? ropeFactors = spec.RopeScaling?.Factors(spec.HeadDim, spec.RopeFreqBase);

        using var writer = new QuantizingWriter(output, metadata, plan, options.Threads, progress);
        foreach (var tensor in plan)
        {
            float[]? fixedValues = tensor.Name switch
            {
                RopeFreqsTensor => ropeFactors,
                RopeLongTensor => spec.LongRope!.LongFactors.ToArray(),
                RopeShortTensor => spec.LongRope!.ShortFactors.ToArray(),
                _ => null,
            };
            if (fixedValues is not null)
            {
                writer.WriteRows((_, rows) => fixedValues.CopyTo(rows));
                continue;
            }
            var (kind, std) = SyntheticWeights.ForTensor(tensor.Name, spec.Architecture);
            if (tensor.Name.EndsWith(".post_attention_norm.weight", StringComparison.Ordinal) || tensor.Name.EndsWith(".post_ffw_norm.weight", StringComparison.Ordinal))
                (kind, std) = (SyntheticTensorKind.ScaledNormWeight, spec.PostNormScale);
            var stream = new SyntheticTensorStream(seed, tensor.Name, kind, std);
            if (tensor.Name.EndsWith(".attn_qkv.weight", StringComparison.Ordinal))
            {
                // q and k rows at the q/k std, then the v rows at attn_v's.
                long qkRows = (long)(spec.HeadCount + spec.HeadCountKv) * spec.HeadDim;
                double vStd = SyntheticWeights.ForTensor("attn_v.weight", spec.Architecture).Std;
                int width = spec.EmbeddingLength;
                writer.WriteRows((first, rows) =>
                {
                    for (int r = 0; r < rows.Length / width; r++)
                        stream.Fill(rows.Slice(r * width, width), first + r < qkRows ? std : vStd);
                });
                continue;
            }
            writer.WriteRows((_, rows) => stream.Fill(rows));
        }
        return writer.Finish();
    }

    /// <summary>Writes the model to the file at <paramref name="path"/> (created with its folder; replaced only when complete).</summary>
    public static ConversionSummary WriteFile(SynthesisSpec spec, string name, ulong seed, QuantizationOptions options,
        IReadOnlyList<KeyValuePair<string, GgufValue>> tokenizer, string path, TensorProgress? progress = null) =>
        ConversionOutput.WriteFile(path, stream => Write(spec, name, seed, options, tokenizer, stream, progress));

    private static GgufTensorSpec Spec(string name, params long[] shape) => new(name, Kernels.GgmlType.F32, shape);
}

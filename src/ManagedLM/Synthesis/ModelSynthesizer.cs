using ManagedLM.Gguf;
using ManagedLM.Quantization;

namespace ManagedLM.Synthesis;

/// <summary>
/// Writes GGUF models with random weights at given shapes, deterministic by seed: every tensor's F32 values come
/// from its own <see cref="SyntheticTensorStream"/> (std by role, <see cref="SyntheticWeights.ForTensor"/>), are
/// quantized as llama-quantize would quantize an F32 file of them (<see cref="QuantizationMix"/>), and are streamed
/// to the output a chunk of rows at a time. With the synthetic fixtures' dimensions, seed, name and vocabulary the
/// output is byte-identical to ../shared/models/synthetic/*.gguf.
/// </summary>
public static class ModelSynthesizer
{
    private const string RopeFreqsTensor = "rope_freqs.weight";

    /// <summary>The model's tensors as F32 declarations (GGUF shapes, ne0 first), blocks in layer order.</summary>
    public static IReadOnlyList<GgufTensorSpec> Tensors(SynthesisSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        spec.Validate();
        long embd = spec.EmbeddingLength, ff = spec.FeedForwardLength, vocab = spec.VocabSize, hd = spec.HeadDim;
        long qDim = spec.HeadCount * hd, kvDim = spec.HeadCountKv * hd;
        var tensors = new List<GgufTensorSpec> { Spec("token_embd.weight", embd, vocab), Spec("output_norm.weight", embd) };
        if (!spec.TiedEmbeddings)
            tensors.Add(Spec("output.weight", embd, vocab));
        if (spec.RopeScaling is not null)
            tensors.Add(Spec(RopeFreqsTensor, hd / 2));
        for (int i = 0; i < spec.BlockCount; i++)
        {
            string b = $"blk.{i}.";
            tensors.Add(Spec(b + "attn_norm.weight", embd));
            tensors.Add(Spec(b + "attn_q.weight", embd, qDim));
            tensors.Add(Spec(b + "attn_k.weight", embd, kvDim));
            tensors.Add(Spec(b + "attn_v.weight", embd, kvDim));
            if (spec.Architecture == "qwen2")
            {
                tensors.Add(Spec(b + "attn_q.bias", qDim));
                tensors.Add(Spec(b + "attn_k.bias", kvDim));
                tensors.Add(Spec(b + "attn_v.bias", kvDim));
            }
            if (spec.Architecture == "qwen3")
            {
                tensors.Add(Spec(b + "attn_q_norm.weight", hd));
                tensors.Add(Spec(b + "attn_k_norm.weight", hd));
            }
            tensors.Add(Spec(b + "attn_output.weight", qDim, embd));
            tensors.Add(Spec(b + "ffn_norm.weight", embd));
            tensors.Add(Spec(b + "ffn_gate.weight", embd, ff));
            tensors.Add(Spec(b + "ffn_up.weight", embd, ff));
            tensors.Add(Spec(b + "ffn_down.weight", ff, embd));
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
        Add($"{a}.attention.head_count_kv", GgufValue.Of((uint)spec.HeadCountKv));
        Add($"{a}.rope.freq_base", GgufValue.Of(spec.RopeFreqBase));
        Add($"{a}.attention.layer_norm_rms_epsilon", GgufValue.Of(spec.RmsNormEps));
        // llama.cpp assumes n_embd / n_head otherwise; qwen3's converter always writes them.
        if (a == "qwen3" || spec.HeadDim * spec.HeadCount != spec.EmbeddingLength)
        {
            Add($"{a}.attention.key_length", GgufValue.Of((uint)spec.HeadDim));
            Add($"{a}.attention.value_length", GgufValue.Of((uint)spec.HeadDim));
        }
        m.AddRange(tokenizer);
        if (a == "llama")
        {
            Add("llama.vocab_size", GgufValue.Of((uint)spec.VocabSize));
            Add("llama.rope.dimension_count", GgufValue.Of((uint)spec.HeadDim));
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
            if (tensor.Name == RopeFreqsTensor)
            {
                writer.WriteRows((_, rows) => ropeFactors!.CopyTo(rows));
                continue;
            }
            var (kind, std) = SyntheticWeights.ForTensor(tensor.Name);
            var stream = new SyntheticTensorStream(seed, tensor.Name, kind, std);
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

using System.Collections.Immutable;
using ManagedLM.Gguf;
using ManagedLM.Kernels;

namespace ManagedLM.Model;

/// <summary>Hyper-parameters of a decoder-only transformer, read from GGUF metadata.</summary>
public sealed record ModelConfig
{
    /// <summary>Architectures this engine runs.</summary>
    public static readonly ImmutableArray<string> SupportedArchitectures = ["llama", "qwen2", "qwen3"];

    public required string Architecture { get; init; }
    /// <summary>Model width (n_embd).</summary>
    public required int EmbeddingLength { get; init; }
    /// <summary>Hidden width of the feed-forward block (n_ff).</summary>
    public required int FeedForwardLength { get; init; }
    public required int BlockCount { get; init; }
    public required int HeadCount { get; init; }
    public required int KvHeadCount { get; init; }
    /// <summary>Width of one attention head (key_length; n_embd / n_head unless the file says otherwise).</summary>
    public required int HeadDim { get; init; }
    /// <summary>Context length the model was trained for.</summary>
    public required int ContextLength { get; init; }
    public required int VocabSize { get; init; }
    public required float RmsNormEps { get; init; }
    public required float RopeFreqBase { get; init; }
    /// <summary>Dimensions of each head that RoPE rotates (≤ HeadDim).</summary>
    public required int RopeDimensions { get; init; }
    /// <summary>Linear RoPE scaling: positions are multiplied by this (1 / scaling factor).</summary>
    public required float RopePositionScale { get; init; }
    public required RopeLayout RopeLayout { get; init; }

    /// <summary>n_head · head_dim: width of the query projection and of the attention output.</summary>
    public int QueryLength => HeadCount * HeadDim;
    /// <summary>n_kv_head · head_dim: width of one cached key or value row.</summary>
    public int KvLength => KvHeadCount * HeadDim;

    /// <summary>Reads the configuration; <see cref="NotSupportedException"/> for an architecture this engine does not run.</summary>
    public static ModelConfig FromGguf(GgufFile file)
    {
        var m = file.Metadata;
        string arch = m.GetString("general.architecture");
        if (!SupportedArchitectures.Contains(arch))
            throw new NotSupportedException(
                $"Model architecture \"{arch}\" is not supported; supported: {string.Join(", ", SupportedArchitectures)}.");

        int embd = Positive(m, $"{arch}.embedding_length");
        int heads = Positive(m, $"{arch}.attention.head_count");
        int kvHeads = m.GetInt32($"{arch}.attention.head_count_kv", heads);
        int headDim = m.GetInt32($"{arch}.attention.key_length", embd / heads);
        int valueDim = m.GetInt32($"{arch}.attention.value_length", headDim);
        var headEntry = m.FindEntry($"{arch}.attention.head_count")!;
        if (kvHeads <= 0 || heads % kvHeads != 0)
            throw new GgufFormatException(headEntry.Offset, $"head_count {heads} is not a multiple of head_count_kv {kvHeads}");
        if (headDim <= 0 || valueDim != headDim)
            throw new NotSupportedException($"Attention with key length {headDim} and value length {valueDim} is not supported (they must be equal).");

        int ropeDims = m.GetInt32($"{arch}.rope.dimension_count", headDim);
        if (ropeDims <= 0 || ropeDims > headDim || ropeDims % 2 != 0)
            throw new GgufFormatException(headEntry.Offset, $"rope.dimension_count {ropeDims} must be even and at most the head size {headDim}");

        int vocab = m.GetInt32OrNull($"{arch}.vocab_size")
            ?? m.GetArrayOrNull<string>("tokenizer.ggml.tokens")?.Length
            ?? (int)file.GetTensor("token_embd.weight").Rows;

        return new ModelConfig
        {
            Architecture = arch,
            EmbeddingLength = embd,
            FeedForwardLength = Positive(m, $"{arch}.feed_forward_length"),
            BlockCount = Positive(m, $"{arch}.block_count"),
            HeadCount = heads,
            KvHeadCount = kvHeads,
            HeadDim = headDim,
            ContextLength = Positive(m, $"{arch}.context_length"),
            VocabSize = vocab,
            RmsNormEps = m.GetSingle($"{arch}.attention.layer_norm_rms_epsilon"),
            RopeFreqBase = m.GetSingle($"{arch}.rope.freq_base", 10000f),
            RopeDimensions = ropeDims,
            RopePositionScale = ReadRopePositionScale(m, arch),
            RopeLayout = arch == "llama" ? RopeLayout.Normal : RopeLayout.NeoX,
        };
    }

    private static float ReadRopePositionScale(GgufMetadata m, string arch)
    {
        string type = m.GetStringOrNull($"{arch}.rope.scaling.type") ?? "none";
        float factor = m.GetSingle($"{arch}.rope.scaling.factor", 0f);
        if (factor == 0f)
            factor = m.GetSingle($"{arch}.rope.scale_linear", 0f);
        return type switch
        {
            "none" => 1f,
            "linear" => factor > 0 ? 1f / factor : 1f,
            _ => throw new NotSupportedException($"RoPE scaling \"{type}\" is not supported (supported: none, linear)."),
        };
    }

    private static int Positive(GgufMetadata m, string key)
    {
        int v = m.GetInt32(key);
        if (v <= 0)
            throw new GgufFormatException(m.FindEntry(key)!.Offset, $"\"{key}\" must be positive, found {v}");
        return v;
    }
}

using System.Collections.Immutable;
using System.Globalization;
using ManagedLM.Gguf;
using ManagedLM.Kernels;

namespace ManagedLM.Model;

/// <summary>Hyper-parameters of a transformer (a decoder, or an encoder such as BERT), read from GGUF metadata.</summary>
public sealed record ModelConfig
{
    /// <summary>Architectures this engine runs.</summary>
    public static readonly ImmutableArray<string> SupportedArchitectures = [.. ModelArchitecture.All.Keys.Order(StringComparer.Ordinal)];

    public required string Architecture { get; init; }
    /// <summary>What the family is (norms, gate, RoPE pairing, window pattern), as data.</summary>
    public required ModelArchitecture Family { get; init; }
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
    /// <summary>The epsilon of the model's norms: RMSNorm's <c>attention.layer_norm_rms_epsilon</c>, an encoder's LayerNorm <c>attention.layer_norm_epsilon</c>.</summary>
    public required float RmsNormEps { get; init; }
    public required float RopeFreqBase { get; init; }
    /// <summary>Dimensions of each head that RoPE rotates (≤ HeadDim).</summary>
    public required int RopeDimensions { get; init; }
    /// <summary>How RoPE is stretched (linear, YaRN, longrope's magnitude) on the global layers.</summary>
    public required RopeScaling RopeScaling { get; init; }
    /// <summary>Linear RoPE scaling: positions are multiplied by this (1 / scaling factor).</summary>
    public float RopePositionScale => RopeScaling.FrequencyScale;
    public required RopeLayout RopeLayout { get; init; }
    /// <summary>The RoPE base of sliding layers that rotate on their own (Gemma 3's <c>rope.freq_base_swa</c>), else null.</summary>
    public float? LocalRopeFreqBase { get; init; }
    /// <summary>The context the model was trained for before RoPE scaling (<c>rope.scaling.original_context_length</c>), or 0.</summary>
    public int RopeOriginalContext { get; init; }

    /// <summary>Multiplier on the token embeddings (Gemma √n_embd, Granite's <c>embedding_scale</c>); 1 for most.</summary>
    public float EmbeddingScale { get; init; } = 1;
    /// <summary>Multiplier on each block's attention and feed-forward output before the residual (Granite); 1 for most.</summary>
    public float ResidualScale { get; init; } = 1;
    /// <summary>Divisor of the logits (Granite's <c>logit_scale</c>); 1 for most.</summary>
    public float LogitScale { get; init; } = 1;
    /// <summary>Multiplier on q·k (1/√head_dim unless the family or the file's <c>attention.scale</c> says otherwise).</summary>
    public float AttentionScale { get; init; }
    /// <summary>Soft cap of the attention scores (Gemma 2); 0 for none.</summary>
    public float AttentionSoftCap { get; init; }
    /// <summary>Soft cap of the logits (Gemma 2); 0 for none.</summary>
    public float FinalLogitSoftCap { get; init; }
    /// <summary>Positions a sliding layer's query sees (itself included); 0 when no layer slides.</summary>
    public int SlidingWindow { get; init; }
    /// <summary>Layer l slides iff l mod this &lt; this − 1 (when <see cref="SlidingWindow"/> &gt; 0).</summary>
    public int SlidingWindowPattern { get; init; }
    /// <summary>Experts per mixture-of-experts block (0: dense feed-forward).</summary>
    public int ExpertCount { get; init; }
    /// <summary>Experts each token is routed to.</summary>
    public int ExpertUsedCount { get; init; }
    /// <summary>Hidden width of one expert's feed-forward.</summary>
    public int ExpertFeedForwardLength { get; init; }
    /// <summary>Hidden width of the shared expert (Qwen2 MoE), or 0.</summary>
    public int SharedExpertFeedForwardLength { get; init; }
    /// <summary>Multiplier on the selected experts' weights (<c>expert_weights_scale</c>); 1 for most.</summary>
    public float ExpertWeightsScale { get; init; } = 1;

    /// <summary>Whether a position attends only to itself and earlier ones (<c>attention.causal</c>; true unless the family is an encoder).</summary>
    public bool CausalAttention { get; init; } = true;
    /// <summary>How embeddings pool a sequence: the file's <c>pooling_type</c>, else the family's default.</summary>
    public PoolingType Pooling { get; init; } = PoolingType.Last;

    /// <summary>Whether layer <paramref name="layer"/> attends over a sliding window.</summary>
    public bool IsSlidingLayer(int layer) => SlidingWindow > 0 && layer % SlidingWindowPattern < SlidingWindowPattern - 1;

    /// <summary>Sets of RoPE angles a position needs: 1, or 2 when sliding layers rotate on their own base (Gemma 3).</summary>
    public int RopeVariants => LocalRopeFreqBase is null ? 1 : 2;

    /// <summary>Per layer, the window of a sliding layer, 0 for a global one.</summary>
    public ImmutableArray<int> LayerWindows => [.. Enumerable.Range(0, BlockCount).Select(l => IsSlidingLayer(l) ? SlidingWindow : 0)];

    /// <summary>The score shaping of layer <paramref name="layer"/>'s attention.</summary>
    public ScoreShape ScoreShape(int layer) => new(AttentionSoftCap, IsSlidingLayer(layer) ? SlidingWindow : 0);

    /// <summary>n_head · head_dim: width of the query projection and of the attention output.</summary>
    public int QueryLength => HeadCount * HeadDim;
    /// <summary>n_kv_head · head_dim: width of one cached key or value row.</summary>
    public int KvLength => KvHeadCount * HeadDim;

    /// <summary>
    /// Reads the configuration; <see cref="NotSupportedException"/> for an architecture this engine does not run, and
    /// <see cref="GgufFormatException"/> naming the key and value for a count that does not fit an int or a width that
    /// overflows, and for a float hyper-parameter that would poison every logit (a NaN, ∞, zero or negative epsilon,
    /// RoPE base or scaling factor).
    /// </summary>
    public static ModelConfig FromGguf(GgufFile file)
    {
        var m = file.Metadata;
        string arch = m.GetString("general.architecture");
        if (!ModelArchitecture.All.TryGetValue(arch, out var family))
            throw new NotSupportedException(
                $"Model architecture \"{arch}\" is not supported; supported: {string.Join(", ", SupportedArchitectures)}.");

        int embd = Positive(m, $"{arch}.embedding_length", MaxWidth);
        int heads = Positive(m, $"{arch}.attention.head_count");
        int kvHeads = m.GetInt32($"{arch}.attention.head_count_kv", heads);
        int headDim = m.GetInt32($"{arch}.attention.key_length", embd / heads);
        int valueDim = m.GetInt32($"{arch}.attention.value_length", headDim);
        var headEntry = m.FindEntry($"{arch}.attention.head_count")!;
        if (kvHeads <= 0 || heads % kvHeads != 0)
            throw new GgufFormatException(headEntry.Offset, $"head_count {heads} is not a multiple of head_count_kv {kvHeads}");
        if (headDim <= 0)
            throw new GgufFormatException(headEntry.Offset, $"the head size is {headDim} (embedding_length {embd} / head_count {heads}, or attention.key_length): it must be positive");
        if (valueDim != headDim)
            throw new NotSupportedException($"Attention with key length {headDim} and value length {valueDim} is not supported (they must be equal).");
        if ((long)heads * headDim > MaxWidth)
            throw new GgufFormatException(headEntry.Offset, $"head_count {heads} × head size {headDim} is larger than {MaxWidth}");

        int ropeDims = m.GetInt32($"{arch}.rope.dimension_count", headDim);
        if (ropeDims <= 0 || ropeDims > headDim || ropeDims % 2 != 0)
            throw new GgufFormatException(headEntry.Offset, $"rope.dimension_count {ropeDims} must be even and at most the head size {headDim}");

        int vocab = m.ContainsKey($"{arch}.vocab_size") ? Positive(m, $"{arch}.vocab_size")
            : m.FindEntry("tokenizer.ggml.tokens")?.Value.AsArray?.Count
            ?? (int)Math.Min(int.MaxValue, (file.FindTensor("token_embd.weight")
                ?? throw new GgufFormatException(file.DataOffset, "missing required tensor \"token_embd.weight\"")).Rows);

        int blocks = PresentBlockCount(file, $"{arch}.block_count");
        int ff = Positive(m, $"{arch}.feed_forward_length", MaxWidth);
        int window = family.SlidingWindowPattern > 0 ? NonNegative(m, $"{arch}.attention.sliding_window") : 0;
        int pattern = window > 0 ? m.GetInt32($"{arch}.attention.sliding_window_pattern", family.SlidingWindowPattern) : 0;
        if (window > 0 && pattern < 1)
            throw new GgufFormatException(m.FindEntry($"{arch}.attention.sliding_window_pattern")!.Offset, $"sliding_window_pattern {pattern} must be at least 1");
        var (experts, used, expertFf) = ReadExperts(file, arch, ff);
        float attentionScale = family.AttentionScale(blocks, embd, heads, headDim);
        return new ModelConfig
        {
            Architecture = arch,
            Family = family,
            EmbeddingLength = embd,
            FeedForwardLength = ff,
            BlockCount = blocks,
            HeadCount = heads,
            KvHeadCount = kvHeads,
            HeadDim = headDim,
            ContextLength = Positive(m, $"{arch}.context_length"),
            VocabSize = vocab,
            RmsNormEps = PositiveFinite(m, family.Encoder ? $"{arch}.attention.layer_norm_epsilon" : $"{arch}.attention.layer_norm_rms_epsilon", null),
            RopeFreqBase = PositiveFinite(m, $"{arch}.rope.freq_base", 10000f),
            RopeDimensions = ropeDims,
            RopeScaling = ReadRopeScaling(m, arch),
            RopeLayout = family.RopeLayout,
            LocalRopeFreqBase = family.LocalRopeOnSlidingLayers && window > 0 ? PositiveFinite(m, $"{arch}.rope.freq_base_swa", 10000f) : null,
            RopeOriginalContext = NonNegative(m, $"{arch}.rope.scaling.original_context_length"),
            EmbeddingScale = PositiveFinite(m, $"{arch}.embedding_scale", family.ScaleEmbeddingsByWidth ? MathF.Sqrt(embd) : 1f),
            ResidualScale = PositiveFinite(m, $"{arch}.residual_scale", 1f),
            LogitScale = Divisor(m, $"{arch}.logit_scale", 1f),
            AttentionScale = PositiveFinite(m, $"{arch}.attention.scale", attentionScale),
            AttentionSoftCap = m.ContainsKey($"{arch}.attn_logit_softcapping") ? Divisor(m, $"{arch}.attn_logit_softcapping", 0f, orZero: true) : 0f,
            FinalLogitSoftCap = m.ContainsKey($"{arch}.final_logit_softcapping") ? Divisor(m, $"{arch}.final_logit_softcapping", 0f, orZero: true) : 0f,
            SlidingWindow = window,
            SlidingWindowPattern = pattern,
            ExpertCount = experts,
            ExpertUsedCount = used,
            ExpertFeedForwardLength = expertFf,
            SharedExpertFeedForwardLength = experts == 0 ? 0 : WidthOf(file, "blk.0.ffn_gate_shexp.weight", $"{arch}.expert_shared_feed_forward_length", ff),
            ExpertWeightsScale = experts == 0 ? 1 : PositiveFinite(m, $"{arch}.expert_weights_scale", 1f),
            CausalAttention = m.GetBoolean($"{arch}.attention.causal", !family.Encoder),
            Pooling = ReadPooling(m, $"{arch}.pooling_type", family.DefaultPooling),
        };
    }

    // pooling_type: 0 none, 1 mean, 2 cls, 3 last, 4 rank; absent: the family's default.
    private static PoolingType ReadPooling(GgufMetadata m, string key, PoolingType defaultValue)
    {
        if (!m.ContainsKey(key))
            return defaultValue;
        int v = m.GetInt32(key);
        if (!Enum.IsDefined((PoolingType)v))
            throw new GgufFormatException(m.FindEntry(key)!.Offset, $"\"{key}\" = {v}: it must be 0 (none), 1 (mean), 2 (cls), 3 (last) or 4 (rank)");
        return (PoolingType)v;
    }

    // expert_count (0 or absent: dense), expert_used_count in [1, count], and the experts' hidden width.
    private static (int Count, int Used, int FeedForward) ReadExperts(GgufFile file, string arch, int ff)
    {
        var m = file.Metadata;
        int count = NonNegative(m, $"{arch}.expert_count", max: 4096);
        if (count == 0)
            return (0, 0, 0);
        int used = Positive(m, $"{arch}.expert_used_count", count);
        return (count, used, WidthOf(file, "blk.0.ffn_gate_exps.weight", $"{arch}.expert_feed_forward_length", ff));
    }

    // A hidden width from its key; else the rows of the tensor that has it (files whose key llama.cpp derives); else n_ff.
    private static int WidthOf(GgufFile file, string tensor, string key, int ff) =>
        file.Metadata.ContainsKey(key) ? Positive(file.Metadata, key, MaxWidth)
        : file.FindTensor(tensor) is { Shape.Count: >= 2 } t && t.Shape[1] is > 0 and <= MaxWidth ? (int)t.Shape[1] : ff;

    private static RopeScaling ReadRopeScaling(GgufMetadata m, string arch)
    {
        string type = m.GetStringOrNull($"{arch}.rope.scaling.type") ?? "none";
        string key = $"{arch}.rope.scaling.factor";
        float factor = ScalingFactor(m, key);
        if (factor == 0f)
            factor = ScalingFactor(m, key = $"{arch}.rope.scale_linear");
        float frequencyScale = type switch
        {
            "none" => 1f,
            "linear" or "yarn" or "longrope" => factor > 0 ? 1f / factor : 1f,
            _ => throw new NotSupportedException($"RoPE scaling \"{type}\" is not supported (supported: none, linear, yarn, longrope)."),
        };
        if (!float.IsFinite(frequencyScale))
            throw Invalid(m, key, factor, "so small that 1 / factor overflows");
        bool yarn = type == "yarn";
        return new RopeScaling(frequencyScale, ExtrapolationFactor: yarn ? 1f : 0f,
            AttentionFactor: PositiveFinite(m, $"{arch}.rope.scaling.attn_factor", 1f),
            BetaFast: PositiveFinite(m, $"{arch}.rope.scaling.yarn_beta_fast", 32f),
            BetaSlow: PositiveFinite(m, $"{arch}.rope.scaling.yarn_beta_slow", 1f),
            OriginalContext: yarn ? Positive(m, $"{arch}.rope.scaling.original_context_length") : NonNegative(m, $"{arch}.rope.scaling.original_context_length"));
    }

    // A RoPE scaling factor: absent or 0 means none; otherwise finite and positive.
    private static float ScalingFactor(GgufMetadata m, string key)
    {
        float factor = m.GetSingle(key, 0f);
        if (!float.IsFinite(factor) || factor < 0)
            throw Invalid(m, key, factor, "it must be a finite number ≥ 0 (0: no scaling)");
        return factor;
    }

    /// <summary>Widest row (n_head·head_dim, n_embd, n_ff) a file may declare: every buffer size derived from one fits an int.</summary>
    private const int MaxWidth = 1 << 24;

    // A float hyper-parameter that divides or scales every activation: NaN, ∞, 0 or a negative value would make every logit NaN.
    private static float PositiveFinite(GgufMetadata m, string key, float? defaultValue)
    {
        float v = defaultValue is { } d ? m.GetSingle(key, d) : m.GetSingle(key);
        if (!float.IsFinite(v) || v <= 0)
            throw Invalid(m, key, v, "it must be a positive finite number");
        return v;
    }

    private static GgufFormatException Invalid(GgufMetadata m, string key, float value, string why) =>
        new(m.FindEntry(key)?.Offset ?? 0, $"\"{key}\" = {value.ToString(CultureInfo.InvariantCulture)}: {why}");

    // block_count, checked against the blocks whose tensors exist (blk.0. to blk.N-1.) before anything is sized by it.
    private static int PresentBlockCount(GgufFile file, string key)
    {
        int count = Positive(file.Metadata, key);
        var present = new HashSet<int>();
        foreach (var t in file.Tensors)
        {
            if (t.Name.StartsWith("blk.", StringComparison.Ordinal) && t.Name.IndexOf('.', 4) is int dot and > 4
                && int.TryParse(t.Name.AsSpan(4, dot - 4), NumberStyles.None, CultureInfo.InvariantCulture, out int block))
                present.Add(block);
        }
        int missing = 0;
        while (missing < count && present.Contains(missing))
            missing++;
        if (missing < count)
            throw new GgufFormatException(file.Metadata.FindEntry(key)!.Offset,
                $"\"{key}\" = {count}, but the file has no tensors for block {missing} (no \"blk.{missing}.\" names; it has {present.Count} blocks)");
        return count;
    }

    // A value the pass divides by (a soft cap, the logit scale): positive, finite, with a finite reciprocal; or 0 for none.
    private static float Divisor(GgufMetadata m, string key, float defaultValue, bool orZero = false)
    {
        float v = m.GetSingle(key, defaultValue);
        if (orZero && v == 0)
            return 0;
        if (!float.IsFinite(v) || v <= 0 || !float.IsFinite(1f / v))
            throw Invalid(m, key, v, orZero ? "it must be 0 (none) or a positive number whose reciprocal is finite" : "it must be a positive number whose reciprocal is finite");
        return v;
    }

    private static int NonNegative(GgufMetadata m, string key, int max = int.MaxValue)
    {
        if (!m.ContainsKey(key))
            return 0;
        int v = m.GetInt32(key);
        if (v < 0 || v > max)
            throw new GgufFormatException(m.FindEntry(key)!.Offset, $"\"{key}\" must be in [0, {max}], found {v}");
        return v;
    }

    private static int Positive(GgufMetadata m, string key, int max = int.MaxValue)
    {
        int v = m.GetInt32(key);
        if (v <= 0 || v > max)
            throw new GgufFormatException(m.FindEntry(key)!.Offset, $"\"{key}\" must be in [1, {max}], found {v}");
        return v;
    }
}

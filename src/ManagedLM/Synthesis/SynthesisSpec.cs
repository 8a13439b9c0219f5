using System.Collections.Immutable;
namespace ManagedLM.Synthesis;

/// <summary>The hyperparameters of a synthetic model (the GGUF keys llama.cpp reads).</summary>
public sealed record SynthesisSpec
{
    /// <summary>Architectures the synthesizer writes.</summary>
    public static readonly ImmutableArray<string> Architectures = ["llama", "qwen2", "qwen3", "qwen3moe", "gemma2", "gemma3", "phi3", "granite", "bert"];

    /// <summary>
    /// <c>llama</c>, <c>qwen2</c> (q/k/v biases), <c>qwen3</c> (per-head q/k RMSNorm), <c>qwen3moe</c> (qwen3 attention,
    /// experts), <c>gemma2</c> (post-norms, soft-caps, sliding window), <c>gemma3</c> (post-norms, q/k norms, sliding window,
    /// local RoPE base), <c>phi3</c> (fused attn_qkv and gate/up, longrope), <c>granite</c> (multipliers) or <c>bert</c>
    /// (an encoder: token-type and position embeddings, LayerNorms with biases, biased projections, no RoPE; its
    /// LayerNorm epsilon is <see cref="RmsNormEps"/>).
    /// </summary>
    public required string Architecture { get; init; }
    public required int EmbeddingLength { get; init; }
    /// <summary>n_ff; of a mixture of experts, the dense width llama.cpp's converter writes (experts used × expert width).</summary>
    public required int FeedForwardLength { get; init; }
    public required int BlockCount { get; init; }
    public required int HeadCount { get; init; }
    public required int HeadCountKv { get; init; }
    /// <summary>Size of one attention head (may differ from <see cref="EmbeddingLength"/> / <see cref="HeadCount"/>).</summary>
    public required int HeadDim { get; init; }
    public required int VocabSize { get; init; }
    public required int ContextLength { get; init; }
    public required float RopeFreqBase { get; init; }
    public required float RmsNormEps { get; init; }
    /// <summary>No <c>output.weight</c>: logits come from <c>token_embd.weight</c>.</summary>
    public required bool TiedEmbeddings { get; init; }
    /// <summary>Llama 3 RoPE scaling, written as a <c>rope_freqs.weight</c> tensor; null for none.</summary>
    public Llama3RopeScaling? RopeScaling { get; init; }

    /// <summary>Dimensions of each head that RoPE rotates (<c>rope.dimension_count</c>); null: the whole head.</summary>
    public int? RopeDimensions { get; init; }
    /// <summary>Linear RoPE scaling factor (<c>rope.scaling.type</c> linear; Gemma 3 applies it on global layers only); null for none.</summary>
    public float? LinearRopeScale { get; init; }
    /// <summary>Phi-3's <c>rope.scaling.original_context_length</c>; null: the context length.</summary>
    public int? RopeOriginalContextLength { get; init; }
    /// <summary>Phi-3's longrope: <c>rope_factors_long/short.weight</c> and <c>rope.scaling.attn_factor</c>; null for none.</summary>
    public LongRopeScaling? LongRope { get; init; }
    /// <summary>The RoPE base of sliding layers (Gemma 3's <c>rope.freq_base_swa</c>); null: not written.</summary>
    public float? LocalRopeFreqBase { get; init; }

    /// <summary>Positions a sliding layer sees (<c>attention.sliding_window</c>); 0 for none. Phi-3 writes it, llama.cpp ignores it there.</summary>
    public int SlidingWindow { get; init; }
    /// <summary>Layer l slides iff l mod pattern &lt; pattern − 1; null: not written (the family's default: gemma2 2, gemma3 6).</summary>
    public int? SlidingWindowPattern { get; init; }
    /// <summary>Gemma 2's <c>attn_logit_softcapping</c>; 0 for none.</summary>
    public float AttentionSoftCap { get; init; }
    /// <summary>Gemma's <c>final_logit_softcapping</c>; 0 for none.</summary>
    public float FinalLogitSoftCap { get; init; }
    /// <summary>Gemma's post-attention and post-FFN norm weights are this × (1 + 0.1 n) (the fixtures use 32).</summary>
    public float PostNormScale { get; init; } = 1;

    /// <summary>Experts per block (qwen3moe); 0: dense feed-forward.</summary>
    public int ExpertCount { get; init; }
    /// <summary>Experts each token is routed to.</summary>
    public int ExpertUsedCount { get; init; }
    /// <summary>Hidden width of one expert (<c>expert_feed_forward_length</c>).</summary>
    public int ExpertFeedForwardLength { get; init; }

    /// <summary>Granite's <c>embedding_scale</c>; null: 1.</summary>
    public float? EmbeddingScale { get; init; }
    /// <summary>Granite's <c>residual_scale</c>; null: 1.</summary>
    public float? ResidualScale { get; init; }
    /// <summary>Granite's <c>attention.scale</c>; null: 1/√head_dim.</summary>
    public float? AttentionScale { get; init; }
    /// <summary>Granite's <c>logit_scale</c> (a divisor; llama.cpp requires it); null: 1.</summary>
    public float? LogitScale { get; init; }

    /// <summary>An encoder's <c>pooling_type</c> (llama.cpp's values: 1 mean, 2 CLS, 3 last, 4 rank); null: not written.</summary>
    public int? PoolingType { get; init; }

    /// <summary>An encoder (<c>bert</c>): bidirectional attention, pooled embeddings, no output matrix and no RoPE.</summary>
    public bool Encoder => Architecture == "bert";

    /// <summary>q, k and v in one <c>attn_qkv</c>, gate and up in one <c>ffn_up</c> (Phi-3).</summary>
    public bool FusedProjections => Architecture == "phi3";
    /// <summary>Per-head q/k RMSNorms (Qwen3, Gemma 3).</summary>
    public bool QueryKeyNorms => Architecture is "qwen3" or "qwen3moe" or "gemma3";
    /// <summary>RMSNorms after attention and after the feed-forward (Gemma).</summary>
    public bool PostNorms => Architecture is "gemma2" or "gemma3";
    /// <summary>The rotated dimensions: <see cref="RopeDimensions"/> or the head size.</summary>
    public int RotaryDimensions => RopeDimensions ?? HeadDim;

    /// <summary>A tiny llama (the synthetic fixtures' shape: 256 wide, 1 layer, 4 heads, 2 KV heads, 512 tokens), the base of custom dimensions.</summary>
    public static SynthesisSpec Tiny { get; } = new()
    {
        Architecture = "llama", EmbeddingLength = 256, FeedForwardLength = 256, BlockCount = 1, HeadCount = 4, HeadCountKv = 2,
        HeadDim = 64, VocabSize = 512, ContextLength = 256, RopeFreqBase = 10000f, RmsNormEps = 1e-5f, TiedEmbeddings = false,
    };

    /// <summary>
    /// The base of custom dimensions for <paramref name="architecture"/>: <see cref="Tiny"/> for llama and qwen2/qwen3,
    /// else the dimensions and family hyperparameters of its second-wave fixture (../shared/models/synthetic/README.md:
    /// gemma2 two layers, window 8, soft-caps 10/15; gemma3 window 8 with pattern 2, rope bases 1e6/10000, linear ×8;
    /// phi3 MHA; qwen3moe 8 experts, 2 used, 64 wide; granite's four multipliers; bert 32 wide, 2 layers of 2 heads, the
    /// 30522-token BERT vocabulary, mean pooling), with norm weights near 1.
    /// </summary>
    public static SynthesisSpec TinyOf(string architecture) => architecture switch
    {
        "gemma2" => Tiny with
        {
            Architecture = "gemma2", BlockCount = 2, RmsNormEps = 1e-6f, TiedEmbeddings = true, SlidingWindow = 8,
            AttentionSoftCap = 10, FinalLogitSoftCap = 15,
        },
        "gemma3" => Tiny with
        {
            Architecture = "gemma3", BlockCount = 2, HeadCount = 2, HeadCountKv = 1, HeadDim = 128, RopeFreqBase = 1e6f,
            RmsNormEps = 1e-6f, TiedEmbeddings = true, LinearRopeScale = 8, SlidingWindow = 8, SlidingWindowPattern = 2,
            LocalRopeFreqBase = 10000f,
        },
        "phi3" => Tiny with { Architecture = "phi3", HeadCountKv = 4 },
        "qwen3moe" => Tiny with
        {
            Architecture = "qwen3moe", FeedForwardLength = 128, RopeFreqBase = 1e6f, RmsNormEps = 1e-6f, ExpertCount = 8,
            ExpertUsedCount = 2, ExpertFeedForwardLength = 64,
        },
        "granite" => Tiny with { Architecture = "granite", EmbeddingScale = 12, ResidualScale = 0.22f, AttentionScale = 0.015625f, LogitScale = 8 },
        "bert" => new SynthesisSpec
        {
            Architecture = "bert", EmbeddingLength = 32, FeedForwardLength = 128, BlockCount = 2, HeadCount = 2, HeadCountKv = 2,
            HeadDim = 16, VocabSize = 30522, ContextLength = 512, RopeFreqBase = 10000f, RmsNormEps = 1e-12f, TiedEmbeddings = true,
            PoolingType = 1,
        },
        _ => Tiny with { Architecture = architecture },
    };

    /// <summary>Throws <see cref="ArgumentException"/> for an unknown architecture or a dimension or feature that cannot work.</summary>
    public void Validate()
    {
        if (!Architectures.Contains(Architecture))
            throw new ArgumentException($"Architecture \"{Architecture}\" cannot be synthesized; supported: {string.Join(", ", Architectures)}.");
        foreach (var (name, value) in new[]
        {
            ("embedding length", EmbeddingLength), ("feed-forward length", FeedForwardLength), ("block count", BlockCount),
            ("head count", HeadCount), ("KV head count", HeadCountKv), ("head dim", HeadDim), ("vocabulary size", VocabSize),
            ("context length", ContextLength),
        })
        {
            if (value <= 0)
                throw new ArgumentException($"The {name} must be positive; got {value}.");
        }
        if (HeadCount % HeadCountKv != 0)
            throw new ArgumentException($"The head count {HeadCount} must be a multiple of the KV head count {HeadCountKv}.");
        if (HeadDim % 2 != 0)
            throw new ArgumentException($"The head dim must be even (RoPE rotates pairs); got {HeadDim}.");
        if (!(RopeFreqBase > 0) || !(RmsNormEps > 0))
            throw new ArgumentException($"The RoPE base and the RMSNorm epsilon must be positive; got {RopeFreqBase} and {RmsNormEps}.");
        if (RopeDimensions is { } rd && (rd <= 0 || rd > HeadDim || rd % 2 != 0))
            throw new ArgumentException($"The RoPE dimensions must be even and in [2, head dim {HeadDim}]; got {rd}.");
        ValidateFamily();
    }

    // What llama.cpp's loader of each family needs, and what only some families have.
    private void ValidateFamily()
    {
        string a = Architecture;
        void Only(bool present, string what, params string[] families)
        {
            if (present && !families.Contains(a))
                throw new ArgumentException($"{what} is for {string.Join(" and ", families)} models, not {a}.");
        }
        Only(ExpertCount > 0, "A mixture of experts", "qwen3moe");
        Only(SlidingWindow > 0 || SlidingWindowPattern is not null, "A sliding window", "gemma2", "gemma3", "phi3");
        Only(LocalRopeFreqBase is not null, "A local RoPE base", "gemma2", "gemma3");
        Only(AttentionSoftCap > 0, "An attention soft-cap", "gemma2");
        Only(FinalLogitSoftCap > 0, "A final logit soft-cap", "gemma2", "gemma3");
        Only(LongRope is not null, "Longrope", "phi3");
        Only(RopeOriginalContextLength is not null, "An original context length", "phi3");
        Only(EmbeddingScale is not null || ResidualScale is not null || AttentionScale is not null || LogitScale is not null,
            "Embedding, residual, attention and logit multipliers", "granite");
        Only(RopeScaling is not null, "Llama 3 RoPE scaling", "llama");
        Only(PoolingType is not null, "A pooling type", "bert");
        if (Encoder && (HeadCountKv != HeadCount || HeadDim * HeadCount != EmbeddingLength || !TiedEmbeddings))
            throw new ArgumentException($"A bert model has one KV head per head, heads of n_embd / n_head and no output matrix (tied); got {HeadCount} heads, {HeadCountKv} KV heads of {HeadDim}, n_embd {EmbeddingLength}.");
        if (PoolingType is < 0 or > 4)
            throw new ArgumentException($"The pooling type must be 0 to 4; got {PoolingType}.");
        if (a == "qwen3moe" && (ExpertCount < 2 || ExpertUsedCount < 1 || ExpertUsedCount > ExpertCount || ExpertFeedForwardLength <= 0))
            throw new ArgumentException($"A qwen3moe model needs at least 2 experts, 1 to that many used, and a positive expert width; got {ExpertCount}, {ExpertUsedCount} and {ExpertFeedForwardLength}.");
        if (a == "gemma2" && (SlidingWindow <= 0 || !TiedEmbeddings))
            throw new ArgumentException("A gemma2 model needs a sliding window (llama.cpp assumes 4096 without one) and tied embeddings (llama.cpp loads no output matrix).");
        if (SlidingWindow < 0 || SlidingWindowPattern is < 1)
            throw new ArgumentException($"The sliding window must be ≥ 0 and its pattern ≥ 1; got {SlidingWindow} and {SlidingWindowPattern}.");
        if (AttentionSoftCap < 0 || FinalLogitSoftCap < 0 || !float.IsFinite(AttentionSoftCap) || !float.IsFinite(FinalLogitSoftCap))
            throw new ArgumentException("Soft-caps must be finite and ≥ 0 (0: none).");
        foreach (var (name, value) in new[] { ("linear RoPE scale", LinearRopeScale), ("local RoPE base", LocalRopeFreqBase),
            ("embedding scale", EmbeddingScale), ("residual scale", ResidualScale), ("attention scale", AttentionScale), ("logit scale", LogitScale) })
        {
            if (value is { } v && !(v > 0 && float.IsFinite(v)))
                throw new ArgumentException($"The {name} must be positive and finite; got {v}.");
        }
        if (!(PostNormScale > 0 && float.IsFinite(PostNormScale)))
            throw new ArgumentException($"The post-norm scale must be positive and finite; got {PostNormScale}.");
        if (RopeOriginalContextLength is <= 0)
            throw new ArgumentException($"The original context length must be positive; got {RopeOriginalContextLength}.");
        if (LongRope is { } lr)
            lr.Validate(RotaryDimensions / 2);
    }
}

/// <summary>Dimensions to change in a <see cref="SynthesisSpec"/>; null keeps the base value.</summary>
public sealed record SynthesisOverrides
{
    public string? Architecture { get; init; }
    public int? EmbeddingLength { get; init; }
    public int? FeedForwardLength { get; init; }
    public int? BlockCount { get; init; }
    public int? HeadCount { get; init; }
    public int? HeadCountKv { get; init; }
    /// <summary>When null, the head dim is the embedding length over the head count.</summary>
    public int? HeadDim { get; init; }
    public int? VocabSize { get; init; }
    public int? ContextLength { get; init; }
    public float? RopeFreqBase { get; init; }
    public float? RmsNormEps { get; init; }
    public bool? TiedEmbeddings { get; init; }
    /// <summary>The sliding window (0: none).</summary>
    public int? SlidingWindow { get; init; }
    public int? ExpertCount { get; init; }
    public int? ExpertUsedCount { get; init; }
    public int? ExpertFeedForwardLength { get; init; }

    /// <summary>
    /// <paramref name="baseSpec"/> with these values. A new embedding length or head count without a head dim gives
    /// the head dim embedding / heads; Llama 3 RoPE scaling is kept only for a llama of unchanged head size; partial
    /// rotary dimensions scale with the head and longrope factors are resampled to them.
    /// </summary>
    public SynthesisSpec ApplyTo(SynthesisSpec baseSpec)
    {
        ArgumentNullException.ThrowIfNull(baseSpec);
        string arch = Architecture ?? baseSpec.Architecture;
        int embd = EmbeddingLength ?? baseSpec.EmbeddingLength;
        int heads = HeadCount ?? baseSpec.HeadCount;
        int headDim = HeadDim ?? (EmbeddingLength is null && HeadCount is null ? baseSpec.HeadDim : embd / Math.Max(heads, 1));
        if (HeadDim is null && heads > 0 && embd % heads != 0)
            throw new ArgumentException($"The embedding length {embd} is not a multiple of the head count {heads}; give the head dim.");
        int? ropeDims = baseSpec.RopeDimensions is { } rd && headDim != baseSpec.HeadDim
            ? Math.Max(2, (int)((long)rd * headDim / baseSpec.HeadDim) & ~1) : baseSpec.RopeDimensions;
        return baseSpec with
        {
            Architecture = arch, EmbeddingLength = embd, FeedForwardLength = FeedForwardLength ?? baseSpec.FeedForwardLength,
            BlockCount = BlockCount ?? baseSpec.BlockCount, HeadCount = heads, HeadCountKv = HeadCountKv ?? baseSpec.HeadCountKv, HeadDim = headDim,
            VocabSize = VocabSize ?? baseSpec.VocabSize, ContextLength = ContextLength ?? baseSpec.ContextLength,
            RopeFreqBase = RopeFreqBase ?? baseSpec.RopeFreqBase, RmsNormEps = RmsNormEps ?? baseSpec.RmsNormEps,
            TiedEmbeddings = TiedEmbeddings ?? baseSpec.TiedEmbeddings,
            RopeScaling = arch == "llama" && headDim == baseSpec.HeadDim ? baseSpec.RopeScaling : null,
            RopeDimensions = ropeDims,
            LongRope = baseSpec.LongRope?.Resized((ropeDims ?? headDim) / 2),
            SlidingWindow = SlidingWindow ?? baseSpec.SlidingWindow,
            ExpertCount = ExpertCount ?? baseSpec.ExpertCount,
            ExpertUsedCount = ExpertUsedCount ?? baseSpec.ExpertUsedCount,
            ExpertFeedForwardLength = ExpertFeedForwardLength ?? baseSpec.ExpertFeedForwardLength,
        };
    }
}

/// <summary>
/// Phi-3's longrope (<c>rope_scaling.rope_type = "longrope"</c>): per-frequency divisors that convert_hf_to_gguf.py stores
/// as <c>rope_factors_long.weight</c> and <c>rope_factors_short.weight</c> (rotary dims / 2 each), and the magnitude
/// <c>rope.scaling.attn_factor</c> = √(1 + ln(context / original) / ln original).
/// </summary>
public sealed record LongRopeScaling(ImmutableArray<float> LongFactors, ImmutableArray<float> ShortFactors, float AttentionFactor)
{
    /// <summary>The converter's attention factor for a model of <paramref name="contextLength"/> trained at <paramref name="originalContextLength"/>.</summary>
    public static float AttentionFactorFor(int contextLength, int originalContextLength)
    {
        double scale = (double)contextLength / originalContextLength;
        return scale > 1 ? (float)Math.Sqrt(1 + Math.Log(scale) / Math.Log(originalContextLength)) : 1f;
    }

    /// <summary>
    /// The fixtures' ramps over <paramref name="count"/> factors, t = i / (count − 1): long 1 + 63·(3t² − 2t³) (1 → 64),
    /// short 1 + t.
    /// </summary>
    public static LongRopeScaling Ramp(int count, float attentionFactor)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 2);
        var t = Enumerable.Range(0, count).Select(i => (double)i / (count - 1)).ToArray();
        return new([.. t.Select(x => (float)(1 + 63 * (3 * x * x - 2 * x * x * x)))], [.. t.Select(x => (float)(1 + x))], attentionFactor);
    }

    /// <summary>
    /// Phi-3.5-mini-instruct's factors (config.json <c>rope_scaling</c>, 48 each, float32), for a 131072-token context
    /// trained at 4096.
    /// </summary>
    public static LongRopeScaling Phi35Mini { get; } = new(
    [
        1.0800000429153442f, 1.1100000143051147f, 1.1399999856948853f, 1.340000033378601f, 1.5899999141693115f, 1.600000023841858f,
        1.6200000047683716f, 2.620000123977661f, 3.2300000190734863f, 3.2300000190734863f, 4.789999961853027f, 7.400000095367432f,
        7.700000286102295f, 9.09000015258789f, 12.199999809265137f, 17.670000076293945f, 24.46000099182129f, 28.57000160217285f,
        30.420001983642578f, 30.840002059936523f, 32.590003967285156f, 32.93000411987305f, 42.320003509521484f, 44.96000289916992f,
        50.340003967285156f, 50.45000457763672f, 57.55000305175781f, 57.93000411987305f, 58.21000289916992f, 60.1400032043457f,
        62.61000442504883f, 62.62000274658203f, 62.71000289916992f, 63.1400032043457f, 63.1400032043457f, 63.77000427246094f,
        63.93000411987305f, 63.96000289916992f, 63.970001220703125f, 64.02999877929688f, 64.06999969482422f, 64.08000183105469f,
        64.12000274658203f, 64.41000366210938f, 64.4800033569336f, 64.51000213623047f, 64.52999877929688f, 64.83999633789062f,
    ],
    [
        1.0f, 1.0199999809265137f, 1.0299999713897705f, 1.0299999713897705f, 1.0499999523162842f, 1.0499999523162842f,
        1.0499999523162842f, 1.0499999523162842f, 1.0499999523162842f, 1.0699999332427979f, 1.0999999046325684f, 1.1099998950958252f,
        1.1599998474121094f, 1.1599998474121094f, 1.1699998378753662f, 1.2899998426437378f, 1.339999794960022f, 1.679999828338623f,
        1.7899998426437378f, 1.8199998140335083f, 1.8499997854232788f, 1.8799997568130493f, 1.9099997282028198f, 1.9399996995925903f,
        1.9899996519088745f, 2.0199997425079346f, 2.0199997425079346f, 2.0199997425079346f, 2.0199997425079346f, 2.0199997425079346f,
        2.0199997425079346f, 2.0299997329711914f, 2.0299997329711914f, 2.0299997329711914f, 2.0299997329711914f, 2.0299997329711914f,
        2.0299997329711914f, 2.0299997329711914f, 2.0299997329711914f, 2.0299997329711914f, 2.0799996852874756f, 2.0899996757507324f,
        2.189999580383301f, 2.2199995517730713f, 2.5899994373321533f, 2.729999542236328f, 2.749999523162842f, 2.8399994373321533f,
    ], AttentionFactorFor(131072, 4096));

    /// <summary>These factors linearly resampled to <paramref name="count"/> (the same when the count is theirs).</summary>
    public LongRopeScaling Resized(int count)
    {
        if (count == LongFactors.Length && count == ShortFactors.Length)
            return this;
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        return this with { LongFactors = Resample(LongFactors, count), ShortFactors = Resample(ShortFactors, count) };
    }

    internal void Validate(int count)
    {
        if (LongFactors.Length != count || ShortFactors.Length != count)
            throw new ArgumentException($"Longrope needs {count} long and short factors (rotary dims / 2); got {LongFactors.Length} and {ShortFactors.Length}.");
        if (LongFactors.Concat(ShortFactors).Any(f => !(f > 0 && float.IsFinite(f))) || !(AttentionFactor > 0 && float.IsFinite(AttentionFactor)))
            throw new ArgumentException("Longrope factors and the attention factor must be positive and finite.");
    }

    private static ImmutableArray<float> Resample(ImmutableArray<float> f, int count)
    {
        if (f.Length == 1 || count == 1)
            return [.. Enumerable.Repeat(f[0], count)];
        var r = new float[count];
        for (int i = 0; i < count; i++)
        {
            double x = (double)i * (f.Length - 1) / (count - 1);
            int lo = Math.Min((int)x, f.Length - 2);
            r[i] = (float)(f[lo] + (x - lo) * (f[lo + 1] - f[lo]));
        }
        return [.. r];
    }
}

/// <summary>
/// Llama 3's RoPE frequency scaling (<c>rope_scaling.rope_type = "llama3"</c>): per-frequency factors that
/// convert_hf_to_gguf.py stores as <c>rope_freqs.weight</c>.
/// </summary>
public sealed record Llama3RopeScaling(float Factor, float LowFreqFactor, float HighFreqFactor, int OriginalContextLength)
{
    /// <summary>
    /// The <paramref name="headDim"/>/2 factors, computed in float32 as convert_hf_to_gguf.py does: 1 for wavelengths
    /// under <c>original/high</c>, <see cref="Factor"/> above <c>original/low</c>, and a smooth blend between.
    /// </summary>
    public float[] Factors(int headDim, float ropeBase)
    {
        var factors = new float[headDim / 2];
        float lowWavelength = OriginalContextLength / LowFreqFactor;
        float highWavelength = OriginalContextLength / HighFreqFactor;
        for (int i = 0; i < factors.Length; i++)
        {
            float freq = 1f / MathF.Pow(ropeBase, (float)(2 * i) / headDim);
            float wavelength = (float)(2 * Math.PI) / freq;
            if (wavelength < highWavelength)
                factors[i] = 1f;
            else if (wavelength > lowWavelength)
                factors[i] = Factor;
            else
            {
                float smooth = (OriginalContextLength / wavelength - LowFreqFactor) / (HighFreqFactor - LowFreqFactor);
                factors[i] = 1f / ((1 - smooth) / Factor + smooth);
            }
        }
        return factors;
    }
}

/// <summary>A named model shape: real dimensions of a published model, and the vocabulary it is written with.</summary>
/// <param name="Name">Preset name (<c>tinyllama-1.1b</c>, ...), also the default <c>general.name</c>.</param>
/// <param name="Spec">The dimensions.</param>
/// <param name="VocabFile">Tokenizer donor, relative to the shared models folder.</param>
/// <param name="PadVocabulary">The donor has fewer tokens than the model: <see cref="SyntheticVocabulary.Pad"/> fills the rest.</param>
public sealed record SynthesisPreset(string Name, SynthesisSpec Spec, string VocabFile, bool PadVocabulary = false)
{
    /// <summary>The 512-token SentencePiece vocabulary of stories260K.</summary>
    public const string Stories260KVocab = "stories260K.gguf";
    /// <summary>Llama 2's 32000-token SentencePiece vocabulary.</summary>
    public const string LlamaSpmVocab = "vocab/ggml-vocab-llama-spm.gguf.gz";
    /// <summary>Llama 3's 128256-token byte-level BPE vocabulary.</summary>
    public const string LlamaBpeVocab = "vocab/ggml-vocab-llama-bpe.gguf.gz";
    /// <summary>Qwen2's 151936-token byte-level BPE vocabulary.</summary>
    public const string Qwen2Vocab = "vocab/ggml-vocab-qwen2.gguf.gz";
    /// <summary>GPT-2's 50257-token byte-level BPE vocabulary.</summary>
    public const string Gpt2Vocab = "vocab/ggml-vocab-gpt-2.gguf.gz";
    /// <summary>Phi-3's 32064-token SentencePiece vocabulary (Llama 2's and 64 added tokens, with its chat template).</summary>
    public const string Phi3Vocab = "vocab/ggml-vocab-phi-3.gguf.gz";
    /// <summary>BERT's 30522-token WordPiece vocabulary (uncased; BGE's and MiniLM's).</summary>
    public const string BertVocab = "vocab/ggml-vocab-bert-bge.gguf.gz";

    /// <summary>
    /// The presets. Dimensions are the published models' (config.json / llama2.c), with these departures:
    /// smollm2-135m uses GPT-2's 50257-token vocabulary (SmolLM2's own 49152-token one is not available here); the
    /// llama2.c stories models are tied (their PyTorch weights share the embedding) with their training context; Gemma's
    /// 256000- and 262144-token and Granite's 49155-token vocabularies are Llama 2's SentencePiece one padded with
    /// <c>&lt;unusedN&gt;</c> tokens (same matrix shapes; the text is never read by a benchmark); and qwen3-moe-small is
    /// no published model but Qwen3-30B-A3B scaled down (12 of 48 layers, 1024 of 2048 wide, 16 of 32 heads, 64 of 128
    /// experts of 512 of 768, 8 used, head size 128 and vocabulary kept) so that two cores run it in a minute.
    /// </summary>
    public static ImmutableArray<SynthesisPreset> All { get; } =
    [
        new("tinyllama-1.1b", Llama(2048, 5632, 22, 32, 4, 32000, 2048, 10000f, 1e-5f, tied: false), LlamaSpmVocab),
        new("qwen2.5-0.5b", new SynthesisSpec
        {
            Architecture = "qwen2", EmbeddingLength = 896, FeedForwardLength = 4864, BlockCount = 24, HeadCount = 14,
            HeadCountKv = 2, HeadDim = 64, VocabSize = 151936, ContextLength = 32768, RopeFreqBase = 1000000f,
            RmsNormEps = 1e-6f, TiedEmbeddings = true,
        }, Qwen2Vocab),
        new("llama-3.2-1b", Llama(2048, 8192, 16, 32, 8, 128256, 131072, 500000f, 1e-5f, tied: true)
            with { RopeScaling = new Llama3RopeScaling(32f, 1f, 4f, 8192) }, LlamaBpeVocab),
        new("smollm2-135m", Llama(576, 1536, 30, 9, 3, 50257, 8192, 100000f, 1e-5f, tied: true), Gpt2Vocab),
        new("stories15m", Llama(288, 768, 6, 6, 6, 32000, 256, 10000f, 1e-5f, tied: true), LlamaSpmVocab),
        new("stories110m", Llama(768, 2048, 12, 12, 12, 32000, 1024, 10000f, 1e-5f, tied: true), LlamaSpmVocab),
        // google/gemma-2-2b: query_pre_attn_scalar 256 = head_dim, so llama.cpp's 1/√head_dim is the model's scale.
        new("gemma-2-2b", new SynthesisSpec
        {
            Architecture = "gemma2", EmbeddingLength = 2304, FeedForwardLength = 9216, BlockCount = 26, HeadCount = 8,
            HeadCountKv = 4, HeadDim = 256, VocabSize = 256000, ContextLength = 8192, RopeFreqBase = 10000f, RmsNormEps = 1e-6f,
            TiedEmbeddings = true, SlidingWindow = 4096, AttentionSoftCap = 50, FinalLogitSoftCap = 30,
        }, LlamaSpmVocab, PadVocabulary: true),
        // google/gemma-3-1b-it: five local layers (window 512, base 10000) per global one (base 1e6), no RoPE scaling.
        new("gemma-3-1b", new SynthesisSpec
        {
            Architecture = "gemma3", EmbeddingLength = 1152, FeedForwardLength = 6912, BlockCount = 26, HeadCount = 4,
            HeadCountKv = 1, HeadDim = 256, VocabSize = 262144, ContextLength = 32768, RopeFreqBase = 1000000f, RmsNormEps = 1e-6f,
            TiedEmbeddings = true, SlidingWindow = 512, SlidingWindowPattern = 6, LocalRopeFreqBase = 10000f,
        }, LlamaSpmVocab, PadVocabulary: true),
        // microsoft/Phi-3.5-mini-instruct: MHA, longrope from 4096 to 131072 with its factors; its window (262144) llama.cpp ignores.
        new("phi-3.5-mini", new SynthesisSpec
        {
            Architecture = "phi3", EmbeddingLength = 3072, FeedForwardLength = 8192, BlockCount = 32, HeadCount = 32,
            HeadCountKv = 32, HeadDim = 96, VocabSize = 32064, ContextLength = 131072, RopeFreqBase = 10000f, RmsNormEps = 1e-5f,
            TiedEmbeddings = false, SlidingWindow = 262144, RopeOriginalContextLength = 4096, LongRope = LongRopeScaling.Phi35Mini,
        }, Phi3Vocab),
        new("qwen3-moe-small", new SynthesisSpec
        {
            Architecture = "qwen3moe", EmbeddingLength = 1024, FeedForwardLength = 8 * 512, BlockCount = 12, HeadCount = 16,
            HeadCountKv = 4, HeadDim = 128, VocabSize = 151936, ContextLength = 40960, RopeFreqBase = 1000000f, RmsNormEps = 1e-6f,
            TiedEmbeddings = false, ExpertCount = 64, ExpertUsedCount = 8, ExpertFeedForwardLength = 512,
        }, Qwen2Vocab),
        // ibm-granite/granite-3.0-2b-instruct.
        new("granite-3-2b", new SynthesisSpec
        {
            Architecture = "granite", EmbeddingLength = 2048, FeedForwardLength = 8192, BlockCount = 40, HeadCount = 32,
            HeadCountKv = 8, HeadDim = 64, VocabSize = 49155, ContextLength = 4096, RopeFreqBase = 10000f, RmsNormEps = 1e-5f,
            TiedEmbeddings = true, EmbeddingScale = 12, ResidualScale = 0.22f, AttentionScale = 0.015625f, LogitScale = 8,
        }, LlamaSpmVocab, PadVocabulary: true),
        // sentence-transformers/all-MiniLM-L6-v2 (mean pooling), BAAI/bge-small-en-v1.5 and bge-base-en-v1.5 (CLS pooling).
        new("all-minilm-l6", Bert(384, 1536, 6, 12, pooling: 1), BertVocab),
        new("bge-small", Bert(384, 1536, 12, 12, pooling: 2), BertVocab),
        new("bge-base", Bert(768, 3072, 12, 12, pooling: 2), BertVocab),
    ];

    /// <summary>The preset named <paramref name="name"/> (case-insensitive).</summary>
    /// <exception cref="ArgumentException">No such preset.</exception>
    public static SynthesisPreset Get(string name) =>
        All.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"Unknown preset \"{name}\"; presets: {string.Join(", ", All.Select(p => p.Name))}.", nameof(name));

    /// <summary>The shared vocabulary file with exactly <paramref name="vocabSize"/> tokens, or null when there is none.</summary>
    public static string? VocabFileFor(int vocabSize) => vocabSize switch
    {
        512 => Stories260KVocab,
        32000 => LlamaSpmVocab,
        32064 => Phi3Vocab,
        30522 => BertVocab,
        50257 => Gpt2Vocab,
        128256 => LlamaBpeVocab,
        151936 => Qwen2Vocab,
        _ => null,
    };

    private static SynthesisSpec Bert(int embd, int ff, int layers, int heads, int pooling) => SynthesisSpec.TinyOf("bert") with
    {
        EmbeddingLength = embd, FeedForwardLength = ff, BlockCount = layers, HeadCount = heads, HeadCountKv = heads, HeadDim = embd / heads,
        PoolingType = pooling,
    };

    private static SynthesisSpec Llama(int embd, int ff, int layers, int heads, int kvHeads, int vocab, int ctx, float ropeBase, float eps, bool tied) => new()
    {
        Architecture = "llama", EmbeddingLength = embd, FeedForwardLength = ff, BlockCount = layers, HeadCount = heads,
        HeadCountKv = kvHeads, HeadDim = embd / heads, VocabSize = vocab, ContextLength = ctx, RopeFreqBase = ropeBase,
        RmsNormEps = eps, TiedEmbeddings = tied,
    };
}

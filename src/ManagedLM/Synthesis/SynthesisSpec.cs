using System.Collections.Immutable;
namespace ManagedLM.Synthesis;

/// <summary>The hyperparameters of a synthetic model (the GGUF keys llama.cpp reads).</summary>
public sealed record SynthesisSpec
{
    /// <summary>Architectures the synthesizer writes.</summary>
    public static readonly ImmutableArray<string> Architectures = ["llama", "qwen2", "qwen3"];

    /// <summary><c>llama</c>, <c>qwen2</c> (q/k/v biases) or <c>qwen3</c> (per-head q/k RMSNorm).</summary>
    public required string Architecture { get; init; }
    public required int EmbeddingLength { get; init; }
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

    /// <summary>A tiny llama (the synthetic fixtures' shape: 256 wide, 1 layer, 4 heads, 2 KV heads, 512 tokens), the base of custom dimensions.</summary>
    public static SynthesisSpec Tiny { get; } = new()
    {
        Architecture = "llama", EmbeddingLength = 256, FeedForwardLength = 256, BlockCount = 1, HeadCount = 4, HeadCountKv = 2,
        HeadDim = 64, VocabSize = 512, ContextLength = 256, RopeFreqBase = 10000f, RmsNormEps = 1e-5f, TiedEmbeddings = false,
    };

    /// <summary>Throws <see cref="ArgumentException"/> for an unknown architecture or a dimension that cannot work.</summary>
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

    /// <summary>
    /// <paramref name="baseSpec"/> with these values. A new embedding length or head count without a head dim gives
    /// the head dim embedding / heads; Llama 3 RoPE scaling is kept only for a llama of unchanged head size.
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
        return baseSpec with
        {
            Architecture = arch, EmbeddingLength = embd, FeedForwardLength = FeedForwardLength ?? baseSpec.FeedForwardLength,
            BlockCount = BlockCount ?? baseSpec.BlockCount, HeadCount = heads, HeadCountKv = HeadCountKv ?? baseSpec.HeadCountKv, HeadDim = headDim,
            VocabSize = VocabSize ?? baseSpec.VocabSize, ContextLength = ContextLength ?? baseSpec.ContextLength,
            RopeFreqBase = RopeFreqBase ?? baseSpec.RopeFreqBase, RmsNormEps = RmsNormEps ?? baseSpec.RmsNormEps,
            TiedEmbeddings = TiedEmbeddings ?? baseSpec.TiedEmbeddings,
            RopeScaling = arch == "llama" && headDim == baseSpec.HeadDim ? baseSpec.RopeScaling : null,
        };
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
public sealed record SynthesisPreset(string Name, SynthesisSpec Spec, string VocabFile)
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

    /// <summary>
    /// The presets. Dimensions are the published models' (config.json / llama2.c), with two departures:
    /// smollm2-135m uses GPT-2's 50257-token vocabulary (SmolLM2's own 49152-token one is not available here), and the
    /// llama2.c stories models are tied (their PyTorch weights share the embedding) with their training context.
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
        50257 => Gpt2Vocab,
        128256 => LlamaBpeVocab,
        151936 => Qwen2Vocab,
        _ => null,
    };

    private static SynthesisSpec Llama(int embd, int ff, int layers, int heads, int kvHeads, int vocab, int ctx, float ropeBase, float eps, bool tied) => new()
    {
        Architecture = "llama", EmbeddingLength = embd, FeedForwardLength = ff, BlockCount = layers, HeadCount = heads,
        HeadCountKv = kvHeads, HeadDim = embd / heads, VocabSize = vocab, ContextLength = ctx, RopeFreqBase = ropeBase,
        RmsNormEps = eps, TiedEmbeddings = tied,
    };
}

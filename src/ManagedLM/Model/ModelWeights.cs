using System.Collections.Immutable;
using System.Globalization;
using System.Runtime.InteropServices;
using ManagedLM.Gguf;
using ManagedLM.Kernels;

namespace ManagedLM.Model;

/// <summary>
/// The weights of one transformer block. Vectors are read-only views of F32 arrays; bias, q/k-norm and post-norm
/// vectors are empty when the model has none. Fused projections (Phi-3's <c>attn_qkv</c>, gate and up in one
/// <c>ffn_up</c>) are loaded as row ranges of the one tensor. A mixture-of-experts block has a router and experts
/// instead of Gate, Up and Down. An encoder's block (BERT) normalizes after each residual instead of before each
/// sublayer: <see cref="AttentionNorm"/> is then its <c>attn_output_norm</c> and <see cref="FeedForwardNorm"/> its
/// <c>layer_output_norm</c>, both LayerNorms with biases, and its feed-forward has no gate.
/// </summary>
public sealed class LayerWeights
{
    public required ReadOnlyMemory<float> AttentionNorm { get; init; }   // [n_embd]
    /// <summary>The bias of an encoder's LayerNorm after attention (<c>attn_output_norm.bias</c>), else empty.</summary>
    public ReadOnlyMemory<float> AttentionNormBias { get; init; }        // [n_embd]
    public required WeightMatrix Query { get; init; }                    // [n_head·head_dim × n_embd]
    public required WeightMatrix Key { get; init; }                      // [n_kv·head_dim × n_embd]
    public required WeightMatrix Value { get; init; }                    // [n_kv·head_dim × n_embd]
    public required WeightMatrix Output { get; init; }                   // [n_embd × n_head·head_dim]
    /// <summary>The bias of the attention output projection (<c>attn_output.bias</c>: BERT), else empty.</summary>
    public ReadOnlyMemory<float> OutputBias { get; init; }               // [n_embd]
    public ReadOnlyMemory<float> QueryBias { get; init; }                // [n_head·head_dim] (qwen2)
    public ReadOnlyMemory<float> KeyBias { get; init; }                  // [n_kv·head_dim]
    public ReadOnlyMemory<float> ValueBias { get; init; }                // [n_kv·head_dim]
    public ReadOnlyMemory<float> QueryNorm { get; init; }                // [head_dim] (qwen3)
    public ReadOnlyMemory<float> KeyNorm { get; init; }                  // [head_dim]
    public ReadOnlyMemory<float> PostAttentionNorm { get; init; }        // [n_embd] (Gemma)
    public required ReadOnlyMemory<float> FeedForwardNorm { get; init; } // [n_embd]
    /// <summary>The bias of an encoder's LayerNorm after the feed-forward (<c>layer_output_norm.bias</c>), else empty.</summary>
    public ReadOnlyMemory<float> FeedForwardNormBias { get; init; }      // [n_embd]
    public WeightMatrix? Gate { get; init; }                             // [n_ff × n_embd]; null in an expert block or an ungated feed-forward
    public WeightMatrix? Up { get; init; }                               // [n_ff × n_embd]
    public WeightMatrix? Down { get; init; }                             // [n_embd × n_ff]
    /// <summary>The biases of the feed-forward's up and down projections (<c>ffn_up.bias</c>, <c>ffn_down.bias</c>: BERT), else empty.</summary>
    public ReadOnlyMemory<float> UpBias { get; init; }                   // [n_ff]
    public ReadOnlyMemory<float> DownBias { get; init; }                 // [n_embd]
    public ReadOnlyMemory<float> PostFeedForwardNorm { get; init; }      // [n_embd] (Gemma)
    /// <summary>The router of an expert block (<c>ffn_gate_inp</c>), else null.</summary>
    public WeightMatrix? Router { get; init; }                           // [n_expert × n_embd]
    /// <summary>Expert e's gate, up and down projections (slabs of <c>ffn_*_exps</c>); empty in a dense block.</summary>
    public ImmutableArray<ExpertWeights> Experts { get; init; } = [];
    /// <summary>The expert every token also runs (Qwen2 MoE: <c>ffn_*_shexp</c>), else null.</summary>
    public ExpertWeights? SharedExpert { get; init; }
    /// <summary>The shared expert's sigmoid gate (<c>ffn_gate_inp_shexp</c>), empty without one.</summary>
    public ReadOnlyMemory<float> SharedExpertGate { get; init; }             // [n_embd]

    /// <summary>The matrices of this block, each once (the parts of a fused projection, every expert's).</summary>
    public IEnumerable<WeightMatrix> Matrices =>
        new[] { Query, Key, Value, Output, Gate, Up, Down, Router }.OfType<WeightMatrix>()
            .Concat(Experts.Append(SharedExpert).OfType<ExpertWeights>().SelectMany(e => new[] { e.Gate, e.Up, e.Down }));
}

/// <summary>One expert's feed-forward: down(act(gate·x) ⊙ up·x).</summary>
public sealed record ExpertWeights(WeightMatrix Gate, WeightMatrix Up, WeightMatrix Down); // [n_ff_exp × n_embd] ×2, [n_embd × n_ff_exp]

/// <summary>
/// All weights of a model. Matrices point into the memory-mapped file; the small vectors (norms,
/// biases, RoPE factors) are dequantized to F32 at load. Immutable: vectors are read-only views.
/// </summary>
public sealed class ModelWeights
{
    public required WeightMatrix TokenEmbedding { get; init; }     // [vocab × n_embd]
    public required ImmutableArray<LayerWeights> Layers { get; init; }
    public required ReadOnlyMemory<float> OutputNorm { get; init; } // [n_embd]
    /// <summary>The output projection; the token embedding itself when the model ties them.</summary>
    public required WeightMatrix Output { get; init; }             // [vocab × n_embd]
    /// <summary>Llama-3 RoPE frequency factors (<c>rope_freqs.weight</c>), or empty.</summary>
    public ReadOnlyMemory<float> RopeFrequencyFactors { get; init; } // [rope_dims / 2]
    /// <summary>Longrope's factors for contexts past the original one (<c>rope_factors_long.weight</c>), or empty.</summary>
    public ReadOnlyMemory<float> RopeLongFactors { get; init; }      // [rope_dims / 2]
    /// <summary>Longrope's factors within the original context (<c>rope_factors_short.weight</c>), or empty.</summary>
    public ReadOnlyMemory<float> RopeShortFactors { get; init; }     // [rope_dims / 2]

    /// <summary>An encoder's absolute position embeddings (<c>position_embd</c>: row p is added at position p), else null.</summary>
    public WeightMatrix? PositionEmbedding { get; init; }           // [positions × n_embd]
    /// <summary>Row 0 of an encoder's <c>token_types</c>, added to every token (llama.cpp gives every token type 0), or empty.</summary>
    public ReadOnlyMemory<float> TokenType { get; init; }           // [n_embd]
    /// <summary>An encoder's LayerNorm of the input embeddings (<c>token_embd_norm</c> weight and bias), or empty.</summary>
    public ReadOnlyMemory<float> EmbeddingNorm { get; init; }       // [n_embd]
    public ReadOnlyMemory<float> EmbeddingNormBias { get; init; }   // [n_embd]

    /// <summary>
    /// A reranker's classifier head (llama.cpp's LLM_TENSOR_CLS and CLS_OUT): h = tanh(<c>cls</c>·x + <c>cls.bias</c>)
    /// when <see cref="Classifier"/> is present, then scores = <c>cls.output</c>·h + <c>cls.output.bias</c> when
    /// <see cref="ClassifierOutput"/> is; both null in a model without one.
    /// </summary>
    public WeightMatrix? Classifier { get; init; }                  // [n_embd × n_embd]
    public ReadOnlyMemory<float> ClassifierBias { get; init; }      // [n_embd]
    public WeightMatrix? ClassifierOutput { get; init; }            // [n_labels × n_embd]
    public ReadOnlyMemory<float> ClassifierOutputBias { get; init; } // [n_labels]

    public bool TiedEmbeddings => ReferenceEquals(Output, TokenEmbedding);

    /// <summary>Bytes of the matrices' repacked copies (see <see cref="ModelOptions.RepackWeights"/>); 0 when none is.</summary>
    public long RepackedBytes => Matrices.Sum(m => m.RepackedBytes);

    /// <summary>Bytes of the matrices copied into large pages in the file's layout (see <see cref="ModelOptions.LargePages"/>); 0 when none is.</summary>
    public long LargePageBytes => Matrices.Where(m => m.InLargePages).Sum(m => m.Rows * m.RowBytes);

    /// <summary>The memory of the repacked and copied matrices; freed with the model.</summary>
    internal WeightArena? Arena { get; init; }

    /// <summary>Every matrix once (the tied embedding and output projection are one).</summary>
    internal IEnumerable<WeightMatrix> Matrices =>
        Layers.SelectMany(l => l.Matrices).Append(Output).Concat(TiedEmbeddings ? [] : [TokenEmbedding])
            .Concat(new[] { PositionEmbedding, Classifier, ClassifierOutput }.OfType<WeightMatrix>());

    internal static ModelWeights Load(GgufFile file, ModelConfig c, bool repack, bool largePages)
    {
        // Copies in large pages only pay for a file's mapping (4 kB pages); bytes parsed from memory are the only copy. They
        // take memory the size of the weights that the OS cannot drop and read again: a model that would fill most of the
        // machine's memory stays on its mapping.
        long weightBytes = file.Tensors.Sum(t => t.ByteSize);
        bool fits = weightBytes < GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 4 * 3;
        bool copy = largePages && fits && WeightArena.LargePages && file.IsFileMapping;
        var arena = repack || copy ? new WeightArena(weightBytes) : null;
        try
        {
            return Load(file, c, arena, repack, copy);
        }
        catch
        {
            arena?.Dispose();
            throw;
        }
    }

    private static ModelWeights Load(GgufFile file, ModelConfig c, WeightArena? arena, bool repack, bool copy)
    {
        var family = c.Family;
        var outputTensor = family.Encoder ? null : file.FindTensor("output.weight");
        // The embedding is only dequantized row by row, unless it is also the output projection (an encoder has none).
        bool tied = outputTensor is null && !family.Encoder;
        var embedding = WeightMatrix.FromTensor(file, Required(file, "token_embd.weight"), c.VocabSize, c.EmbeddingLength,
            arena, repack && tied, copy && tied, readsRows: true);
        if (!Dequantize.Supports(embedding.Type))
            throw new NotSupportedException($"Tensor \"token_embd.weight\" has type {GgmlTypes.Name(embedding.Type)}, which ManagedLM cannot dequantize.");

        var layers = new LayerWeights[c.BlockCount];
        for (int i = 0; i < layers.Length; i++)
        {
            string p = $"blk.{i}.";
            // Phi-3 fuses q, k and v into attn_qkv, and gate and up into one ffn_up of 2·n_ff rows.
            var qkv = file.FindTensor(p + "attn_qkv.weight") is { } fused
                ? Rows(fused, [c.QueryLength, c.KvLength, c.KvLength], c.EmbeddingLength)
                : [Matrix(p + "attn_q.weight", c.QueryLength, c.EmbeddingLength), Matrix(p + "attn_k.weight", c.KvLength, c.EmbeddingLength),
                   Matrix(p + "attn_v.weight", c.KvLength, c.EmbeddingLength)];
            if (family.Encoder)
            {
                layers[i] = EncoderLayer(p, qkv);
                continue;
            }
            bool experts = file.FindTensor(p + "ffn_gate_inp.weight") is not null;
            if (family.RequiresExperts && !experts)
                throw new GgufFormatException(file.DataOffset, $"missing required tensor \"{p}ffn_gate_inp.weight\"");
            if (experts && c.ExpertCount == 0)
                throw new GgufFormatException(file.DataOffset, $"tensor \"{p}ffn_gate_inp.weight\" routes to experts, but \"{c.Architecture}.expert_count\" is missing");
            WeightMatrix[] gateUp = experts ? [] : file.FindTensor(p + "ffn_gate.weight") is null
                ? Rows(Required(file, p + "ffn_up.weight"), [c.FeedForwardLength, c.FeedForwardLength], c.EmbeddingLength)
                : [Matrix(p + "ffn_gate.weight", c.FeedForwardLength, c.EmbeddingLength), Matrix(p + "ffn_up.weight", c.FeedForwardLength, c.EmbeddingLength)];
            layers[i] = new LayerWeights
            {
                AttentionNorm = Vector(file, p + "attn_norm.weight", c.EmbeddingLength),
                Query = qkv[0],
                Key = qkv[1],
                Value = qkv[2],
                Output = Matrix(p + "attn_output.weight", c.EmbeddingLength, c.QueryLength),
                QueryBias = Vector(file, p + "attn_q.bias", c.QueryLength, required: family.RequiresAttentionBiases),
                KeyBias = Vector(file, p + "attn_k.bias", c.KvLength, required: family.RequiresAttentionBiases),
                ValueBias = Vector(file, p + "attn_v.bias", c.KvLength, required: family.RequiresAttentionBiases),
                QueryNorm = Vector(file, p + "attn_q_norm.weight", c.HeadDim, required: family.RequiresQueryKeyNorms),
                KeyNorm = Vector(file, p + "attn_k_norm.weight", c.HeadDim, required: family.RequiresQueryKeyNorms),
                PostAttentionNorm = Vector(file, p + "post_attention_norm.weight", c.EmbeddingLength, required: family.RequiresPostNorms),
                FeedForwardNorm = Vector(file, p + "ffn_norm.weight", c.EmbeddingLength),
                Gate = experts ? null : gateUp[0],
                Up = experts ? null : gateUp[1],
                Down = experts ? null : Matrix(p + "ffn_down.weight", c.EmbeddingLength, c.FeedForwardLength),
                PostFeedForwardNorm = Vector(file, p + "post_ffw_norm.weight", c.EmbeddingLength, required: family.RequiresPostNorms),
                Router = experts ? Matrix(p + "ffn_gate_inp.weight", c.ExpertCount, c.EmbeddingLength) : null,
                Experts = experts ? Experts(p) : [],
                SharedExpert = experts && file.FindTensor(p + "ffn_gate_shexp.weight") is not null
                    ? new ExpertWeights(Matrix(p + "ffn_gate_shexp.weight", c.SharedExpertFeedForwardLength, c.EmbeddingLength),
                        Matrix(p + "ffn_up_shexp.weight", c.SharedExpertFeedForwardLength, c.EmbeddingLength),
                        Matrix(p + "ffn_down_shexp.weight", c.EmbeddingLength, c.SharedExpertFeedForwardLength))
                    : null,
                SharedExpertGate = experts ? Vector(file, p + "ffn_gate_inp_shexp.weight", c.EmbeddingLength, required: file.FindTensor(p + "ffn_gate_shexp.weight") is not null) : default,
            };
        }

        var output = outputTensor is { } o
            ? MatrixOf(o, c.VocabSize, c.EmbeddingLength)
            : embedding;
        var classifier = file.FindTensor("cls.weight") is { } cls ? MatrixOf(cls, c.EmbeddingLength, c.EmbeddingLength) : null;
        var classifierOutput = file.FindTensor("cls.output.weight") is { } clsOut ? MatrixOf(clsOut, LabelCount(clsOut), c.EmbeddingLength) : null;
        return new ModelWeights
        {
            TokenEmbedding = embedding,
            Layers = ImmutableCollectionsMarshal.AsImmutableArray(layers),
            OutputNorm = Vector(file, "output_norm.weight", c.EmbeddingLength, required: !family.Encoder),
            Output = output,
            RopeFrequencyFactors = Vector(file, "rope_freqs.weight", c.RopeDimensions / 2, required: false, positive: true),
            RopeLongFactors = Vector(file, "rope_factors_long.weight", c.RopeDimensions / 2, required: false, positive: true),
            RopeShortFactors = Vector(file, "rope_factors_short.weight", c.RopeDimensions / 2, required: false, positive: true),
            PositionEmbedding = family.Encoder ? PositionRows(Required(file, "position_embd.weight")) : null,
            TokenType = family.Encoder ? FirstRow(file, "token_types.weight", c.EmbeddingLength) : default,
            EmbeddingNorm = Vector(file, "token_embd_norm.weight", c.EmbeddingLength, required: family.Encoder),
            EmbeddingNormBias = Vector(file, "token_embd_norm.bias", c.EmbeddingLength, required: false),
            Classifier = classifier,
            ClassifierBias = classifier is null ? default : Vector(file, "cls.bias", c.EmbeddingLength, required: false),
            ClassifierOutput = classifierOutput,
            ClassifierOutputBias = classifierOutput is null ? default : Vector(file, "cls.output.bias", classifierOutput.Rows, required: false),
            Arena = arena,
        };

        // An encoder's block: biased projections, LayerNorms (with biases) after each residual, an ungated feed-forward.
        LayerWeights EncoderLayer(string p, WeightMatrix[] qkv) => new()
        {
            Query = qkv[0],
            Key = qkv[1],
            Value = qkv[2],
            QueryBias = Vector(file, p + "attn_q.bias", c.QueryLength, required: false),
            KeyBias = Vector(file, p + "attn_k.bias", c.KvLength, required: false),
            ValueBias = Vector(file, p + "attn_v.bias", c.KvLength, required: false),
            Output = Matrix(p + "attn_output.weight", c.EmbeddingLength, c.QueryLength),
            OutputBias = Vector(file, p + "attn_output.bias", c.EmbeddingLength, required: false),
            AttentionNorm = Vector(file, p + "attn_output_norm.weight", c.EmbeddingLength),
            AttentionNormBias = Vector(file, p + "attn_output_norm.bias", c.EmbeddingLength, required: false),
            Gate = family.GatedFeedForward ? Matrix(p + "ffn_gate.weight", c.FeedForwardLength, c.EmbeddingLength) : null,
            Up = Matrix(p + "ffn_up.weight", c.FeedForwardLength, c.EmbeddingLength),
            UpBias = Vector(file, p + "ffn_up.bias", c.FeedForwardLength, required: false),
            Down = Matrix(p + "ffn_down.weight", c.EmbeddingLength, c.FeedForwardLength),
            DownBias = Vector(file, p + "ffn_down.bias", c.EmbeddingLength, required: false),
            FeedForwardNorm = Vector(file, p + "layer_output_norm.weight", c.EmbeddingLength),
            FeedForwardNormBias = Vector(file, p + "layer_output_norm.bias", c.EmbeddingLength, required: false),
        };

        // Position embeddings: one row per position the encoder can take (at least one, at most MaxRows).
        WeightMatrix PositionRows(GgufTensorInfo t)
        {
            if (t.Shape.Count != 2 || t.Shape[0] != c.EmbeddingLength || t.Shape[1] is < 1 or > MaxRows)
                throw new GgufFormatException(t.FileOffset, $"tensor \"{t.Name}\": expected shape [{c.EmbeddingLength}, positions] with 1 to {MaxRows} positions, found [{string.Join(", ", t.Shape)}]");
            if (!Dequantize.Supports(t.Type))
                throw new NotSupportedException($"Tensor \"{t.Name}\" has type {GgmlTypes.Name(t.Type)}, which ManagedLM cannot dequantize.");
            return WeightMatrix.FromTensor(file, t, (int)t.Shape[1], c.EmbeddingLength, readsRows: true);
        }

        WeightMatrix Matrix(string name, int rows, int columns) => MatrixOf(Required(file, name), rows, columns);

        // Consecutive row ranges of one tensor of Σ counts rows (a fused projection, or the experts of a 3-D tensor).
        WeightMatrix[] Rows(GgufTensorInfo t, int[] counts, int columns) => WeightMatrix.FromTensorRows(file, t, counts, columns, arena, repack, copy);

        // Expert e is the e-th [n_ff_exp × n_embd] (down: [n_embd × n_ff_exp]) slab of the 3-D expert tensors.
        ImmutableArray<ExpertWeights> Experts(string p)
        {
            int n = c.ExpertCount, ff = c.ExpertFeedForwardLength, embd = c.EmbeddingLength;
            var gate = Rows(Expert3D(p + "ffn_gate_exps.weight", embd, ff), Enumerable.Repeat(ff, n).ToArray(), embd);
            var up = Rows(Expert3D(p + "ffn_up_exps.weight", embd, ff), Enumerable.Repeat(ff, n).ToArray(), embd);
            var down = Rows(Expert3D(p + "ffn_down_exps.weight", ff, embd), Enumerable.Repeat(embd, n).ToArray(), ff);
            return [.. Enumerable.Range(0, n).Select(e => new ExpertWeights(gate[e], up[e], down[e]))];
        }

        GgufTensorInfo Expert3D(string name, int columns, int rows)
        {
            var t = Required(file, name);
            if (t.Shape.Count != 3 || t.Shape[0] != columns || t.Shape[1] != rows || t.Shape[2] != c.ExpertCount)
                throw new GgufFormatException(t.FileOffset, $"tensor \"{t.Name}\": expected shape [{columns}, {rows}, {c.ExpertCount}], found [{string.Join(", ", t.Shape)}]");
            return t;
        }

        // A copied matrix never reads the file's bytes again: their pages go back as soon as the copy is made, so that
        // loading holds the file's pages of one matrix at a time, not all of them.
        WeightMatrix MatrixOf(GgufTensorInfo t, int rows, int columns) =>
            WeightMatrix.FromTensor(file, t, rows, columns, arena, repack, copy);
    }

    // Most rows of position embeddings or classifier labels a file may declare.
    private const int MaxRows = 1 << 20;

    // The labels of a classifier's output projection (its rows).
    private static int LabelCount(GgufTensorInfo t) =>
        t.Shape.Count == 2 && t.Shape[1] is >= 1 and <= MaxRows ? (int)t.Shape[1]
        : throw new GgufFormatException(t.FileOffset, $"tensor \"{t.Name}\": expected shape [n_embd, labels] with 1 to {MaxRows} labels, found [{string.Join(", ", t.Shape)}]");

    // Row 0 of an optional [length × types] table (token_types), dequantized and checked as Vector checks; empty when absent.
    private static float[] FirstRow(GgufFile file, string name, int length)
    {
        if (file.FindTensor(name) is not { } t)
            return [];
        if (t.Shape.Count != 2 || t.Shape[0] != length || t.Shape[1] is < 1 or > MaxRows)
            throw new GgufFormatException(t.FileOffset, $"tensor \"{t.Name}\": expected shape [{length}, types] with 1 to {MaxRows} types, found [{string.Join(", ", t.Shape)}]");
        if (!Dequantize.Supports(t.Type))
            throw new NotSupportedException($"Tensor \"{t.Name}\" has type {GgmlTypes.Name(t.Type)}, which ManagedLM cannot dequantize.");
        var v = new float[length];
        Dequantize.Row(t.Type, file.GetTensorData(t)[..(int)GgmlTypes.RowBytes(t.Type, length)], v);
        CheckFinite(t, v, positive: false);
        return v;
    }

    // The tensor dequantized to F32; empty when it is optional and absent. Every value must be finite (and positive
    // for divisors): one NaN here would make every logit NaN, and the vector is read anyway.
    private static float[] Vector(GgufFile file, string name, int length, bool required = true, bool positive = false)
    {
        var t = required ? Required(file, name) : file.FindTensor(name);
        if (t is null)
            return [];
        if (t.ElementCount != length || t.Columns != length)
            throw new GgufFormatException(t.FileOffset, $"tensor \"{t.Name}\": expected shape [{length}], found [{string.Join(", ", t.Shape)}]");
        if (!Dequantize.Supports(t.Type))
            throw new NotSupportedException($"Tensor \"{t.Name}\" has type {GgmlTypes.Name(t.Type)}, which ManagedLM cannot dequantize.");
        var v = new float[length];
        Dequantize.Row(t.Type, file.GetTensorData(t), v);
        CheckFinite(t, v, positive);
        return v;
    }

    private static void CheckFinite(GgufTensorInfo t, float[] v, bool positive)
    {
        for (int i = 0; i < v.Length; i++)
        {
            if (!float.IsFinite(v[i]) || (positive && v[i] <= 0))
                throw new GgufFormatException(t.FileOffset, $"tensor \"{t.Name}\": element {i} is {v[i].ToString(CultureInfo.InvariantCulture)}; {(positive ? "every element must be a positive finite number" : "every element must be finite")}");
        }
    }

    private static GgufTensorInfo Required(GgufFile file, string name) =>
        file.FindTensor(name) ?? throw new GgufFormatException(file.DataOffset, $"missing required tensor \"{name}\"");
}

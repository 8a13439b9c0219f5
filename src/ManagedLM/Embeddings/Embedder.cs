using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ManagedLM.Inference;
using ManagedLM.Kernels.Threading;
using ManagedLM.Model;

namespace ManagedLM.Embeddings;

/// <summary>
/// One request's embedding state on a shared <see cref="TransformerModel"/>: scratch activations (and, for a decoder, a
/// KV cache per sequence of a pass). Create one per concurrent request with <see cref="ModelEmbedders.CreateEmbedder"/>;
/// embedders of one model run in parallel without locks. Many texts go through one pass over the weights: their tokens
/// are packed one sequence after another (not padded) into passes of up to <see cref="EmbedderOptions.BatchTokens"/>
/// tokens, and each attends only to itself, so a text's vector is the same bits alone, packed with others, or on any
/// number of threads.
/// An embedder is used by one operation at a time: a second thread entering it while it is busy gets an
/// <see cref="InvalidOperationException"/> (never corrupted state). Handing it from thread to thread between operations
/// is fine.
/// </summary>
public sealed class Embedder : IDisposable
{
    // A decoder's pass packs at most this many sequences, each on its own KV cache. Slot j takes the pass's j-th longest
    // sequence, at most BatchTokens / (j + 1) tokens, so the caches together hold at most about 3.4 · BatchTokens positions.
    private const int MaxDecoderSequences = 16;

    private readonly WorkerPool? _pool;
    private readonly EncoderState? _encoder;   // an encoder's scratch
    private readonly ForwardState _state;      // the encoder's, or the decoder's pass
    private readonly KvCache?[] _caches = [];  // a decoder's, per slot
    private readonly int[] _slots = [];        // a decoder pass's slot of each sequence
    private int[] _tokens = [];                // a call's sequences, one after another
    private int[] _bounds = [];                // [sequences + 1]: where each starts in _tokens, then the total
    private float[] _ranked = [], _scores = [];
    private BusyGuard _guard;

    public TransformerModel Model { get; }
    /// <summary>The options this embedder was created with.</summary>
    public EmbedderOptions Options { get; }
    /// <summary>How sequences are pooled: <see cref="EmbedderOptions.Pooling"/>, else the model's.</summary>
    public PoolingType Pooling { get; }
    /// <summary>Length of one embedding: n_embd, or with <see cref="PoolingType.Rank"/> the classifier's outputs (1 for a reranker).</summary>
    public int Dimensions { get; }
    /// <summary>Most tokens of one text: the model's context (an encoder's position embeddings) and <see cref="EmbedderOptions.BatchTokens"/>.</summary>
    public int MaxTokens { get; }
    /// <summary>Tokens the last embedding call evaluated (special tokens included): what an API reports as usage.</summary>
    public int LastTokenCount { get; private set; }

    internal Embedder(TransformerModel model, EmbedderOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var c = model.Config;
        var w = model.Weights;
        if (options.BatchTokens < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.BatchTokens, "BatchTokens must be at least 1.");
        if (options.Threads < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.Threads, "Threads must be at least 1.");
        var pooling = options.Pooling ?? c.Pooling;
        if (!Enum.IsDefined(pooling))
            throw new ArgumentOutOfRangeException(nameof(options), pooling, "Unknown pooling type.");
        if (pooling == PoolingType.Rank && w.Classifier is null && w.ClassifierOutput is null)
            throw new ArgumentException("Rank pooling scores with the model's classifier head, and this model has none (no cls.weight or cls.output.weight tensor).", nameof(options));
        if (!c.Family.Encoder && !c.CausalAttention)
            throw new NotSupportedException($"This {c.Architecture} file asks for non-causal attention (attention.causal = false), which ManagedLM runs for encoders only.");
        Model = model;
        Options = options;
        Pooling = pooling;
        Dimensions = pooling == PoolingType.Rank ? w.ClassifierOutput?.Rows ?? c.EmbeddingLength : c.EmbeddingLength;
        MaxTokens = Math.Min(options.BatchTokens, c.Family.Encoder ? EncoderState.MaxSequenceLength(model) : model.MaxContextLength);
        ModelWarmUp.Ensure(model, KvCacheType.F16); // a decoder's caches are F16, as a generator's by default
        _pool = options.Threads > 1 ? new WorkerPool(options.Threads) : null;
        if (c.Family.Encoder)
        {
            _encoder = new EncoderState(c, _pool);
            _state = _encoder.Forward;
        }
        else
        {
            _state = new ForwardState(c, _pool, rows: 1, logitRows: 0);
            _caches = new KvCache?[MaxDecoderSequences];
            _slots = new int[MaxDecoderSequences];
        }
    }

    /// <summary>The embedding of <paramref name="text"/> (tokenized with the model's special tokens), <see cref="Dimensions"/> floats.</summary>
    /// <exception cref="ArgumentException">The text has more than <see cref="MaxTokens"/> tokens, or none.</exception>
    /// <exception cref="InvalidOperationException">The pooling is <see cref="PoolingType.None"/> (use <see cref="TokenEmbeddings(string)"/>).</exception>
    public float[] Embed(string text)
    {
        int[] tokens = Tokenize(text);
        var result = new float[Dimensions];
        Embed(tokens, result);
        return result;
    }

    /// <summary>The embeddings of <paramref name="texts"/>, in order, evaluated together in as few passes as fit.</summary>
    /// <exception cref="ArgumentException">A text has more than <see cref="MaxTokens"/> tokens, or none.</exception>
    public float[][] Embed(IReadOnlyList<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var sequences = new int[texts.Count][];
        for (int i = 0; i < sequences.Length; i++)
            sequences[i] = Tokenize(texts[i] ?? throw new ArgumentException($"texts[{i}] is null.", nameof(texts)));
        return EmbedTokens(sequences);
    }

    /// <summary>The embedding of one token sequence into <paramref name="destination"/> (<see cref="Dimensions"/> floats); allocates nothing once warm.</summary>
    /// <exception cref="ArgumentException">No tokens, more than <see cref="MaxTokens"/>, an id outside the vocabulary, or a destination of another length.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Embed(ReadOnlySpan<int> tokens, Span<float> destination)
    {
        Enter();
        try
        {
            CheckPooled();
            if (destination.Length != Dimensions)
                throw new ArgumentException($"The destination holds {destination.Length} floats; an embedding is {Dimensions}.", nameof(destination));
            LoadOne(tokens);
            Run(1, Pooling, null, destination);
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>The embeddings of token sequences, in order, evaluated together in as few passes as fit.</summary>
    /// <exception cref="ArgumentException">A sequence is empty, longer than <see cref="MaxTokens"/>, or holds an id outside the vocabulary.</exception>
    public float[][] EmbedTokens(IReadOnlyList<int[]> sequences)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        Enter();
        try
        {
            CheckPooled();
            Load(sequences);
            var results = new float[sequences.Count][];
            Run(sequences.Count, Pooling, results, default);
            return results;
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>
    /// The final hidden state of every token of <paramref name="text"/> (whatever <see cref="Pooling"/> says): row t is
    /// token t's n_embd floats, L2-normalized when <see cref="EmbedderOptions.Normalize"/>.
    /// </summary>
    public float[,] TokenEmbeddings(string text) => TokenEmbeddings(Tokenize(text));

    /// <summary>The final hidden state of every token of a sequence, as <see cref="TokenEmbeddings(string)"/>.</summary>
    public float[,] TokenEmbeddings(ReadOnlySpan<int> tokens)
    {
        Enter();
        try
        {
            LoadOne(tokens);
            int embd = Model.Config.EmbeddingLength;
            var result = new float[tokens.Length, embd];
            Run(1, PoolingType.None, null, MemoryMarshal.CreateSpan(ref result[0, 0], result.Length));
            return result;
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>
    /// How relevant <paramref name="document"/> is to <paramref name="query"/>: the classifier's first output for the pair
    /// (<see cref="TokenizePair"/>), a logit (no sigmoid), as llama.cpp's rerank endpoint returns it.
    /// </summary>
    /// <exception cref="InvalidOperationException">The pooling is not <see cref="PoolingType.Rank"/>.</exception>
    /// <exception cref="ArgumentException">The pair has more than <see cref="MaxTokens"/> tokens.</exception>
    public float Score(string query, string document) => Rerank(query, [document])[0];

    /// <summary>The <see cref="Score"/> of each document for <paramref name="query"/>, in order, evaluated together.</summary>
    public float[] Rerank(string query, IReadOnlyList<string> documents)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(documents);
        if (Pooling != PoolingType.Rank)
            throw new InvalidOperationException($"Scoring needs Rank pooling (a reranker: a model with a classifier head); this embedder pools by {Pooling}.");
        var pairs = new int[documents.Count][];
        for (int i = 0; i < pairs.Length; i++)
            pairs[i] = TokenizePair(query, documents[i] ?? throw new ArgumentException($"documents[{i}] is null.", nameof(documents)));
        var scores = EmbedTokens(pairs);
        var result = new float[scores.Length];
        for (int i = 0; i < result.Length; i++)
            result[i] = scores[i][0];
        return result;
    }

    /// <summary>The tokens <see cref="Embed(string)"/> evaluates for <paramref name="text"/> (with the model's special tokens).</summary>
    /// <exception cref="ArgumentException">The text has more than <see cref="MaxTokens"/> tokens, or none.</exception>
    public int[] Tokenize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int[] tokens = Model.Tokenizer.EncodePrompt(text, MaxTokens);
        CheckLength(tokens.Length, nameof(text), "The text");
        return tokens;
    }

    /// <summary>
    /// The tokens of a query and a document as a reranker reads them, laid out as llama.cpp's rerank lays them out
    /// (<see cref="Tokenization.Tokenizer.EncodePair"/>: for BERT, [CLS] query [SEP] document; the model's rerank template
    /// where it has one).
    /// </summary>
    /// <exception cref="ArgumentException">The pair has more than <see cref="MaxTokens"/> tokens, or none.</exception>
    public int[] TokenizePair(string query, string document)
    {
        int[] pair = Model.Tokenizer.EncodePair(query, document);
        CheckLength(pair.Length, nameof(document), "The query and document");
        return pair;
    }

    /// <summary>Tokens <see cref="Embed(string)"/> evaluates for <paramref name="text"/>.</summary>
    public int CountTokens(string text) => Tokenize(text).Length;

    private void CheckLength(int length, string paramName, string what)
    {
        if (length == 0)
            throw new ArgumentException($"{what} has no tokens to embed.", paramName);
        if (length > MaxTokens)
            throw new ArgumentException(
                $"{what} has {length} tokens; this embedder takes at most {MaxTokens} per text (the model's context and EmbedderOptions.BatchTokens {Options.BatchTokens}).",
                paramName);
    }

    private void CheckPooled()
    {
        if (Pooling == PoolingType.None)
            throw new InvalidOperationException("This embedder's pooling is None: one vector per token, which TokenEmbeddings returns.");
    }

    // Checks one sequence of a call; i: its index, or -1 for the only one.
    // Reads only what never changes (the model, the options, MaxTokens): an EmbeddingEngine checks a request's sequences on
    // the submitting thread with it, so one bad request cannot fail the run it would share.
    internal void Check(ReadOnlySpan<int> tokens, int i)
    {
        string which = i < 0 ? "The sequence" : $"Sequence {i}";
        if (tokens.IsEmpty || tokens.Length > MaxTokens)
            throw new ArgumentException(
                $"{which} has {tokens.Length} tokens; this embedder takes 1 to {MaxTokens} per sequence (the model's context and EmbedderOptions.BatchTokens {Options.BatchTokens}).",
                i < 0 ? "tokens" : "sequences");
        int vocab = Model.Config.VocabSize;
        foreach (int t in tokens)
        {
            if ((uint)t >= (uint)vocab)
                throw new ArgumentException($"{which}: token id {t} is outside the vocabulary [0, {vocab}).", i < 0 ? "tokens" : "sequences");
        }
    }

    private void LoadOne(ReadOnlySpan<int> tokens)
    {
        Check(tokens, -1);
        Grow(ref _bounds, 2);
        Grow(ref _tokens, tokens.Length);
        tokens.CopyTo(_tokens);
        _bounds[0] = 0;
        _bounds[1] = tokens.Length;
    }

    private void Load(IReadOnlyList<int[]> sequences)
    {
        long total = 0;
        for (int i = 0; i < sequences.Count; i++)
        {
            var tokens = sequences[i] ?? throw new ArgumentException($"Sequence {i} is null.", nameof(sequences));
            Check(tokens, i);
            total += tokens.Length;
        }
        if (total > Array.MaxLength)
            throw new ArgumentException($"The sequences hold {total} tokens together; at most {Array.MaxLength} per call.", nameof(sequences));
        Grow(ref _bounds, sequences.Count + 1);
        Grow(ref _tokens, (int)total);
        int at = 0;
        for (int i = 0; i < sequences.Count; i++)
        {
            _bounds[i] = at;
            sequences[i].CopyTo(_tokens, at);
            at += sequences[i].Length;
        }
        _bounds[sequences.Count] = at;
    }

    private static void Grow<T>(ref T[] buffer, int length)
    {
        if (buffer.Length < length)
            buffer = new T[length];
    }

    private int Length(int sequence) => _bounds[sequence + 1] - _bounds[sequence];

    // Evaluates the call's sequences [0, count) in passes and writes each one's pooled vector (rows with None) to
    // results[i], a new array, or to single when results is null (one sequence).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Run(int count, PoolingType pooling, float[][]? results, Span<float> single)
    {
        int embd = Model.Config.EmbeddingLength, total = 0;
        bool encoder = _encoder is not null;
        for (int first = 0, end; first < count; first = end)
        {
            int rows = Length(first);
            for (end = first + 1; end < count && rows + Length(end) <= Options.BatchTokens && (encoder || end - first < MaxDecoderSequences); end++)
                rows += Length(end);
            float[] hidden = encoder ? Encode(first, end, rows) : Decode(first, end, rows);
            total += rows;
            if (pooling == PoolingType.Rank)
                Grow(ref _ranked, (end - first) * embd);
            for (int i = first; i < end; i++)
            {
                int row = _bounds[i] - _bounds[first], n = Length(i);
                if (pooling == PoolingType.Rank)
                {
                    // A reranker reads an encoder's [CLS] and a decoder's last token: the one that has seen the whole pair.
                    int pick = encoder ? row : row + n - 1;
                    hidden.AsSpan(pick * embd, embd).CopyTo(_ranked.AsSpan((i - first) * embd, embd));
                    continue;
                }
                var destination = results is null ? single : results[i] = new float[pooling == PoolingType.None ? n * embd : embd];
                Pool(hidden.AsSpan(row * embd, n * embd), embd, pooling, destination);
            }
            if (pooling == PoolingType.Rank)
                Classify(first, end, results, single);
        }
        LastTokenCount = total;
    }

    // One encoder pass over sequences [first, end) of the call: their final hidden states, row by row.
    private float[] Encode(int first, int end, int rows)
    {
        var e = _encoder!;
        int sequences = end - first, offset = _bounds[first];
        e.EnsureCapacity(rows, sequences);
        _tokens.AsSpan(offset, rows).CopyTo(e.Tokens);
        for (int q = 0; q <= sequences; q++)
            e.Starts[q] = _bounds[first + q] - offset;
        Encoder.Forward(Model, e, sequences);
        return e.Forward.X;
    }

    // One decoder pass over sequences [first, end) of the call, each on its slot's cache from position 0: the final-norm
    // hidden states of every row (what the output projection would read), row by row.
    private float[] Decode(int first, int end, int rows)
    {
        var s = _state;
        var c = Model.Config;
        s.EnsureCapacity(rows, 0);
        int sequences = end - first;
        for (int i = 0; i < sequences; i++)
        {
            int rank = 0, n = Length(first + i);
            for (int j = 0; j < sequences; j++)
            {
                int m = Length(first + j);
                if (m > n || (m == n && j < i))
                    rank++;
            }
            _slots[i] = rank;
        }
        for (int i = 0, r = 0; i < sequences; i++)
        {
            int n = Length(first + i), at = _bounds[first + i];
            var cache = _caches[_slots[i]] ??= new KvCache(KvCacheType.F16, c.BlockCount, new Kernels.KvBlockLayout(c.KvHeadCount, c.HeadDim), MaxTokens,
                initialCapacity: n, windows: c.LayerWindows.AsSpan());
            cache.EnsureCapacity(n);
            for (int j = 0; j < n; j++)
                s.Rows[r++] = new ForwardRow(cache, _tokens[at + j], j, Logits: true);
        }
        Transformer.Hidden(Model, s, rows);
        return s.Normed;
    }

    // The pooled vector of one sequence's hidden rows ([n × embd]), normalized when the options say so.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Pool(ReadOnlySpan<float> rows, int embd, PoolingType pooling, Span<float> destination)
    {
        int n = rows.Length / embd;
        switch (pooling)
        {
            case PoolingType.Mean:
                // Σ x_t · (1/n) in token order, one fused multiply-add per token and dimension.
                destination.Clear();
                float inverse = 1f / n;
                for (int t = 0; t < n; t++)
                    TensorPrimitives.FusedMultiplyAdd(rows.Slice(t * embd, embd), inverse, destination, destination);
                break;
            case PoolingType.Cls:
                rows[..embd].CopyTo(destination);
                break;
            case PoolingType.Last:
                rows[^embd..].CopyTo(destination);
                break;
            default:
                rows.CopyTo(destination);
                break;
        }
        if (!Options.Normalize)
            return;
        for (int at = 0; at < destination.Length; at += embd)
            Normalize(destination.Slice(at, embd));
    }

    // x / ‖x‖₂ as llama.cpp's common_embd_normalize: the squares (rounded to float) summed in double in order; 0 stays 0.
    private static void Normalize(Span<float> x)
    {
        double sum = 0;
        foreach (float v in x)
            sum += v * v;
        float scale = sum > 0 ? (float)(1.0 / Math.Sqrt(sum)) : 0f;
        for (int i = 0; i < x.Length; i++)
            x[i] *= scale;
    }

    // The classifier head over the pass's picked rows (_ranked, [sequences × embd]): tanh(cls·x + b), then cls.output·h + b.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Classify(int first, int end, float[][]? results, Span<float> single)
    {
        var s = _state;
        var w = Model.Weights;
        int embd = Model.Config.EmbeddingLength, sequences = end - first;
        float[] h = _ranked;
        if (w.Classifier is { } classifier)
        {
            s.Input.Set(_ranked, embd, sequences, embd);
            Transformer.Project(s, classifier, s.Projected, embd, w.ClassifierBias);
            for (int i = 0; i < sequences * embd; i++)
                s.Projected[i] = MathF.Tanh(s.Projected[i]);
            h = s.Projected;
        }
        if (w.ClassifierOutput is { } output)
        {
            Grow(ref _scores, sequences * output.Rows);
            s.Input.Set(h, embd, sequences, embd);
            Transformer.Project(s, output, _scores, output.Rows, w.ClassifierOutputBias);
            h = _scores;
        }
        for (int i = 0; i < sequences; i++)
            h.AsSpan(i * Dimensions, Dimensions).CopyTo(results is null ? single : results[first + i] = new float[Dimensions]);
    }

    internal void Enter() => _guard.Enter(
        "This Embedder is already in use by another operation (another thread). An Embedder holds one request's scratch and " +
        "serves one operation at a time: create one Embedder per thread with model.CreateEmbedder (a list of texts in one call " +
        "is evaluated together).");

    internal void Exit() => _guard.Exit();

    /// <summary>Stops this embedder's worker threads (if <see cref="EmbedderOptions.Threads"/> &gt; 1).</summary>
    public void Dispose()
    {
        _pool?.Dispose();
        GC.SuppressFinalize(this);
    }

    ~Embedder() => _pool?.Dispose();
}

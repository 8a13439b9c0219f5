using System.Collections.Concurrent;
using ManagedLM.Model;
using AI = Microsoft.Extensions.AI;

namespace ManagedLM.Embeddings;

/// <summary>Options of a <see cref="ModelEmbeddingGenerator"/>.</summary>
public sealed record ModelEmbeddingGeneratorOptions
{
    /// <summary>The model id the generator reports; null: the model's <see cref="TransformerModel.Name"/>.</summary>
    public string? ModelId { get; init; }

    /// <summary>The embedders' options (pooling, normalization, token budget, threads per call).</summary>
    public EmbedderOptions Embedder { get; init; } = EmbedderOptions.Default;

    /// <summary>Calls embedding at once (one embedder each); more calls wait. 0: one per core.</summary>
    public int MaxConcurrentCalls { get; init; }
}

/// <summary>
/// <see cref="AI.IEmbeddingGenerator{TInput, TEmbedding}"/> over a model in this process, for Semantic Kernel, Kernel
/// Memory or any code written against Microsoft.Extensions.AI: each call embeds all its texts together on an
/// <see cref="Embedder"/> of its own (packed into as few passes as fit), so calls from many threads run in parallel and
/// a text's vector does not depend on what it was embedded with. <see cref="AI.EmbeddingGenerationOptions.Dimensions"/>
/// below the model's keeps the first dimensions (renormalized when the embedder normalizes), as OpenAI's
/// <c>dimensions</c> does; usage reports the tokens evaluated.
/// </summary>
/// <example>
/// <code>
/// using var model = TransformerModel.Load("bge-small-en-v1.5-q8_0.gguf");
/// using IEmbeddingGenerator&lt;string, Embedding&lt;float&gt;&gt; generator = new ModelEmbeddingGenerator(model);
/// var vectors = await generator.GenerateAsync(["first text", "second text"]);
/// </code>
/// </example>
public sealed class ModelEmbeddingGenerator : AI.IEmbeddingGenerator<string, AI.Embedding<float>>
{
    private readonly TransformerModel _model;
    private readonly ModelEmbeddingGeneratorOptions _options;
    private readonly ConcurrentBag<Embedder> _idle = [];
    private readonly SemaphoreSlim _calls;
    private readonly string _modelId;
    private volatile bool _disposed;

    /// <summary>A generator of <paramref name="model"/>, which must outlive it.</summary>
    /// <exception cref="ArgumentException">Rank pooling on a model without a classifier head, or None pooling (no one vector per text).</exception>
    public ModelEmbeddingGenerator(TransformerModel model, ModelEmbeddingGeneratorOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        _options = options ?? new ModelEmbeddingGeneratorOptions();
        ArgumentOutOfRangeException.ThrowIfNegative(_options.MaxConcurrentCalls, nameof(options));
        _model = model;
        _modelId = _options.ModelId ?? model.Name;
        var first = model.CreateEmbedder(_options.Embedder);
        if (first.Pooling == PoolingType.None)
        {
            first.Dispose();
            throw new ArgumentException("An embedding generator gives one vector per text: None pooling (one per token) does not fit it.", nameof(options));
        }
        Dimensions = first.Dimensions;
        _idle.Add(first);
        _calls = new SemaphoreSlim(_options.MaxConcurrentCalls > 0 ? _options.MaxConcurrentCalls : Environment.ProcessorCount);
        Metadata = new AI.EmbeddingGeneratorMetadata("managedlm", null, _modelId, Dimensions);
    }

    /// <summary>Provider "managedlm", the model id and its dimensions.</summary>
    public AI.EmbeddingGeneratorMetadata Metadata { get; }

    /// <summary>Length of the vectors (before any <see cref="AI.EmbeddingGenerationOptions.Dimensions"/>).</summary>
    public int Dimensions { get; }

    /// <summary>The embeddings of <paramref name="values"/>, in order.</summary>
    /// <exception cref="ArgumentException">A text with no tokens or more than the embedder's limit, or dimensions outside [1, <see cref="Dimensions"/>].</exception>
    public async Task<AI.GeneratedEmbeddings<AI.Embedding<float>>> GenerateAsync(IEnumerable<string> values,
        AI.EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var texts = values.ToList();
        int dimensions = options?.Dimensions ?? Dimensions;
        if (dimensions < 1 || dimensions > Dimensions)
            throw new ArgumentException($"Dimensions must be in [1, {Dimensions}]; got {dimensions}.", nameof(options));
        if (texts.Count == 0)
            return new AI.GeneratedEmbeddings<AI.Embedding<float>>() { Usage = new AI.UsageDetails { InputTokenCount = 0, TotalTokenCount = 0 } };

        await _calls.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var embedder = _idle.TryTake(out var e) ? e : _model.CreateEmbedder(_options.Embedder);
            try
            {
                var (vectors, tokens) = await Task.Run(() => (embedder.Embed(texts), embedder.LastTokenCount), cancellationToken).ConfigureAwait(false);
                var created = DateTimeOffset.UtcNow;
                var result = new AI.GeneratedEmbeddings<AI.Embedding<float>>(vectors.Length)
                {
                    Usage = new AI.UsageDetails { InputTokenCount = tokens, TotalTokenCount = tokens },
                };
                foreach (var v in vectors)
                {
                    result.Add(new AI.Embedding<float>(EmbeddingVectors.Truncate(v, dimensions, embedder.Options.Normalize))
                    {
                        ModelId = _modelId, CreatedAt = created,
                    });
                }
                return result;
            }
            finally
            {
                _idle.Add(embedder);
            }
        }
        finally
        {
            _calls.Release();
        }
    }

    /// <summary>This generator, its <see cref="Metadata"/>, or its <see cref="TransformerModel"/>.</summary>
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null)
            return null;
        if (serviceType == typeof(AI.EmbeddingGeneratorMetadata))
            return Metadata;
        if (serviceType == typeof(TransformerModel))
            return _model;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <summary>Frees the idle embedders; calls in progress finish first with theirs.</summary>
    public void Dispose()
    {
        _disposed = true;
        while (_idle.TryTake(out var e))
            e.Dispose();
    }
}

/// <summary>Shortening embeddings to fewer dimensions (OpenAI's <c>dimensions</c>).</summary>
public static class EmbeddingVectors
{
    /// <summary>
    /// The first <paramref name="dimensions"/> values of <paramref name="vector"/>, divided by their L2 norm when
    /// <paramref name="normalize"/> (a Matryoshka-trained model's shorter embedding); the vector itself when it is that long.
    /// </summary>
    public static float[] Truncate(float[] vector, int dimensions, bool normalize)
    {
        ArgumentNullException.ThrowIfNull(vector);
        ArgumentOutOfRangeException.ThrowIfLessThan(dimensions, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(dimensions, vector.Length);
        if (dimensions == vector.Length)
            return vector;
        var result = vector[..dimensions];
        if (normalize)
        {
            float norm = System.Numerics.Tensors.TensorPrimitives.Norm(result);
            if (norm > 0)
                System.Numerics.Tensors.TensorPrimitives.Divide(result, norm, result);
        }
        return result;
    }
}

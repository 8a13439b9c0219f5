using ManagedLM.Model;

namespace ManagedLM.Generation;

/// <summary>Options of <see cref="BatchGeneration.BatchGenerate"/>.</summary>
public sealed record BatchOptions
{
    public static BatchOptions Default { get; } = new();

    /// <summary>Prompts generated at once (one generator each); default: one per core.</summary>
    public int MaxDegreeOfParallelism { get; init; } = Environment.ProcessorCount;

    /// <summary>Options of the generators created for the batch.</summary>
    public GeneratorOptions Generator { get; init; } = GeneratorOptions.Default;

    /// <summary>
    /// Give item i the seed <c>seed + i</c> (the seed of <see cref="GenerationOptions.Sampling"/>, else of
    /// the generator options, else 0), so items differ yet the batch is reproducible.
    /// </summary>
    public bool VarySeedPerItem { get; init; }
}

/// <summary>Many prompts on one model in parallel: a generator per worker, results in input order.</summary>
public static class BatchGeneration
{
    /// <summary>
    /// Generates a completion for every prompt, <see cref="BatchOptions.MaxDegreeOfParallelism"/> at a time;
    /// <paramref name="progress"/> receives the number of prompts finished so far.
    /// </summary>
    public static GenerationResult[] BatchGenerate(this TransformerModel model, IReadOnlyList<string> prompts,
        GenerationOptions? options = null, BatchOptions? batch = null, IProgress<int>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(prompts);
        options ??= GenerationOptions.Default;
        batch ??= BatchOptions.Default;
        options.Validate();
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch.MaxDegreeOfParallelism, nameof(batch.MaxDegreeOfParallelism));

        var results = new GenerationResult[prompts.Count];
        int done = 0;
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = batch.MaxDegreeOfParallelism, CancellationToken = cancellationToken };
        var sampling = options.Sampling ?? batch.Generator.Sampling;
        Parallel.For(0, prompts.Count, parallel,
            () => model.CreateGenerator(batch.Generator),
            (i, _, generator) =>
            {
                var itemOptions = batch.VarySeedPerItem
                    ? options with { Sampling = sampling with { Seed = unchecked((sampling.Seed ?? 0) + (ulong)i) } }
                    : options;
                results[i] = generator.Complete(prompts[i], itemOptions, null, cancellationToken);
                progress?.Report(Interlocked.Increment(ref done));
                return generator;
            },
            generator => generator.Dispose());
        return results;
    }
}

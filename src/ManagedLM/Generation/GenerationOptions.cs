using System.Collections.Immutable;
using ManagedLM.Grammars;
using ManagedLM.Sampling;

namespace ManagedLM.Generation;

/// <summary>Options of one generation call (<see cref="Generator.Generate(string, GenerationOptions?, CancellationToken)"/> and friends).</summary>
public sealed record GenerationOptions
{
    [field: ThreadSafeStatic("an immutable record without a grammar (grammars are never written after construction either)")]
    public static GenerationOptions Default { get; } = new();

    /// <summary>Most tokens to generate. Must be ≥ 0.</summary>
    public int MaxTokens { get; init; } = 256;

    /// <summary>
    /// Strings that end generation when the text produces them, matched across token boundaries;
    /// the stop string itself is not emitted.
    /// </summary>
    public IReadOnlyList<string> StopStrings
    {
        get => _stopStrings;
        init => _stopStrings = value is null ? throw new ArgumentNullException(nameof(StopStrings)) : [.. value];
    }

    private readonly ImmutableArray<string> _stopStrings = [];

    /// <summary>Sampling for this call; null uses the generator's (<see cref="GeneratorOptions.Sampling"/>).</summary>
    public SamplingOptions? Sampling { get; init; }

    /// <summary>
    /// Constrains the generated text to this grammar (<see cref="Grammar.FromGbnf"/>, <see cref="Grammar.FromJsonSchema(string)"/>,
    /// <see cref="Grammar.JsonObject"/>): each token is drawn among those that keep the text a prefix of a sentence of
    /// the grammar, end of generation only where the text is complete, and generation ends by itself once the grammar
    /// allows nothing more. The grammar is immutable and may be shared by any number of requests; each request follows
    /// it with its own state. The sampler's pick is checked first and the vocabulary masked only when it is rejected.
    /// </summary>
    public Grammar? Grammar { get; init; }

    /// <summary>
    /// Makes <see cref="Grammar"/> lazy: the text is free until it produces one of these strings, and from that
    /// string's first character on the grammar constrains the rest (so the grammar's sentences start with a trigger,
    /// e.g. <c>&lt;tool_call&gt;</c>). Empty (the default): the grammar applies from the first token.
    /// </summary>
    public IReadOnlyList<string> GrammarTriggers
    {
        get => _grammarTriggers;
        init => _grammarTriggers = value is null ? throw new ArgumentNullException(nameof(GrammarTriggers)) : [.. value];
    }

    private readonly ImmutableArray<string> _grammarTriggers = [];

    /// <summary>Keep generating past end-of-generation tokens (they are then emitted like any token).</summary>
    public bool IgnoreEndOfGeneration { get; init; }

    /// <summary>For a text prompt: add BOS/EOS as the model's tokenizer asks (default true).</summary>
    public bool AddSpecialTokens { get; init; } = true;

    /// <summary>For a text prompt: recognize special tokens written in the text, e.g. "&lt;|im_start|&gt;" (default false).</summary>
    public bool ParseSpecialTokens { get; init; }

    /// <summary>
    /// Reuse the cached tokens the new prompt starts with instead of evaluating them again (default true).
    /// The result is the same either way; only the time differs.
    /// </summary>
    public bool ReusePrefix { get; init; } = true;

    /// <summary>Report each token's log-probability (<see cref="TokenOutput.Logprob"/>).</summary>
    public bool Logprobs { get; init; }

    /// <summary>Also report this many most likely alternatives per token (0–20; needs <see cref="Logprobs"/>).</summary>
    public int TopLogprobs { get; init; }

    /// <summary>
    /// Throw <see cref="InvalidOperationException"/> when the context fills up, instead of ending with
    /// <see cref="StopReason.ContextFull"/>.
    /// </summary>
    public bool ThrowOnContextFull { get; init; }

    /// <summary>
    /// What happens when the next token does not fit the context: stop (the default), shift the context (llama.cpp's
    /// <c>--context-shift</c>), or for chat also drop the oldest turns (<see cref="Generation.ContextOverflow"/>).
    /// </summary>
    public ContextOverflow ContextOverflow { get; init; }

    /// <summary>
    /// llama.cpp's <c>n_keep</c>: prompt tokens a context shift never discards, not counting a leading BOS (always kept);
    /// -1 keeps the whole prompt. 0 (the default) keeps only the BOS. What is kept must leave at least 4 positions of
    /// the context to shift (a request that keeps more is an <see cref="ArgumentException"/> naming the bound).
    /// </summary>
    public int KeepTokens { get; init; }

    /// <summary>
    /// llama.cpp's <c>n_discard</c>: tokens a context shift discards after the kept ones; 0 (the default) discards half of
    /// what follows them. At least one token after the kept ones always stays.
    /// </summary>
    public int DiscardTokens { get; init; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the bound a value violates.</summary>
    public void Validate()
    {
        if (MaxTokens < 0)
            throw new ArgumentOutOfRangeException(nameof(MaxTokens), MaxTokens, "MaxTokens must be ≥ 0.");
        if (KeepTokens < -1)
            throw new ArgumentOutOfRangeException(nameof(KeepTokens), KeepTokens, "KeepTokens must be ≥ -1 (-1 keeps the whole prompt).");
        if (DiscardTokens < 0)
            throw new ArgumentOutOfRangeException(nameof(DiscardTokens), DiscardTokens, "DiscardTokens must be ≥ 0 (0 discards half).");
        if (!Enum.IsDefined(ContextOverflow))
            throw new ArgumentOutOfRangeException(nameof(ContextOverflow), ContextOverflow, "Not a ContextOverflow policy.");
        if (TopLogprobs is < 0 or > 20)
            throw new ArgumentOutOfRangeException(nameof(TopLogprobs), TopLogprobs, "TopLogprobs must be in [0, 20].");
        if (TopLogprobs > 0 && !Logprobs)
            throw new ArgumentOutOfRangeException(nameof(TopLogprobs), TopLogprobs, "TopLogprobs needs Logprobs = true.");
        foreach (string s in StopStrings)
        {
            if (string.IsNullOrEmpty(s))
                throw new ArgumentException("Stop strings must be non-empty.", nameof(StopStrings));
        }
        foreach (string s in GrammarTriggers)
        {
            if (string.IsNullOrEmpty(s))
                throw new ArgumentException("Grammar triggers must be non-empty.", nameof(GrammarTriggers));
        }
        if (GrammarTriggers.Count > 0 && Grammar is null)
            throw new ArgumentException("Grammar triggers need a Grammar.", nameof(GrammarTriggers));
        Sampling?.Validate();
    }
}

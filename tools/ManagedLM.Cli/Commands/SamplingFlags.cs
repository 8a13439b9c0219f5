using System.CommandLine;
using System.Globalization;
using ManagedLM.Generation;
using ManagedLM.Grammars;
using ManagedLM.Sampling;

namespace ManagedLM.Cli.Commands;

/// <summary>
/// The flags that shape a reply, shared by generate and chat: how many tokens (-n), the sampling chain with llama.cpp's
/// names and defaults, the seed, stop strings. Values are checked as the command line is parsed, by the library's own
/// bounds, and reported under the flag's name.
/// </summary>
internal sealed class SamplingFlags
{
    private readonly Option<int> _count;
    private readonly Option<float> _temperature = Sampling<float>("--temp", "Temperature; 0 is greedy.", SamplingOptions.Default.Temperature, (o, v) => o with { Temperature = v });
    private readonly Option<int> _topK = Sampling<int>("--top-k", "Top-k (0 disables).", SamplingOptions.Default.TopK, (o, v) => o with { TopK = v });
    private readonly Option<float> _topP = Sampling<float>("--top-p", "Top-p (1 disables).", SamplingOptions.Default.TopP, (o, v) => o with { TopP = v });
    private readonly Option<float> _minP = Sampling<float>("--min-p", "Min-p (0 disables).", SamplingOptions.Default.MinP, (o, v) => o with { MinP = v });
    private readonly Option<float> _typical = Sampling<float>("--typical", "Locally typical sampling p (1 disables).", SamplingOptions.Default.TypicalP, (o, v) => o with { TypicalP = v });
    private readonly Option<float> _repeatPenalty = Sampling<float>("--repeat-penalty", "Penalty for repeated tokens (1 disables).", SamplingOptions.Default.RepeatPenalty, (o, v) => o with { RepeatPenalty = v });
    private readonly Option<int> _repeatLastN = Sampling<int>("--repeat-last-n", "Tokens the penalties look back over (0 disables, -1 all).", SamplingOptions.Default.RepeatLastN, (o, v) => o with { RepeatLastN = v });
    private readonly Option<float> _presence = Sampling<float>("--presence-penalty", "Presence penalty (0 disables).", 0, (o, v) => o with { PresencePenalty = v });
    private readonly Option<float> _frequency = Sampling<float>("--frequency-penalty", "Frequency penalty (0 disables).", 0, (o, v) => o with { FrequencyPenalty = v });
    private readonly Option<string?> _seed = new Option<string?>("--seed", "-s") { Description = "Random seed; -1 (the default) picks one at random." }
        .Checked(v => Seed(v));
    private readonly Option<string[]> _stop = new Option<string[]>("--stop") { Description = "Stop string (repeatable); not printed.", AllowMultipleArgumentsPerToken = false }
        .Checked(v => new GenerationOptions { StopStrings = v ?? [] }.Validate());
    private readonly Option<bool> _ignoreEos = new("--ignore-eos") { Description = "Keep generating past end-of-generation tokens." };
    private readonly Option<bool> _contextShift = new("--context-shift")
    {
        Description = "When the context is full, discard the older half of the tokens after --keep and go on (llama.cpp's context shift) instead of stopping.",
    };
    private readonly Option<int> _keep = new Option<int>("--keep")
    {
        Description = "Prompt tokens a context shift keeps, besides the BOS (-1: the whole prompt).", DefaultValueFactory = _ => 0,
    }.AtLeast(-1, " (-1: the whole prompt)");
    private readonly Option<string?> _grammar = new Option<string?>("--grammar") { Description = "Constrain the text to this GBNF grammar (llama.cpp's format, root rule 'root')." }
        .Checked(v => GrammarOf(v, null, null, null));
    private readonly Option<string?> _grammarFile = new Option<string?>("--grammar-file") { Description = "Constrain the text to the GBNF grammar in this file." }
        .Checked(v => GrammarOf(null, v, null, null));
    private readonly Option<string?> _schema = new Option<string?>("--json-schema", "-j") { Description = "Constrain the text to JSON valid against this JSON Schema ('{}': any JSON object)." }
        .Checked(v => GrammarOf(null, null, v, null));
    private readonly Option<string?> _schemaFile = new Option<string?>("--json-schema-file", "-jf") { Description = "Constrain the text to JSON valid against the JSON Schema in this file." }
        .Checked(v => GrammarOf(null, null, null, v));

    /// <param name="defaultCount">The default of -n/--n-predict.</param>
    /// <param name="countDescription">What -n counts ("Most tokens to generate").</param>
    public SamplingFlags(int defaultCount, string countDescription)
    {
        _count = new Option<int>("--n-predict", "-n")
        {
            Description = $"{countDescription}; -1: until end of generation or a full context.", DefaultValueFactory = _ => defaultCount,
        }.AtLeast(-1, " (-1: until end of generation or a full context)");
    }

    /// <summary>Every flag, in the order --help lists them.</summary>
    public IEnumerable<Option> All =>
        [_count, _temperature, _topK, _topP, _minP, _typical, _repeatPenalty, _repeatLastN, _presence, _frequency, _stop, _ignoreEos, _seed,
         _grammar, _grammarFile, _schema, _schemaFile, _contextShift, _keep];

    /// <summary>-n as a token budget: -1 is no budget (the context, unless it shifts, or an end-of-generation token ends the reply).</summary>
    public int MaxTokens(ParseResult parse) => parse.GetValue(_count) is >= 0 and var n ? n : int.MaxValue;

    /// <summary>The sampling chain the flags give.</summary>
    public SamplingOptions Sampling(ParseResult parse) => new()
    {
        Temperature = parse.GetValue(_temperature), TopK = parse.GetValue(_topK), TopP = parse.GetValue(_topP), MinP = parse.GetValue(_minP),
        TypicalP = parse.GetValue(_typical), RepeatPenalty = parse.GetValue(_repeatPenalty), RepeatLastN = parse.GetValue(_repeatLastN),
        PresencePenalty = parse.GetValue(_presence), FrequencyPenalty = parse.GetValue(_frequency), Seed = Seed(parse.GetValue(_seed)),
    };

    /// <summary>Token budget, sampling, stop strings, --ignore-eos and the context policy as generation options.</summary>
    public GenerationOptions Generation(ParseResult parse) => new()
    {
        MaxTokens = MaxTokens(parse), Sampling = Sampling(parse), StopStrings = StopStrings(parse), IgnoreEndOfGeneration = IgnoresEndOfGeneration(parse),
        Grammar = Grammar(parse), ContextOverflow = Overflow(parse), KeepTokens = KeepTokens(parse),
    };

    /// <summary>--context-shift: <see cref="ContextOverflow.Shift"/>, else <see cref="ContextOverflow.Stop"/>.</summary>
    public ContextOverflow Overflow(ParseResult parse) => parse.GetValue(_contextShift) ? ContextOverflow.Shift : ContextOverflow.Stop;

    /// <summary>--keep: llama.cpp's n_keep.</summary>
    public int KeepTokens(ParseResult parse) => parse.GetValue(_keep);

    /// <summary>The grammar --grammar, --grammar-file, --json-schema or --json-schema-file gives (at most one of them), or null.</summary>
    public Grammar? Grammar(ParseResult parse) =>
        GrammarOf(parse.GetValue(_grammar), parse.GetValue(_grammarFile), parse.GetValue(_schema), parse.GetValue(_schemaFile));

    private static Grammar? GrammarOf(string? gbnf, string? gbnfFile, string? schema, string? schemaFile)
    {
        if (new[] { gbnf, gbnfFile, schema, schemaFile }.Count(v => v is not null) > 1)
            throw new ArgumentException("Give one of --grammar, --grammar-file, --json-schema and --json-schema-file.");
        try
        {
            if (gbnfFile is not null)
                gbnf = File.ReadAllText(gbnfFile);
            if (schemaFile is not null)
                schema = File.ReadAllText(schemaFile);
            return gbnf is not null ? Grammars.Grammar.FromGbnf(gbnf)
                : schema is null ? null
                : schema.Trim() == "{}" ? Grammars.Grammar.JsonObject
                : Grammars.Grammar.FromJsonSchema(schema);
        }
        catch (Exception e) when (e is GrammarException or IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException(e.Message, e);
        }
    }

    public IReadOnlyList<string> StopStrings(ParseResult parse) => parse.GetValue(_stop) ?? [];

    public bool IgnoresEndOfGeneration(ParseResult parse) => parse.GetValue(_ignoreEos);

    // A sampling flag whose value SamplingOptions.Validate checks.
    private static Option<T> Sampling<T>(string name, string description, T defaultValue, Func<SamplingOptions, T, SamplingOptions> set) =>
        new Option<T>(name) { Description = description, DefaultValueFactory = _ => defaultValue }
            .Checked(v => set(SamplingOptions.Default, v).Validate());

    // -1 or absent (llama.cpp's "random"): null; else a seed in [0, 2^64).
    private static ulong? Seed(string? value) =>
        value is null or "-1" ? null
        : ulong.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out ulong seed) ? seed
        : throw new ArgumentException($"-s/--seed must be -1 (random) or an integer in [0, {ulong.MaxValue}]; got \"{value}\".", "-s/--seed");
}

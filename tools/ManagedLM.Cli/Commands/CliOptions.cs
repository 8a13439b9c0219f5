using System.Collections.Immutable;
using System.CommandLine;
using System.CommandLine.Parsing;
using ManagedLM.Inference;

namespace ManagedLM.Cli.Commands;

/// <summary>Options and parsers shared by several commands, and the checks that run on values as the command line is parsed.</summary>
internal static class CliOptions
{
    /// <summary>--model/-m: resolved by <see cref="ModelLocator"/> when absent.</summary>
    public static Option<string?> Model() => new("--model", "-m")
    {
        Description = $"GGUF model file (default: ${ModelLocator.EnvironmentVariable}, then ../shared/models/stories260K.gguf).",
    };

    /// <summary>An option taking a comma-separated list of non-negative integers ("1,2,4").</summary>
    public static Option<int[]> IntList(string name, string alias, string description, params int[] defaults) => new(name, alias)
    {
        Description = description,
        DefaultValueFactory = _ => defaults,
        CustomParser = ParseIntList,
    };

    /// <summary>--threads/-t: threads per matmul, one per core by default.</summary>
    public static Option<int> Threads() => new Option<int>("--threads", "-t")
    {
        Description = "Threads per matmul.", DefaultValueFactory = _ => Environment.ProcessorCount,
    }.AtLeast(1);

    /// <summary>--ctx-size/-c: the context length, checked against the model once it is loaded (<see cref="CheckContext"/>).</summary>
    public static Option<int?> ContextSize() => new Option<int?>("--ctx-size", "-c")
    {
        Description = "Context length (default: min(model's, 4096)).",
    }.AtLeast(1);

    /// <summary>--kv-type: the KV cache's storage by llama.cpp's names (its -ctk/-ctv), any case.</summary>
    public static Option<KvCacheType> KvType()
    {
        var option = new Option<KvCacheType>("--kv-type")
        {
            Description = "KV cache storage, as llama.cpp's -ctk/-ctv: f16 (default), f32, q8_0 (53 % of f16's memory) or q4_0 (28 %; the logits drift more).",
            DefaultValueFactory = _ => KvCacheType.F16,
            CustomParser = ParseKvType,
        };
        option.CompletionSources.Add([.. KvTypeNames]);
        return option;
    }

    private static readonly ImmutableArray<string> KvTypeNames = ["f16", "f32", "q8_0", "q4_0"];

    /// <summary>llama.cpp's name of a KV cache type: "q8_0".</summary>
    public static string KvTypeName(KvCacheType type) => type.ToString().ToLowerInvariant();

    private static KvCacheType ParseKvType(ArgumentResult result)
    {
        string text = result.Tokens.Count == 1 ? result.Tokens[0].Value : "";
        foreach (var type in Enum.GetValues<KvCacheType>())
        {
            if (string.Equals(text, KvTypeName(type), StringComparison.OrdinalIgnoreCase))
                return type;
        }
        result.AddError($"--kv-type must be one of {string.Join(", ", KvTypeNames)}, not \"{text}\".");
        return default;
    }

    /// <summary>Throws unless the --ctx-size given fits the model.</summary>
    public static void CheckContext(int? contextLength, int modelContextLength)
    {
        if (contextLength > modelContextLength)
            throw new ArgumentOutOfRangeException(nameof(contextLength), contextLength, $"-c/--ctx-size must be in [1, {modelContextLength}] (the model's context length).");
    }

    /// <summary>
    /// Adds a check that runs when the option is given: an <see cref="ArgumentException"/> it throws (a library's own bound
    /// check, typically) becomes a usage error naming the flag instead of the API property: "TopK must be ≥ 0" from
    /// <c>SamplingOptions.Validate</c> is reported as "--top-k must be ≥ 0".
    /// </summary>
    public static Option<T> Checked<T>(this Option<T> option, Action<T> check)
    {
        option.Validators.Add(result =>
        {
            T value;
            try
            {
                value = result.GetValueOrDefault<T>();
            }
            catch (InvalidOperationException)
            {
                return; // the value does not parse, and the parser says so
            }
            try
            {
                check(value);
            }
            catch (ArgumentException e)
            {
                result.AddError(FlagMessage(option, e));
            }
        });
        return option;
    }

    /// <summary>Adds the check that an integer option (when it has a value) is at least <paramref name="min"/>; <paramref name="meaning"/> explains special values.</summary>
    public static Option<T> AtLeast<T>(this Option<T> option, int min, string meaning = "") => option.Checked(value =>
    {
        if (value is int v && v < min)
            throw new ArgumentOutOfRangeException(Flag(option), v, $"{Flag(option)} must be ≥ {min}{meaning}.");
    });

    /// <summary>Adds the check that a number option (when it has a value) is finite and above 0.</summary>
    public static Option<float?> Positive(this Option<float?> option) => option.Checked(value =>
    {
        if (value is float v && !(v > 0 && float.IsFinite(v)))
            throw new ArgumentOutOfRangeException(Flag(option), v, $"{Flag(option)} must be a finite number > 0.");
    });

    /// <summary>How errors name an option: its short aliases and its name, "-n/--n-predict".</summary>
    public static string Flag(Option option) =>
        string.Join('/', option.Aliases.Where(a => !a.StartsWith("--", StringComparison.Ordinal)).Order(StringComparer.Ordinal).Append(option.Name));

    // The exception's message with the flag for the property it names: "TopK must be ≥ 0 (0 disables it). Actual value was -3."
    // becomes "--top-k must be ≥ 0 (0 disables it). Actual value was -3."; a message that names no property gets the flag in front.
    private static string FlagMessage(Option option, ArgumentException e)
    {
        string message = ExitCodes.Message(e);
        return e.ParamName is { Length: > 0 } p && message.StartsWith(p + " ", StringComparison.Ordinal)
            ? Flag(option) + message[p.Length..]
            : $"{Flag(option)}: {message}";
    }

    private static int[] ParseIntList(ArgumentResult result)
    {
        var values = new List<int>();
        foreach (var token in result.Tokens)
        {
            foreach (string part in token.Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!int.TryParse(part, out int v) || v < 0)
                {
                    result.AddError($"\"{part}\" is not a non-negative integer.");
                    return [];
                }
                values.Add(v);
            }
        }
        return values.ToArray();
    }
}

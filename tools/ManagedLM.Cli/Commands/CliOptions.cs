using System.CommandLine;
using System.CommandLine.Parsing;

namespace ManagedLM.Cli.Commands;

/// <summary>Options and parsers shared by several commands.</summary>
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

namespace ManagedLM.Grammars;

/// <summary>
/// A grammar text that cannot be used: a syntax error, an undefined or missing rule, left recursion, or a
/// grammar larger than the limits allow. <see cref="Line"/> and <see cref="Column"/> (1-based) say where,
/// when the problem has a place in the text.
/// </summary>
public sealed class GrammarException : FormatException
{
    /// <summary>Creates the exception; the message gets " (line L, column C)" appended when a place is given.</summary>
    public GrammarException(string problem, int? line = null, int? column = null)
        : base(line is null ? problem : $"{problem} (line {line}, column {column})")
    {
        Problem = problem;
        Line = line;
        Column = column;
    }

    /// <summary>What is wrong, without the place.</summary>
    public string Problem { get; }

    /// <summary>1-based line of the problem, or null when it has no place in the text.</summary>
    public int? Line { get; }

    /// <summary>1-based column (UTF-16 code units) of the problem, or null when it has no place in the text.</summary>
    public int? Column { get; }
}

namespace ManagedLM.Grammars;

/// <summary>
/// Generation cannot go on inside a request's grammar: it needs text that no token of the model's vocabulary gives,
/// or following it took the matcher past its limits (<see cref="GrammarMatcher.MaxStacks"/>, nesting, work per token).
/// A fault of the grammar given with the request, not of the model; only that request ends.
/// </summary>
public sealed class GrammarConstraintException : InvalidOperationException
{
    public GrammarConstraintException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}

namespace ManagedLM.Generation;

/// <summary>A token id and its log-probability.</summary>
public readonly record struct TokenLogprob(int Id, float Logprob);

/// <summary>
/// One generated token as it streams out: its id and the text it completes. Text can be empty (a
/// token that ends mid-character, or text held back while it could still be the start of a stop
/// string) and later tokens then carry it.
/// </summary>
/// <remarks>
/// A last output with <see cref="Id"/> = <see cref="NoToken"/> carries text released at the end
/// (held back for a possible stop string, or an incomplete character) and no new token.
/// </remarks>
public readonly record struct TokenOutput(int Id, string Text, float? Logprob = null, TokenLogprob[]? TopLogprobs = null)
{
    /// <summary>The <see cref="Id"/> of a final output that only releases held-back text.</summary>
    public const int NoToken = -1;
}

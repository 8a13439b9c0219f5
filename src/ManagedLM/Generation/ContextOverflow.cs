namespace ManagedLM.Generation;

/// <summary>What a request does when its next token does not fit the context (<see cref="GenerationOptions.ContextOverflow"/>).</summary>
public enum ContextOverflow
{
    /// <summary>End with <see cref="StopReason.ContextFull"/> (the default). A chat whose conversation does not fit is an <see cref="ArgumentException"/>.</summary>
    Stop,

    /// <summary>
    /// Context shift, as llama.cpp's <c>--context-shift</c>: keep the first <see cref="GenerationOptions.KeepTokens"/>
    /// tokens, discard the oldest half of the rest (<see cref="GenerationOptions.DiscardTokens"/>), move the remaining
    /// keys and values down (keys re-rotated) and go on. The moved entries were computed with the discarded tokens in
    /// view, so what follows is close to, not equal to, a fresh evaluation of the kept tokens.
    /// </summary>
    Shift,

    /// <summary>
    /// For chat (<see cref="Chat.ChatSession"/>, <see cref="Chat.ModelChatClient"/>): before a turn, drop the oldest turns
    /// (a user message and the replies and tool messages after it; system messages always stay) until the conversation
    /// leaves room for the reply, and render it again. A reply that still fills the context shifts as with
    /// <see cref="Shift"/>, keeping the system prompt. For a plain prompt it is <see cref="Shift"/>.
    /// </summary>
    TruncateHistory,
}

/// <summary>The policies' names in requests and on the command line: <c>stop</c>, <c>shift</c>, <c>truncate_history</c>.</summary>
public static class ContextOverflowNames
{
    /// <summary>The snake_case name of <paramref name="policy"/>.</summary>
    public static string Name(ContextOverflow policy) => policy switch
    {
        ContextOverflow.Stop => "stop",
        ContextOverflow.Shift => "shift",
        ContextOverflow.TruncateHistory => "truncate_history",
        _ => throw new ArgumentOutOfRangeException(nameof(policy), policy, "Not a ContextOverflow policy."),
    };

    /// <summary>Reads a policy by name, case and '_'/'-' ignored (<c>truncate_history</c>, <c>truncate-history</c>, <c>TruncateHistory</c>).</summary>
    public static bool TryParse(string? name, out ContextOverflow policy)
    {
        string key = (name ?? "").Replace("_", "", StringComparison.Ordinal).Replace("-", "", StringComparison.Ordinal).ToLowerInvariant();
        (bool ok, policy) = key switch
        {
            "stop" => (true, ContextOverflow.Stop),
            "shift" => (true, ContextOverflow.Shift),
            "truncatehistory" => (true, ContextOverflow.TruncateHistory),
            _ => (false, ContextOverflow.Stop),
        };
        return ok;
    }
}

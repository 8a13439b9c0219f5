using System.Collections.Immutable;

namespace ManagedLM.Chat.Tools;

/// <summary>A finished reply split into its parts.</summary>
/// <param name="Content">The text meant for the user, trimmed; empty when there is none. Call text that does not parse stays here.</param>
/// <param name="Reasoning">The model's reasoning (e.g. inside <c>&lt;think&gt;</c>), trimmed; null when the reply has none or it is kept inline.</param>
/// <param name="ToolCalls">The calls, in order; arguments are compact JSON text.</param>
public sealed record ParsedReply(string Content, string? Reasoning, ImmutableArray<ToolCall> ToolCalls)
{
    /// <summary>The reply as an assistant message: content null when it is empty and there are calls (as OpenAI sends it).</summary>
    public ChatMessage ToMessage() => new("assistant", Content.Length == 0 && !ToolCalls.IsDefaultOrEmpty ? null : Content)
    {
        ToolCalls = ToolCalls,
        ReasoningContent = Reasoning,
    };
}

/// <summary>What a <see cref="ToolCallStreamParser"/> event carries.</summary>
public enum ReplyEventKind
{
    /// <summary>More content text (<see cref="ReplyEvent.Text"/>).</summary>
    Content,
    /// <summary>More reasoning text (<see cref="ReplyEvent.Text"/>).</summary>
    Reasoning,
    /// <summary>A call starts: <see cref="ReplyEvent.Index"/>, <see cref="ReplyEvent.Id"/>, <see cref="ReplyEvent.Name"/>.</summary>
    ToolCallStart,
    /// <summary>More of call <see cref="ReplyEvent.Index"/>'s arguments (<see cref="ReplyEvent.Text"/>).</summary>
    ToolCallArguments,
}

/// <summary>One step of a streamed reply.</summary>
/// <param name="Kind">What the event carries.</param>
/// <param name="Text">The text added (content, reasoning or argument chunk); null for <see cref="ReplyEventKind.ToolCallStart"/>.</param>
/// <param name="Index">The call's index in the reply (tool-call events), else -1.</param>
/// <param name="Id">The call's id (<see cref="ReplyEventKind.ToolCallStart"/>).</param>
/// <param name="Name">The function called (<see cref="ReplyEventKind.ToolCallStart"/>).</param>
public readonly record struct ReplyEvent(ReplyEventKind Kind, string? Text, int Index = -1, string? Id = null, string? Name = null);

/// <summary>How a reply is parsed.</summary>
public sealed record ReplyParseOptions
{
    /// <summary>Default options: reasoning separated, ids from a random seed.</summary>
    public static ReplyParseOptions Default { get; } = new();

    /// <summary>Separate reasoning from the content (true), or keep it inline in the content with its markers (false).</summary>
    public bool ExtractReasoning { get; init; } = true;

    /// <summary>
    /// The prompt already opened the reasoning (e.g. the generation prompt ends with <c>&lt;think&gt;</c>), so the reply
    /// starts inside it. See <see cref="ToolCallFormat.PromptOpensReasoning"/>.
    /// </summary>
    public bool StartsInReasoning { get; init; }

    /// <summary>Look for tool calls (true), or only split off the reasoning: a request without tools (false).</summary>
    public bool ToolCalls { get; init; } = true;

    /// <summary>Seed of the ids given to calls the format does not number itself; null: a random seed. Same seed, same ids.</summary>
    public long? IdSeed { get; init; }
}

using ManagedLM.Chat.Jinja;
using ManagedLM.Generation;
using ManagedLM.Tokenization;

namespace ManagedLM.Chat;

/// <summary>
/// A conversation rendered to fit a context (<see cref="ChatHistory.Fit"/>): the messages kept, the prompt and its ids,
/// and how many leading ids are the system prompt.
/// </summary>
/// <param name="Messages">The conversation as rendered: system messages, then the newest turns.</param>
/// <param name="Rendered">The template's text.</param>
/// <param name="Tokens">Its ids (<see cref="ChatTemplate.Tokenize"/>).</param>
/// <param name="DroppedMessages">Messages of the oldest turns left out.</param>
/// <param name="SystemTokens">Leading ids that render the system messages (BOS included), at most what a context shift may keep.</param>
public sealed record FittedConversation(IReadOnlyList<ChatMessage> Messages, string Rendered, int[] Tokens, int DroppedMessages, int SystemTokens)
{
    /// <summary>
    /// <paramref name="options"/> for the reply: when it shifts the context, at least the system prompt is kept
    /// (<see cref="GenerationOptions.KeepTokens"/> raised to it; -1, the whole prompt, stays).
    /// </summary>
    public GenerationOptions ForReply(GenerationOptions options, Tokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (options.ContextOverflow == ContextOverflow.Stop || options.KeepTokens < 0)
            return options;
        int bos = Tokens.Length > 0 && Tokens[0] == tokenizer.BosTokenId ? 1 : 0;
        int system = Math.Max(0, SystemTokens - bos);
        return system > options.KeepTokens ? options with { KeepTokens = system } : options;
    }
}

/// <summary>
/// Fits a conversation to a context the way <see cref="ContextOverflow.TruncateHistory"/> does: the oldest turns (a user
/// message with the replies and tool messages after it) are dropped until the prompt leaves room for the reply; system
/// messages always stay, and so does the last turn.
/// </summary>
public static class ChatHistory
{
    /// <summary>The reply room a conversation is trimmed to leave: the reply's token budget, at most half the context (at least 1).</summary>
    public static int ReplyRoom(int maxTokens, int contextLength) => Math.Clamp(maxTokens, 1, Math.Max(1, contextLength / 2));

    /// <summary>
    /// Renders <paramref name="messages"/> with <paramref name="template"/> and, when <paramref name="truncate"/>, drops the
    /// oldest turns until the prompt plus <paramref name="replyRoom"/> tokens fit <paramref name="contextLength"/> (fewest
    /// dropped; if even the last turn alone leaves less room, the fewest turns whose prompt still fits the context, and
    /// the reply shifts as it goes). Without <paramref name="truncate"/> the conversation is rendered whole.
    /// </summary>
    /// <exception cref="ArgumentException">The conversation (with only its last turn, when truncating) does not fit the context.</exception>
    /// <exception cref="TemplateException">The template rejected the conversation.</exception>
    public static FittedConversation Fit(ChatTemplate template, Tokenizer tokenizer, IReadOnlyList<ChatMessage> messages, int contextLength,
        int replyRoom, bool truncate, ChatTemplateOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(template);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(messages);
        options ??= ChatTemplateOptions.Default;
        var system = messages.Where(IsSystem).ToList();

        // Turn k starts at messages[starts[k]] (the first message that is not a system one, then each user message);
        // dropping k turns leaves out the messages before starts[k] other than system ones, in their order.
        var starts = new List<int>();
        for (int i = 0; i < messages.Count; i++)
        {
            if (!IsSystem(messages[i]) && (starts.Count == 0 || messages[i].Role == "user"))
                starts.Add(i);
        }

        List<ChatMessage> Kept(int dropped) => dropped == 0 ? [.. messages]
            : [.. messages.Where((m, i) => i >= starts[dropped] || IsSystem(m))];
        FittedConversation? Render(int dropped, int budget)
        {
            var kept = Kept(dropped);
            string text = template.Render(kept, options);
            // A text that cannot fit is not tokenized (its bytes bound its tokens from below).
            if (tokenizer.MinimumTokenCount(text) > budget)
                return null;
            int[] ids = template.Tokenize(tokenizer, text);
            return ids.Length <= budget ? new FittedConversation(kept, text, ids, messages.Count - kept.Count, 0) : null;
        }

        FittedConversation? fit;
        if (!truncate || starts.Count <= 1)
            fit = null;
        else
        {
            // The fewest dropped turns that leave the reply its room (fewer dropped: a longer prompt), else the fewest whose
            // prompt fits at all.
            fit = Render(0, contextLength - replyRoom)
                ?? Fewest(starts.Count - 1, d => Render(d, contextLength - replyRoom))
                ?? Fewest(starts.Count - 1, d => Render(d, contextLength));
        }
        if (fit is null)
        {
            var kept = Kept(truncate ? Math.Max(0, starts.Count - 1) : 0);
            string text = template.Render(kept, options);
            int[] ids = template.Tokenize(tokenizer, text, contextLength);
            if (ids.Length > contextLength)
                throw new ArgumentException($"The conversation has {ids.Length} tokens; the context length is {contextLength}.", nameof(messages));
            fit = new FittedConversation(kept, text, ids, messages.Count - kept.Count, 0);
        }
        return fit with { SystemTokens = SystemPrefix(template, tokenizer, system, fit.Tokens, contextLength, options) };
    }

    // Binary search for the fewest dropped turns in [0, most] that render within budget (the prompt shrinks as turns go).
    private static FittedConversation? Fewest(int most, Func<int, FittedConversation?> render)
    {
        if (render(most) is not { } best)
            return null;
        int lo = 0, hi = most;   // hi fits
        while (lo < hi)
        {
            int mid = (lo + hi) / 2;
            if (render(mid) is { } f)
                (best, hi) = (f, mid);
            else
                lo = mid + 1;
        }
        return best;
    }

    // The ids the prompt shares with the system messages rendered alone, bounded so that a context shift may keep them.
    private static int SystemPrefix(ChatTemplate template, Tokenizer tokenizer, List<ChatMessage> system, int[] prompt, int contextLength,
        ChatTemplateOptions options)
    {
        int[] ids;
        try
        {
            ids = template.Tokenize(tokenizer, template.Render(system, options with { AddGenerationPrompt = false }));
        }
        catch (TemplateException)
        {
            // A template that wants more than a system message: keep only what the tokenizer adds.
            ids = tokenizer.AddBosToken ? [tokenizer.BosTokenId] : [];
        }
        int n = 0, limit = Math.Min(Math.Min(ids.Length, prompt.Length), contextLength - Generator.MinimumShiftRoom);
        while (n < limit && ids[n] == prompt[n])
            n++;
        return n;
    }

    private static bool IsSystem(ChatMessage m) => m.Role is "system" or "developer";
}

using System.Runtime.CompilerServices;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using ManagedLM.Generation;
using ManagedLM.Model;

namespace ManagedLM.Chat;

/// <summary>Options of a <see cref="ChatSession"/>.</summary>
public sealed record ChatSessionOptions
{
    public static ChatSessionOptions Default => new();

    /// <summary>The template to render with; null: the model's (the model's <c>ChatTemplate</c> (<see cref="ModelChatTemplates"/>)).</summary>
    public ChatTemplate? Template { get; init; }

    /// <summary>The system prompt, sent first (null: none).</summary>
    public string? SystemPrompt { get; init; }

    /// <summary>
    /// How replies are generated (max tokens, sampling, stop strings). Its <see cref="GenerationOptions.ContextOverflow"/>
    /// decides what a conversation that outgrows the context does: <see cref="ContextOverflow.TruncateHistory"/> drops the
    /// oldest turns before a turn (the system prompt stays) so the session can go on for ever.
    /// </summary>
    public GenerationOptions Generation { get; init; } = GenerationOptions.Default;

    /// <summary>The session's generator (context length, KV cache type, threads).</summary>
    public GeneratorOptions Generator { get; init; } = GeneratorOptions.Default;

    /// <summary>Tools offered to the model (OpenAI's <c>tools</c> array), or null.</summary>
    public JsonArray? Tools { get; init; }
}

/// <summary>
/// One conversation with a model: its history, system prompt and generation options, and a generator of its own. Each
/// turn renders the whole conversation with the template, tokenizes it (special tokens parsed) and evaluates only what
/// the cache does not already hold: the previous turns stay cached, and when the template rewrites earlier text the
/// generator falls back to the longest prefix that still matches. A session is one request's state: use one per
/// conversation (sessions on the same or different models run side by side).
/// <para>
/// A conversation that outgrows the context: with <see cref="ContextOverflow.Stop"/> (the default) a turn whose prompt
/// does not fit is an <see cref="ArgumentException"/>; with <see cref="ContextOverflow.TruncateHistory"/> the oldest turns
/// leave the history (<see cref="Messages"/>, <see cref="DroppedMessages"/>) until the conversation leaves room for the
/// reply (<see cref="ChatHistory.ReplyRoom"/>), and the re-rendered prompt reuses the cached system prompt. With
/// <see cref="ContextOverflow.Shift"/> or TruncateHistory a reply that fills the context shifts it, keeping the system prompt.
/// </para>
/// </summary>
public sealed class ChatSession : IDisposable
{
    private readonly List<ChatMessage> _messages = [];
    private readonly Generator _generator;

    public ChatSession(TransformerModel model, ChatSessionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= ChatSessionOptions.Default;
        Model = model;
        Template = options.Template ?? model.ChatTemplate;
        SystemPrompt = options.SystemPrompt;
        GenerationOptions = options.Generation;
        Tools = options.Tools;
        _generator = model.CreateGenerator(options.Generator);
    }

    public TransformerModel Model { get; }

    /// <summary>The template this session renders with.</summary>
    public ChatTemplate Template { get; }

    /// <summary>The system prompt, sent before the messages; changing it re-renders the conversation from the start.</summary>
    public string? SystemPrompt { get; set; }

    /// <summary>How replies are generated.</summary>
    public GenerationOptions GenerationOptions { get; set; }

    /// <summary>Tools offered to the model, or null.</summary>
    public JsonArray? Tools { get; set; }

    /// <summary>The user and assistant messages so far (the system prompt is not among them).</summary>
    public IReadOnlyList<ChatMessage> Messages => _messages;

    /// <summary>The result of the last reply (tokens, reused prompt tokens, stop reason, timings), or null.</summary>
    public GenerationResult? LastResult { get; private set; }

    /// <summary>Messages of the oldest turns dropped so far to fit the context (<see cref="ContextOverflow.TruncateHistory"/>).</summary>
    public int DroppedMessages { get; private set; }

    /// <summary>Adds a message to the history without generating (e.g. an earlier exchange, or a tool's answer).</summary>
    public void Add(ChatMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        _messages.Add(message);
    }

    /// <summary>Forgets the messages (the system prompt stays) and the cached tokens.</summary>
    public void Reset()
    {
        _messages.Clear();
        _generator.Reset();
        LastResult = null;
        DroppedMessages = 0;
    }

    /// <summary>The prompt text the next reply would be generated from (the rendered conversation).</summary>
    public string RenderPrompt(bool addGenerationPrompt = true)
    {
        var messages = new List<ChatMessage>(_messages.Count + 1);
        if (SystemPrompt is not null)
            messages.Add(ChatMessage.System(SystemPrompt));
        messages.AddRange(_messages);
        return Template.Render(messages, new ChatTemplateOptions { AddGenerationPrompt = addGenerationPrompt, Tools = Tools });
    }

    /// <summary>Sends a user message and returns the reply (also added to the history).</summary>
    public string Send(string userMessage, CancellationToken cancellationToken = default) =>
        SendCore(userMessage, null, cancellationToken).Text;

    /// <summary>Sends a user message; <paramref name="onToken"/> sees the reply as it is produced.</summary>
    public GenerationResult Send(string userMessage, Action<TokenOutput>? onToken, CancellationToken cancellationToken = default) =>
        SendCore(userMessage, onToken, cancellationToken);

    /// <summary>Runs <see cref="Send(string, CancellationToken)"/> on the thread pool.</summary>
    public Task<GenerationResult> SendAsync(string userMessage, CancellationToken cancellationToken = default) =>
        Task.Run(() => SendCore(userMessage, null, cancellationToken), cancellationToken);

    /// <summary>
    /// Streams the reply to a user message. The reply joins the history when the enumeration ends — as far as it got
    /// when it is cancelled, since that much is in the cache.
    /// </summary>
    public async IAsyncEnumerable<TokenOutput> SendStreamingAsync(string userMessage, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var (prompt, options) = BeginTurn(userMessage);
        var text = new System.Text.StringBuilder();
        bool finished = false;
        try
        {
            await foreach (var t in _generator.GenerateStreamingAsync(prompt, options, cancellationToken).ConfigureAwait(false))
            {
                text.Append(t.Text);
                yield return t;
            }
            finished = true;
        }
        finally
        {
            LastResult = finished ? _generator.LastResult : null;
            _messages.Add(ChatMessage.Assistant(text.ToString()));
        }
    }

    private GenerationResult SendCore(string userMessage, Action<TokenOutput>? onToken, CancellationToken cancellationToken)
    {
        var (prompt, options) = BeginTurn(userMessage);
        var text = new System.Text.StringBuilder();
        try
        {
            LastResult = _generator.Complete(prompt, options, t =>
            {
                text.Append(t.Text);
                onToken?.Invoke(t);
            }, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // The partial reply is in the cache: keep it in the history too.
            _messages.Add(ChatMessage.Assistant(text.ToString()));
            throw;
        }
        catch
        {
            _messages.RemoveAt(_messages.Count - 1);
            throw;
        }
        _messages.Add(ChatMessage.Assistant(LastResult.Text));
        return LastResult;
    }

    // Adds the user message and returns the conversation's prompt tokens and the reply's options; with TruncateHistory,
    // first drops the oldest turns that leave the reply too little room.
    private (int[] Prompt, GenerationOptions Options) BeginTurn(string userMessage)
    {
        ArgumentNullException.ThrowIfNull(userMessage);
        _messages.Add(ChatMessage.User(userMessage));
        FittedConversation fit;
        var generation = GenerationOptions with { ReusePrefix = true };
        int context = _generator.ContextLength;
        try
        {
            var conversation = new List<ChatMessage>(_messages.Count + 1);
            if (SystemPrompt is not null)
                conversation.Add(ChatMessage.System(SystemPrompt));
            conversation.AddRange(_messages);
            fit = ChatHistory.Fit(Template, Model.Tokenizer, conversation, context, ChatHistory.ReplyRoom(generation.MaxTokens, context),
                generation.ContextOverflow == ContextOverflow.TruncateHistory, new ChatTemplateOptions { Tools = Tools });
        }
        catch
        {
            _messages.RemoveAt(_messages.Count - 1);
            throw;
        }
        if (fit.DroppedMessages > 0)
        {
            _messages.Clear();
            _messages.AddRange(fit.Messages.Skip(SystemPrompt is null ? 0 : 1));
            DroppedMessages += fit.DroppedMessages;
        }
        return (fit.Tokens, Template.ForReply(fit.ForReply(generation, Model.Tokenizer)));
    }

    /// <summary>The token ids of a rendered prompt (<see cref="ChatTemplate.Tokenize"/> with this session's template).</summary>
    public int[] Tokenize(string prompt) => Template.Tokenize(Model.Tokenizer, prompt);

    /// <summary>
    /// Writes the conversation (system prompt and messages) as indented JSON, text as readable as JSON allows
    /// (quotes as <c>\"</c>, non-ASCII and HTML characters as themselves; the stream is for a file, not a web page).
    /// </summary>
    public void Save(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var messages = new JsonArray();
        foreach (var m in _messages)
            messages.Add(ToJson(m));
        var root = new JsonObject { ["system"] = SystemPrompt, ["messages"] = messages };
        using var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        root.WriteTo(writer);
    }

    /// <summary>Replaces the conversation with one written by <see cref="Save"/>; the next turn re-evaluates what the cache does not hold.</summary>
    /// <exception cref="JsonException">The stream is not a saved conversation.</exception>
    public void Load(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var root = JsonNode.Parse(stream) as JsonObject ?? throw new JsonException("A saved chat session is a JSON object.");
        var messages = root["messages"] as JsonArray ?? throw new JsonException("A saved chat session has a \"messages\" array.");
        var loaded = new List<ChatMessage>();
        foreach (var m in messages)
        {
            try
            {
                loaded.Add(ChatMessage.FromJson(m ?? throw new JsonException("A message is null.")));
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException)
            {
                throw new JsonException($"A saved message is malformed: {e.Message}", e);
            }
        }
        SystemPrompt = root["system"]?.GetValue<string>();
        _messages.Clear();
        _messages.AddRange(loaded);
        LastResult = null;
        DroppedMessages = 0;
    }

    private static JsonObject ToJson(ChatMessage m)
    {
        var o = new JsonObject { ["role"] = m.Role, ["content"] = m.Content };
        if (m.ToolCallId is not null)
            o["tool_call_id"] = m.ToolCallId;
        if (!m.ToolCalls.IsDefaultOrEmpty)
        {
            var calls = new JsonArray();
            foreach (var c in m.ToolCalls)
                calls.Add(new JsonObject { ["type"] = "function", ["function"] = new JsonObject { ["name"] = c.Name, ["arguments"] = c.Arguments }, ["id"] = c.Id });
            o["tool_calls"] = calls;
        }
        return o;
    }

    public void Dispose() => _generator.Dispose();
}

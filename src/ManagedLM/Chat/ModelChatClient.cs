using System.Runtime.CompilerServices;
using System.Text.Json;
using ManagedLM.Generation;
using ManagedLM.Model;
using ManagedLM.Sampling;
using AI = Microsoft.Extensions.AI;

namespace ManagedLM.Chat;

/// <summary>Options of a <see cref="ModelChatClient"/>.</summary>
public sealed record ModelChatClientOptions
{
    /// <summary>The model id responses report (default: <see cref="TransformerModel.Name"/>).</summary>
    public string? ModelId { get; init; }

    /// <summary>Prompt format (default: the model's the model's <c>ChatTemplate</c> (<see cref="ModelChatTemplates"/>)).</summary>
    public ChatTemplate? Template { get; init; }

    /// <summary>Context length, threads and KV cache type of each generator.</summary>
    public GeneratorOptions Generator { get; init; } = GeneratorOptions.Default;

    /// <summary>Generation options of a call before its <see cref="AI.ChatOptions"/> apply (max tokens, sampling, stops).</summary>
    public GenerationOptions Generation { get; init; } = GenerationOptions.Default;

    /// <summary>
    /// Split the model's reasoning (<c>&lt;think&gt;…&lt;/think&gt;</c> and the like) from replies into
    /// <see cref="AI.TextReasoningContent"/> (true, the default), or leave it inline in the text (false).
    /// </summary>
    public bool ExtractReasoning { get; init; } = true;

    /// <summary>Calls generating at once (one generator and KV cache each); more calls wait. 0: one per core.</summary>
    public int MaxConcurrentCalls { get; init; }
}

/// <summary>
/// <see cref="AI.IChatClient"/> over a model in this process: each call renders the conversation with the model's chat
/// template and generates the reply on a generator of its own, so calls from many threads run in parallel. Idle
/// generators keep their KV caches, and a call takes the one whose cache shares the longest prefix with its prompt: the
/// next turn of a conversation evaluates only the new messages.
/// </summary>
/// <remarks>
/// <see cref="AI.ChatOptions"/> maps to generation: <c>MaxOutputTokens</c>, <c>Temperature</c>, <c>TopP</c>, <c>TopK</c>,
/// <c>Seed</c>, <c>StopSequences</c>, <c>FrequencyPenalty</c>, <c>PresencePenalty</c>, <c>Instructions</c> as a first
/// system message, and <c>ResponseFormat</c>: JSON constrains the reply to a JSON object, JSON with a schema to JSON that
/// validates against it (so <c>GetResponseAsync&lt;T&gt;</c> returns typed objects); an unsupported schema keyword is a
/// <see cref="Grammars.JsonSchemaException"/>. <c>Tools</c> (function declarations) are rendered through the template
/// and, with <c>ToolMode</c> (auto, none, require any, require one function) and <c>AllowMultipleToolCalls</c>,
/// constrain the reply: calls come back as <see cref="AI.FunctionCallContent"/> whose arguments validate against each
/// function's schema (so <c>UseFunctionInvocation()</c> runs C# functions end to end), in the model family's own call
/// format (<see cref="Tools.ToolCallFormat.Detect"/>). Reasoning comes back as <see cref="AI.TextReasoningContent"/>.
/// A conversation longer than the context follows <see cref="GenerationOptions.ContextOverflow"/> (of
/// <see cref="ModelChatClientOptions.Generation"/>, or per call <c>AdditionalProperties["context_overflow"]</c> and
/// <c>["n_keep"]</c>): Stop refuses it (<see cref="ArgumentException"/>), TruncateHistory leaves out its oldest turns for
/// this call (<see cref="ChatHistory.Fit"/>; the caller's messages are not changed), and a reply that fills the context
/// shifts it with Shift or TruncateHistory, keeping the system prompt.
/// </remarks>
/// <example>
/// <code>
/// using var model = TransformerModel.Load("model.gguf");
/// IChatClient client = new ModelChatClient(model);
/// var response = await client.GetResponseAsync("Why is the sky blue?", new ChatOptions { Temperature = 0.2f, MaxOutputTokens = 200 });
/// Console.WriteLine(response.Text);
/// </code>
/// </example>
public sealed class ModelChatClient : AI.IChatClient
{
    private readonly TransformerModel _model;
    private readonly ModelChatClientOptions _options;
    private readonly ChatTemplate _template;
    private readonly Tools.ToolCallFormat _toolFormat;
    private readonly string _modelId;
    private readonly GeneratorPool _generators;
    private bool _disposed;

    /// <summary>A client of <paramref name="model"/>, which must outlive it.</summary>
    public ModelChatClient(TransformerModel model, ModelChatClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = model;
        _options = options ?? new ModelChatClientOptions();
        _options.Generation.Validate();
        ArgumentOutOfRangeException.ThrowIfNegative(_options.MaxConcurrentCalls, nameof(options));
        _template = _options.Template ?? model.ChatTemplate;
        _modelId = _options.ModelId ?? model.Name;
        _toolFormat = Tools.ToolCallFormat.Detect(_template);
        Metadata = new AI.ChatClientMetadata("managedlm", null, _modelId);
        _generators = new GeneratorPool(model, _options.Generator, _options.MaxConcurrentCalls, keepCaches: true);
    }

    /// <summary>Provider "managedlm" and the model id.</summary>
    public AI.ChatClientMetadata Metadata { get; }

    public async Task<AI.ChatResponse> GetResponseAsync(IEnumerable<AI.ChatMessage> messages, AI.ChatOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        var (prompt, generation, reader) = Prepare(messages, options);
        using var lease = await _generators.RentAsync(prompt, cancellationToken).ConfigureAwait(false);
        var result = await lease.Generator.GenerateAsync(prompt, generation, cancellationToken).ConfigureAwait(false);
        var reply = reader.Read(result.Text);
        string id = NewId();
        return new AI.ChatResponse(new AI.ChatMessage(AI.ChatRole.Assistant, Contents(reply)) { MessageId = id })
        {
            ResponseId = id, ModelId = _modelId, CreatedAt = DateTimeOffset.UtcNow,
            FinishReason = FinishReason(result.StopReason, reply), Usage = Usage(result),
        };
    }

    public async IAsyncEnumerable<AI.ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<AI.ChatMessage> messages,
        AI.ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var (prompt, generation, reader) = Prepare(messages, options);
        using var lease = await _generators.RentAsync(prompt, cancellationToken).ConfigureAwait(false);
        var generator = lease.Generator;
        string id = NewId();
        var created = DateTimeOffset.UtcNow;
        AI.ChatResponseUpdate Update(IList<AI.AIContent> contents) => new(AI.ChatRole.Assistant, contents)
        {
            ResponseId = id, MessageId = id, ModelId = _modelId, CreatedAt = created,
        };
        await foreach (var t in generator.GenerateStreamingAsync(prompt, generation, cancellationToken).ConfigureAwait(false))
        {
            if (t.Text.Length > 0 && TextContents(reader.Append(t.Text)) is { Count: > 0 } contents)
                yield return Update(contents);
        }
        var rest = TextContents(reader.Finish());
        var reply = reader.Result!;
        // Calls come whole, once the reply has ended (FunctionInvokingChatClient reads them from the updates).
        foreach (var call in reply.ToolCalls)
            rest.Add(FunctionCall(call));
        if (rest.Count > 0)
            yield return Update(rest);
        var result = generator.LastResult!;
        var last = Update([new AI.UsageContent(Usage(result))]);
        last.FinishReason = FinishReason(result.StopReason, reply);
        yield return last;
    }

    /// <summary>This client, its <see cref="Metadata"/>, or its <see cref="TransformerModel"/>.</summary>
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null)
            return null;
        if (serviceType == typeof(AI.ChatClientMetadata))
            return Metadata;
        if (serviceType.IsInstanceOfType(this))
            return this;
        return serviceType.IsInstanceOfType(_model) ? _model : null;
    }

    // A parsed reply as message contents: reasoning, text, calls.
    private static List<AI.AIContent> Contents(Tools.ParsedReply reply)
    {
        var contents = new List<AI.AIContent>();
        if (reply.Reasoning is { Length: > 0 } reasoning)
            contents.Add(new AI.TextReasoningContent(reasoning));
        if (reply.Content.Length > 0 || reply.ToolCalls.IsDefaultOrEmpty)
            contents.Add(new AI.TextContent(reply.Content));
        foreach (var call in reply.ToolCalls)
            contents.Add(FunctionCall(call));
        return contents;
    }

    // The text events of a reply being read (content and reasoning deltas) as update contents.
    private static List<AI.AIContent> TextContents(IReadOnlyList<Tools.ReplyEvent> events)
    {
        var contents = new List<AI.AIContent>();
        foreach (var e in events)
        {
            if (e.Kind == Tools.ReplyEventKind.Content)
                contents.Add(new AI.TextContent(e.Text));
            else if (e.Kind == Tools.ReplyEventKind.Reasoning)
                contents.Add(new AI.TextReasoningContent(e.Text));
        }
        return contents;
    }

    private static AI.FunctionCallContent FunctionCall(ToolCall call) =>
        new(call.Id, call.Name, JsonSerializer.Deserialize<Dictionary<string, object?>>(call.Arguments, AI.AIJsonUtilities.DefaultOptions));

    // The prompt's token ids, the call's generation options, and the reader of its reply.
    private (int[] Prompt, GenerationOptions Generation, Tools.ReplyReader Reader) Prepare(IEnumerable<AI.ChatMessage> messages, AI.ChatOptions? options)
    {
        ArgumentNullException.ThrowIfNull(messages);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var conversation = new List<ChatMessage>();
        if (options?.Instructions is { Length: > 0 } instructions)
            conversation.Add(ChatMessage.System(instructions));
        foreach (var m in messages)
            conversation.AddRange(ToTemplateMessages(m));
        if (conversation.Count == 0)
            throw new ArgumentException("There are no messages.", nameof(messages));
        var tools = options?.Tools?.OfType<AI.AIFunctionDeclaration>()
            .Select(f => new Tools.ToolDefinition(f.Name, f.Description, f.JsonSchema.GetRawText())).ToList() ?? [];
        var choice = options?.ToolMode switch
        {
            AI.NoneChatToolMode => Tools.ToolChoice.None,
            AI.RequiredChatToolMode { RequiredFunctionName: { } name } => Tools.ToolChoice.Function(name),
            AI.RequiredChatToolMode => Tools.ToolChoice.Required,
            _ => Tools.ToolChoice.Auto,
        };
        bool callsTools = tools.Count > 0 && choice.Mode != Tools.ToolChoiceMode.None;
        var generation = Generation(options);
        int context = GeneratorOptions.ContextLengthFor(_model, _options.Generator.ContextLength);
        var fit = ChatHistory.Fit(_template, _model.Tokenizer, conversation, context, ChatHistory.ReplyRoom(generation.MaxTokens, context),
            generation.ContextOverflow == ContextOverflow.TruncateHistory, new ChatTemplateOptions { Tools = tools.Count > 0 ? ToolsJson(tools) : null });
        string rendered = fit.Rendered;
        int[] prompt = fit.Tokens;
        bool opened = _toolFormat.PromptOpensReasoning(rendered);
        generation = _template.ForReply(fit.ForReply(generation, _model.Tokenizer));
        // The response format's grammar: alone, or as the alternative to calls.
        string? response = options?.ResponseFormat is AI.ChatResponseFormatJson json
            ? json.Schema is { } schema ? Grammars.JsonSchemaGrammar.ToGbnf(schema) : Grammars.JsonSchemaGrammar.JsonObjectGbnf
            : null;
        if (callsTools)
            generation = _toolFormat.Plan(tools, choice, options?.AllowMultipleToolCalls ?? true, opened, response, _toolFormat.TemplateReasons(_template))
                .ApplyTo(generation);
        else if (response is not null)
            generation = generation with { Grammar = Grammars.Grammar.FromGbnfCached(response) };
        var reader = new Tools.ReplyReader(_toolFormat, new Tools.ReplyParseOptions
        {
            ExtractReasoning = _options.ExtractReasoning, StartsInReasoning = opened, ToolCalls = callsTools,
        });
        return (prompt, generation, reader);
    }

    // OpenAI's tools array, as templates see it.
    private static System.Text.Json.Nodes.JsonArray ToolsJson(IEnumerable<Tools.ToolDefinition> tools)
    {
        var array = new System.Text.Json.Nodes.JsonArray();
        foreach (var t in tools)
        {
            var function = new System.Text.Json.Nodes.JsonObject { ["name"] = t.Name };
            if (t.Description is not null)
                function["description"] = t.Description;
            function["parameters"] = System.Text.Json.Nodes.JsonNode.Parse(t.Parameters);
            array.Add(new System.Text.Json.Nodes.JsonObject { ["type"] = "function", ["function"] = function });
        }
        return array;
    }

    // A message's text, its tool calls, and each tool result as a message of role "tool".
    private static IEnumerable<ChatMessage> ToTemplateMessages(AI.ChatMessage m)
    {
        var calls = m.Contents.OfType<AI.FunctionCallContent>()
            .Select(c => new ToolCall(c.CallId, c.Name, JsonSerializer.Serialize(c.Arguments, AI.AIJsonUtilities.DefaultOptions)))
            .ToList();
        var results = m.Contents.OfType<AI.FunctionResultContent>().ToList();
        string text = m.Text;
        if (text.Length > 0 || calls.Count > 0 || results.Count == 0)
            yield return new ChatMessage(m.Role.Value, text.Length == 0 && calls.Count > 0 ? null : text) { ToolCalls = [.. calls] };
        foreach (var r in results)
        {
            string content = r.Result switch
            {
                null => "",
                string s => s,
                var o => JsonSerializer.Serialize(o, AI.AIJsonUtilities.DefaultOptions),
            };
            yield return new ChatMessage("tool", content) { ToolCallId = r.CallId };
        }
    }

    private GenerationOptions Generation(AI.ChatOptions? o)
    {
        var g = _options.Generation with { ReusePrefix = true };
        if (o is null)
            return g;
        var s = g.Sampling ?? SamplingOptions.Default;
        if (o.Temperature is { } t) s = s with { Temperature = t };
        if (o.TopP is { } p) s = s with { TopP = p };
        if (o.TopK is { } k) s = s with { TopK = k };
        if (o.Seed is { } seed) s = s with { Seed = unchecked((ulong)seed) };
        if (o.FrequencyPenalty is { } f) s = s with { FrequencyPenalty = f };
        if (o.PresencePenalty is { } pp) s = s with { PresencePenalty = pp };
        s.Validate();
        g = g with { Sampling = s };
        if (o.MaxOutputTokens is { } max)
            g = g with { MaxTokens = max };
        if (o.StopSequences is { Count: > 0 } stops)
            g = g with { StopStrings = [.. g.StopStrings, .. stops] };
        if (o.AdditionalProperties is { } extra)
        {
            if (extra.TryGetValue(ContextOverflowProperty, out object? policy) && policy is not null)
            {
                g = g with
                {
                    ContextOverflow = policy is ContextOverflow given ? given
                        : ContextOverflowNames.TryParse(policy.ToString(), out var named) ? named
                        : throw new ArgumentException($"ChatOptions.AdditionalProperties[\"{ContextOverflowProperty}\"] must be stop, shift or truncate_history; got \"{policy}\".", nameof(o)),
                };
            }
            if (extra.TryGetValue(KeepTokensProperty, out object? keep) && keep is not null)
            {
                g = g with
                {
                    KeepTokens = keep is IConvertible c && !(keep is string) ? c.ToInt32(System.Globalization.CultureInfo.InvariantCulture)
                        : throw new ArgumentException($"ChatOptions.AdditionalProperties[\"{KeepTokensProperty}\"] must be an integer.", nameof(o)),
                };
            }
        }
        g.Validate();
        return g;
    }

    private static AI.ChatFinishReason FinishReason(StopReason reason, Tools.ParsedReply reply) => reason is StopReason.MaxTokens or StopReason.ContextFull
        ? AI.ChatFinishReason.Length
        : reply.ToolCalls.IsDefaultOrEmpty ? AI.ChatFinishReason.Stop : AI.ChatFinishReason.ToolCalls;

    private static AI.UsageDetails Usage(GenerationResult r) => new()
    {
        InputTokenCount = r.PromptTokens.Length, OutputTokenCount = r.GeneratedTokens.Length,
        TotalTokenCount = r.PromptTokens.Length + r.GeneratedTokens.Length, CachedInputTokenCount = r.ReusedPromptTokens,
    };

    /// <summary>
    /// The <see cref="AI.ChatOptions.AdditionalProperties"/> key of a call's <see cref="GenerationOptions.ContextOverflow"/>
    /// (a <see cref="ContextOverflow"/> or its name: <c>stop</c>, <c>shift</c>, <c>truncate_history</c>).
    /// </summary>
    public const string ContextOverflowProperty = "context_overflow";

    /// <summary>The <see cref="AI.ChatOptions.AdditionalProperties"/> key of a call's <see cref="GenerationOptions.KeepTokens"/> (llama.cpp's n_keep).</summary>
    public const string KeepTokensProperty = "n_keep";

    private static string NewId() => "chatcmpl-" + Guid.NewGuid().ToString("N");

    /// <summary>Frees the idle generators; calls still running free theirs when they end.</summary>
    public void Dispose()
    {
        _disposed = true;
        _generators.Dispose();
    }
}

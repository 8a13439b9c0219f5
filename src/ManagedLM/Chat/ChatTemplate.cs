using System.Text.Json.Nodes;
using ManagedLM.Chat.Jinja;
using ManagedLM.Generation;

namespace ManagedLM.Chat;

/// <summary>What a chat template is rendered with, beyond the messages.</summary>
public sealed record ChatTemplateOptions
{
    public static ChatTemplateOptions Default => new();

    /// <summary>End with the header of the assistant's turn, so the model writes the reply.</summary>
    public bool AddGenerationPrompt { get; init; } = true;

    /// <summary>The tools the model may call (OpenAI's <c>tools</c> array), or null.</summary>
    public JsonArray? Tools { get; init; }

    /// <summary>More variables some templates read (llama.cpp passes e.g. <c>tools_in_user_message</c>, <c>datetime</c>).</summary>
    public JsonObject? Variables { get; init; }

    /// <summary>The instant <c>strftime_now</c> formats (UTC); null: now.</summary>
    public DateTime? Now { get; init; }

    /// <summary>Bounds of one render.</summary>
    public RenderLimits Limits { get; init; } = RenderLimits.Default;
}

/// <summary>
/// A model's prompt format: its Jinja chat template (GGUF <c>tokenizer.chat_template</c>) with the model's BOS/EOS strings.
/// Rendered exactly as llama.cpp's minja renders it (byte for byte on the shared reference templates). Immutable: one
/// template serves any number of sessions and threads.
/// </summary>
public sealed class ChatTemplate
{
    private readonly JinjaTemplate _template;
    private readonly Lazy<bool> _objectArguments;

    private ChatTemplate(JinjaTemplate template, string bosToken, string eosToken, bool isFallback)
    {
        _template = template;
        _objectArguments = new(ProbeObjectArguments);
        BosToken = bosToken;
        EosToken = eosToken;
        IsFallback = isFallback;
    }

    /// <summary>The template text.</summary>
    public string Source => _template.Source;

    /// <summary>The <c>bos_token</c> the template sees.</summary>
    public string BosToken { get; }

    /// <summary>The <c>eos_token</c> the template sees.</summary>
    public string EosToken { get; }

    /// <summary>True for <see cref="ChatML"/> used because a model has no template of its own.</summary>
    public bool IsFallback { get; }

    /// <summary>The ChatML format (<c>&lt;|im_start|&gt;role\n...&lt;|im_end|&gt;</c>): the fallback for models without a template.</summary>
    public static ChatTemplate ChatML => s_chatML;

    [ThreadSafeStatic("an immutable template, built by the static initializer")]
    private static readonly ChatTemplate s_chatML = new(JinjaTemplate.Parse(
        "{%- for message in messages -%}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{%- endfor -%}" +
        "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"), "", "", isFallback: true);

    /// <summary>Parses a template.</summary>
    /// <exception cref="TemplateException">The template is malformed.</exception>
    public static ChatTemplate Parse(string source, string bosToken = "", string eosToken = "") =>
        new(JinjaTemplate.Parse(source), bosToken ?? "", eosToken ?? "", isFallback: false);

    /// <summary>The same template with other BOS/EOS strings.</summary>
    public ChatTemplate WithTokens(string bosToken, string eosToken) => new(_template, bosToken, eosToken, IsFallback);

    /// <summary>
    /// Whether a message may have <paramref name="role"/>: one of <see cref="ChatMessage.OpenAiRoles"/> (the template decides
    /// how to render it), or another that the template compares a value with (e.g. <c>'ipython'</c> in Llama 3.1's
    /// <c>message.role == 'ipython'</c>; see <see cref="JinjaTemplate.ComparedStrings"/>).
    /// </summary>
    public bool KnowsRole(string role)
    {
        ArgumentNullException.ThrowIfNull(role);
        return ChatMessage.OpenAiRoles.Contains(role) || _template.ComparedStrings.Contains(role);
    }

    /// <summary>Renders a conversation.</summary>
    /// <exception cref="TemplateException">The template raised an error for this conversation (e.g. roles it does not support) or failed.</exception>
    public string Render(IReadOnlyList<ChatMessage> messages, ChatTemplateOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        bool objects = messages.Any(m => !m.ToolCalls.IsDefaultOrEmpty) && _objectArguments.Value;
        return RenderValues(new JinjaList(messages.Select(m => (object?)m.ToTemplateValue(objects))), options ?? ChatTemplateOptions.Default);
    }

    /// <summary>
    /// Whether the template prints a call's arguments as an object (<c>tool_call.arguments | tojson</c>, as most tool
    /// templates do) rather than as the string OpenAI sends: found by rendering a probe conversation with string
    /// arguments and looking for their quotes escaped a second time (or an error that object arguments avoid), as
    /// llama.cpp does. Calls are then rendered with their arguments parsed.
    /// </summary>
    private bool ProbeObjectArguments()
    {
        var probe = new[]
        {
            ChatMessage.User("probe"),
            new ChatMessage("assistant", null) { ToolCalls = [new ToolCall("call12345", "probe_function", """{"probe_argument":"probe_value"}""")] },
            new ChatMessage("tool", "probe result") { ToolCallId = "call12345" },
        };
        string? Try(bool objects)
        {
            try
            {
                return RenderValues(new JinjaList(probe.Select(m => (object?)m.ToTemplateValue(objects))), ChatTemplateOptions.Default with { AddGenerationPrompt = false });
            }
            catch (TemplateException)
            {
                return null;
            }
        }
        return Try(objects: false) is { } text ? text.Contains("\\\"probe_argument\\\"", StringComparison.Ordinal) : Try(objects: true) is not null;
    }

    /// <summary>Renders a conversation given as JSON: <c>{"messages": [...], "tools": [...]?}</c> (OpenAI's shapes; key order is kept).</summary>
    public string Render(JsonNode conversation, ChatTemplateOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(conversation);
        options ??= ChatTemplateOptions.Default;
        if (conversation["messages"] is not JsonArray messages)
            throw new ArgumentException("The conversation needs a \"messages\" array.", nameof(conversation));
        if (options.Tools is null && conversation["tools"] is JsonArray tools)
            options = options with { Tools = tools };
        return RenderValues((JinjaList)Values.FromJson(messages)!, options);
    }

    /// <summary>
    /// The token ids of a rendered prompt: special tokens parsed, and the BOS the tokenizer adds itself not doubled by one the
    /// template printed (llama.cpp removes a leading <c>bos_token</c> from the rendering the same way). A prompt that cannot
    /// fit <paramref name="contextLength"/> tokens is rejected before it is tokenized (<see cref="Tokenization.Tokenizer.EncodePrompt"/>).
    /// </summary>
    /// <exception cref="ArgumentException">The prompt needs more than <paramref name="contextLength"/> tokens.</exception>
    public int[] Tokenize(Tokenization.Tokenizer tokenizer, string renderedPrompt, int contextLength = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(renderedPrompt);
        if (tokenizer.AddBosToken && BosToken.Length > 0 && renderedPrompt.StartsWith(BosToken, StringComparison.Ordinal))
            renderedPrompt = renderedPrompt[BosToken.Length..];
        return tokenizer.EncodePrompt(renderedPrompt, contextLength, addSpecialTokens: true, parseSpecialTokens: true);
    }

    /// <summary>
    /// <paramref name="options"/> for generating a reply to a prompt this template rendered: with the ChatML fallback, its
    /// end-of-turn marker <c>&lt;|im_end|&gt;</c> is added as a stop string, since a model without a template of its own
    /// need not know it as an end-of-generation token.
    /// </summary>
    public GenerationOptions ForReply(GenerationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return IsFallback && !options.StopStrings.Contains("<|im_end|>") ? options with { StopStrings = [.. options.StopStrings, "<|im_end|>"] } : options;
    }

    private string RenderValues(JinjaList messages, ChatTemplateOptions options)
    {
        var now = options.Now ?? DateTime.UtcNow;
        var variables = new List<KeyValuePair<string, object?>>
        {
            new("messages", messages),
            new("add_generation_prompt", options.AddGenerationPrompt),
            new("bos_token", BosToken),
            new("eos_token", EosToken),
            new("strftime_now", new JinjaFunction("strftime_now", (_, a) =>
                Strftime.Format(Values.ToStr(a.Bind("strftime_now", "format").Get("format")), now))),
        };
        if (options.Tools is { Count: > 0 } tools)
            variables.Add(new("tools", Values.FromJson(tools)));
        if (options.Variables is { } extra)
        {
            foreach (var (name, value) in extra)
            {
                // A null variable counts as undefined (minja): leave it out.
                if (value is not null)
                    variables.Add(new(name, Values.FromJson(value)));
            }
        }
        return _template.Render(variables, options.Limits);
    }
}

using System.Collections.Frozen;
using System.Collections.Immutable;
using System.Text.Json;
using System.Text.Json.Nodes;
using ManagedLM.Chat.Jinja;

namespace ManagedLM.Chat;

/// <summary>One call of a tool requested by the assistant.</summary>
/// <param name="Id">The call's id (the tool's answer refers to it).</param>
/// <param name="Name">The function called.</param>
/// <param name="Arguments">Its arguments as a JSON string, as OpenAI sends them.</param>
public sealed record ToolCall(string Id, string Name, string Arguments);

/// <summary>A message of a conversation, in OpenAI's shape.</summary>
public sealed record ChatMessage
{
    public ChatMessage(string role, string? content)
    {
        ArgumentException.ThrowIfNullOrEmpty(role);
        Role = role;
        Content = content;
    }

    /// <summary>system, user, assistant, tool, ...</summary>
    public string Role { get; }

    /// <summary>The text; null for an assistant message that only calls tools.</summary>
    public string? Content { get; init; }

    /// <summary>The tools the assistant calls.</summary>
    public ImmutableArray<ToolCall> ToolCalls { get; init; } = [];

    /// <summary>For a tool's answer: the call it answers.</summary>
    public string? ToolCallId { get; init; }

    /// <summary>An assistant's reasoning, kept apart from <see cref="Content"/> (templates see it as <c>reasoning_content</c>).</summary>
    public string? ReasoningContent { get; init; }

    /// <summary>The roles OpenAI's chat API defines: system, developer, user, assistant, tool and the legacy function.</summary>
    public static FrozenSet<string> OpenAiRoles { get; } = FrozenSet.Create(StringComparer.Ordinal, "system", "developer", "user", "assistant", "tool", "function");

    public static ChatMessage System(string content) => new("system", content);
    public static ChatMessage User(string content) => new("user", content);
    public static ChatMessage Assistant(string content) => new("assistant", content);

    /// <summary>The message as a template sees it: keys role, content, tool_call_id, reasoning_content, tool_calls (llama.cpp's order).</summary>
    /// <param name="objectArguments">Give each call's arguments as the object they encode (when they are a JSON object), not as text.</param>
    internal JinjaDict ToTemplateValue(bool objectArguments = false)
    {
        var d = new JinjaDict();
        d.Set("role", Role);
        d.Set("content", Content);
        if (ToolCallId is not null)
            d.Set("tool_call_id", ToolCallId);
        if (ReasoningContent is not null)
            d.Set("reasoning_content", ReasoningContent);
        if (!ToolCalls.IsDefaultOrEmpty)
        {
            var calls = new JinjaList();
            foreach (var call in ToolCalls)
            {
                var function = new JinjaDict();
                function.Set("name", call.Name);
                function.Set("arguments", objectArguments && ArgumentsObject(call.Arguments) is { } o ? Values.FromJson(o) : call.Arguments);
                var c = new JinjaDict();
                c.Set("type", "function");
                c.Set("function", function);
                c.Set("id", call.Id);
                calls.Add(c);
            }
            d.Set("tool_calls", calls);
        }
        return d;
    }

    private static JsonObject? ArgumentsObject(string arguments)
    {
        try
        {
            return JsonNode.Parse(arguments, documentOptions: new JsonDocumentOptions { MaxDepth = 64 }) as JsonObject;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Reads a message from its OpenAI JSON form ({"role", "content", "tool_calls", "tool_call_id", "reasoning_content"}).</summary>
    public static ChatMessage FromJson(JsonNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        string role = node["role"]?.GetValue<string>() ?? throw new ArgumentException("A message needs a role.", nameof(node));
        var calls = ImmutableArray.CreateBuilder<ToolCall>();
        if (node["tool_calls"] is JsonArray array)
        {
            foreach (var call in array)
            {
                var function = call?["function"];
                var arguments = function?["arguments"];
                calls.Add(new ToolCall(call?["id"]?.GetValue<string>() ?? "", function?["name"]?.GetValue<string>() ?? "",
                    arguments is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : arguments?.ToJsonString() ?? "{}"));
            }
        }
        return new ChatMessage(role, node["content"]?.GetValue<string>())
        {
            ToolCalls = calls.ToImmutable(),
            ToolCallId = node["tool_call_id"]?.GetValue<string>(),
            ReasoningContent = node["reasoning_content"]?.GetValue<string>(),
        };
    }
}

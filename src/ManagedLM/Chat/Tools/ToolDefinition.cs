using System.Collections.Immutable;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ManagedLM.Chat.Tools;

/// <summary>A function the model may call.</summary>
/// <param name="Name">The function's name.</param>
/// <param name="Description">What it does, for the prompt; may be null.</param>
/// <param name="Parameters">JSON Schema of its arguments object, as JSON text (<c>{"type":"object"}</c> when the tool declares none).</param>
public sealed record ToolDefinition(string Name, string? Description, string Parameters)
{
    /// <summary>Reads OpenAI's <c>tools</c> array (<c>[{"type": "function", "function": {"name", "description", "parameters"}}]</c>).</summary>
    /// <exception cref="ArgumentException">An entry is not a function tool or has no name.</exception>
    public static ImmutableArray<ToolDefinition> FromOpenAi(JsonArray tools)
    {
        ArgumentNullException.ThrowIfNull(tools);
        var result = ImmutableArray.CreateBuilder<ToolDefinition>(tools.Count);
        for (int i = 0; i < tools.Count; i++)
        {
            var tool = tools[i] as JsonObject ?? throw new ArgumentException($"tools[{i}] is not an object.", nameof(tools));
            if (tool["type"] is JsonValue type && type.GetValueKind() == JsonValueKind.String && type.GetValue<string>() != "function")
                throw new ArgumentException($"tools[{i}] has type \"{type.GetValue<string>()}\"; only \"function\" tools are supported.", nameof(tools));
            var function = tool["function"] as JsonObject ?? throw new ArgumentException($"tools[{i}] has no \"function\" object.", nameof(tools));
            string name = function["name"] is JsonValue n && n.GetValueKind() == JsonValueKind.String ? n.GetValue<string>() : "";
            if (name.Length == 0)
                throw new ArgumentException($"tools[{i}].function has no name.", nameof(tools));
            string? description = function["description"] is JsonValue d && d.GetValueKind() == JsonValueKind.String ? d.GetValue<string>() : null;
            result.Add(new ToolDefinition(name, description, function["parameters"]?.ToJsonString() ?? """{"type":"object"}"""));
        }
        return result.MoveToImmutable();
    }
}

/// <summary>How a reply may use the tools (OpenAI's <c>tool_choice</c>).</summary>
public enum ToolChoiceMode
{
    /// <summary>Text or calls, as the model decides; calls are constrained once they start.</summary>
    Auto,
    /// <summary>No calls: the reply is text.</summary>
    None,
    /// <summary>The reply is one or more calls.</summary>
    Required,
    /// <summary>The reply is a call of <see cref="ToolChoice.FunctionName"/>.</summary>
    Function,
}

/// <summary>OpenAI's <c>tool_choice</c>: <c>auto</c>, <c>none</c>, <c>required</c> or a named function.</summary>
public sealed record ToolChoice(ToolChoiceMode Mode, string? FunctionName = null)
{
    /// <summary>Text or calls, as the model decides.</summary>
    public static ToolChoice Auto { get; } = new(ToolChoiceMode.Auto);
    /// <summary>No calls.</summary>
    public static ToolChoice None { get; } = new(ToolChoiceMode.None);
    /// <summary>Only calls.</summary>
    public static ToolChoice Required { get; } = new(ToolChoiceMode.Required);
    /// <summary>
    /// Reads OpenAI's <c>tool_choice</c>: <c>"auto"</c>, <c>"none"</c>, <c>"required"</c> or
    /// <c>{"type": "function", "function": {"name": ...}}</c>; null (absent) is <see cref="Auto"/>.
    /// </summary>
    /// <exception cref="ArgumentException">Any other value; the message names it.</exception>
    public static ToolChoice FromOpenAi(JsonNode? node)
    {
        if (node is null) return Auto;
        if (node is JsonValue value && value.GetValueKind() == JsonValueKind.String)
        {
            return value.GetValue<string>() switch
            {
                "auto" => Auto,
                "none" => None,
                "required" => Required,
                var other => throw new ArgumentException($"tool_choice \"{other}\" is not one of \"auto\", \"none\", \"required\" or a function.", nameof(node)),
            };
        }
        if (node is JsonObject o && o["function"]?["name"] is JsonValue name && name.GetValueKind() == JsonValueKind.String && name.GetValue<string>().Length > 0
            && (o["type"] is null || (o["type"] is JsonValue type && type.GetValueKind() == JsonValueKind.String && type.GetValue<string>() == "function")))
            return Function(name.GetValue<string>());
        throw new ArgumentException($"tool_choice {node.ToJsonString()} is not one of \"auto\", \"none\", \"required\" or {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}.", nameof(node));
    }

    /// <summary>A call of <paramref name="name"/>.</summary>
    public static ToolChoice Function(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        return new(ToolChoiceMode.Function, name);
    }
}

/// <summary>
/// What generation needs to constrain a reply's tool calls. Feed <see cref="Gbnf"/> to <c>Grammar.FromGbnf</c> and
/// <see cref="Triggers"/> to the generation options: with triggers the grammar is lazy — text is free until one of
/// them appears, and from that trigger's first character on the text must match the grammar (whose root starts with
/// the trigger). Without triggers the grammar applies from the first token.
/// </summary>
/// <param name="Gbnf">GBNF with root rule <c>root</c>, or null when nothing is constrained (<see cref="ToolChoiceMode.None"/>).</param>
/// <param name="Triggers">Strings that start the grammar; empty: the whole reply is constrained.</param>
/// <param name="StopStrings">Strings that end generation for this format (Llama 3's <c>&lt;|eom_id|&gt;</c>); add them to the request's stop strings.</param>
public sealed record ToolCallPlan(string? Gbnf, ImmutableArray<string> Triggers, ImmutableArray<string> StopStrings)
{
    /// <summary>Whether the grammar applies only from a trigger on.</summary>
    public bool Lazy => !Triggers.IsDefaultOrEmpty;

    /// <summary><paramref name="options"/> with this plan's grammar (parsed once per distinct text), triggers and stop strings.</summary>
    public Generation.GenerationOptions ApplyTo(Generation.GenerationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return Gbnf is null ? options : options with
        {
            Grammar = Grammars.Grammar.FromGbnfCached(Gbnf),
            GrammarTriggers = Triggers,
            StopStrings = [.. options.StopStrings, .. StopStrings.Where(s => !options.StopStrings.Contains(s))],
        };
    }
}

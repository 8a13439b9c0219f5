using System.Collections.Immutable;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using ManagedLM.Chat;
using ManagedLM.Chat.Tools;
using ManagedLM.Generation;
using ManagedLM.Sampling;

namespace ManagedLM.Server;

/// <summary>An error the API reports in OpenAI's shape: <c>{"error": {"message", "type", "param", "code"}}</c>.</summary>
public sealed class ApiException(int status, string message, string? param = null, string type = "invalid_request_error", string? code = null)
    : Exception(message)
{
    public int Status { get; } = status;
    public string? Param { get; } = param;
    public string Type { get; } = type;
    public string? Code { get; } = code;
}

/// <summary>The fields of a completion request the server understands, read and checked (types and ranges) from its JSON.</summary>
internal sealed record ApiRequest
{
    public bool Stream { get; init; }
    public bool IncludeUsage { get; init; }
    public int? MaxTokens { get; init; }
    public SamplingOptions Sampling { get; init; } = SamplingOptions.Default;
    public ImmutableArray<string> Stop { get; init; } = [];
    public bool Logprobs { get; init; }
    public int TopLogprobs { get; init; }
    public bool IgnoreEos { get; init; }
    /// <summary>context_overflow (stop, shift, truncate_history), or null for the server's.</summary>
    public ContextOverflow? ContextOverflow { get; init; }
    /// <summary>llama.cpp's n_keep (-1: the whole prompt) and n_discard (0: half).</summary>
    public int KeepTokens { get; init; }
    public int DiscardTokens { get; init; }
    /// <summary>The grammar the reply must follow (response_format, json_schema or grammar), or null.</summary>
    public RequestConstraint? Grammar { get; init; }

    // Chat completions.
    public ImmutableArray<ChatMessage> Messages { get; init; } = [];
    public JsonArray? Tools { get; init; }
    public ImmutableArray<ToolDefinition> ToolDefinitions { get; init; } = [];
    public ToolChoice ToolChoice { get; init; } = ToolChoice.Auto;
    public bool ParallelToolCalls { get; init; } = true;

    /// <summary>Whether the reply may call tools: tools are offered and tool_choice is not "none".</summary>
    public bool CallsTools => !ToolDefinitions.IsDefaultOrEmpty && ToolChoice.Mode != ToolChoiceMode.None;

    // Completions: text, or token ids used as given.
    public string? Prompt { get; init; }
    public ImmutableArray<int> PromptTokens { get; init; } = [];

    public static ApiRequest Parse(JsonElement root, bool chat, int vocabSize)
    {
        if (root.ValueKind != JsonValueKind.Object)
            throw new ApiException(400, "The request body must be a JSON object.");
        // Read only to check their types: the server has one model, and no use for the caller's user id.
        String(root, "model");
        String(root, "user");
        var r = new ApiRequest
        {
            Stream = Bool(root, "stream") ?? false,
            IncludeUsage = Object(root, "stream_options") is { } so && (Bool(so, "include_usage", "stream_options.include_usage") ?? false),
            MaxTokens = Int(root, "max_completion_tokens") ?? Int(root, "max_tokens"),
            Stop = ReadStop(root),
            Logprobs = chat ? Bool(root, "logprobs") ?? false : Int(root, "logprobs") is > 0,
            TopLogprobs = chat ? Int(root, "top_logprobs") ?? 0 : Int(root, "logprobs") ?? 0,
            IgnoreEos = Bool(root, "ignore_eos") ?? false,
            Sampling = ReadSampling(root, vocabSize),
            Grammar = RequestGrammar.Read(root),
            ContextOverflow = ReadOverflow(root),
            KeepTokens = Int(root, "n_keep") ?? 0,
            DiscardTokens = Int(root, "n_discard") ?? 0,
        };
        if (r.KeepTokens < -1)
            throw new ApiException(400, $"n_keep must be ≥ -1 (-1 keeps the whole prompt); got {r.KeepTokens}.", "n_keep");
        if (r.DiscardTokens < 0)
            throw new ApiException(400, $"n_discard must be ≥ 0 (0 discards half); got {r.DiscardTokens}.", "n_discard");
        RejectUnsupported(root);
        if (Int(root, "n") is { } n && n != 1)
            throw new ApiException(400, "Only n = 1 is supported.", "n");
        if (r.MaxTokens is < 0)
            throw new ApiException(400, "max_tokens must be ≥ 0.", "max_tokens");
        if (r.TopLogprobs is < 0 or > 20)
            throw new ApiException(400, "top_logprobs must be between 0 and 20.", chat ? "top_logprobs" : "logprobs");
        if (chat && r.TopLogprobs > 0 && !r.Logprobs)
            throw new ApiException(400, "top_logprobs needs logprobs = true.", "top_logprobs");
        if (!chat && r.TopLogprobs > 0)
            r = r with { Logprobs = true };
        return chat ? ReadChat(root, r) : ReadPrompt(root, r, vocabSize);
    }

    private static ApiRequest ReadChat(JsonElement root, ApiRequest r)
    {
        var tools = ReadTools(root);
        ToolChoice choice;
        try
        {
            choice = ToolChoice.FromOpenAi(root.TryGetProperty("tool_choice", out var c) && c.ValueKind != JsonValueKind.Null ? JsonNode.Parse(c.GetRawText()) : null);
        }
        catch (ArgumentException e)
        {
            throw new ApiException(400, e.Message.Replace(" (Parameter 'node')", "", StringComparison.Ordinal), "tool_choice");
        }
        var definitions = tools is null ? [] : ToolDefinition.FromOpenAi(tools);
        if (choice.Mode is ToolChoiceMode.Required or ToolChoiceMode.Function && definitions.IsEmpty)
            throw new ApiException(400, "tool_choice asks for a tool call, but the request has no tools.", "tool_choice");
        return r with
        {
            Messages = ReadMessages(root), Tools = tools, ToolDefinitions = definitions, ToolChoice = choice,
            ParallelToolCalls = Bool(root, "parallel_tool_calls") ?? true,
        };
    }

    // context_overflow: "stop", "shift" or "truncate_history".
    private static ContextOverflow? ReadOverflow(JsonElement root)
    {
        if (String(root, "context_overflow") is not { } name)
            return null;
        return ContextOverflowNames.TryParse(name, out var policy) ? policy
            : throw new ApiException(400, $"context_overflow must be \"stop\", \"shift\" or \"truncate_history\"; got \"{name}\".", "context_overflow");
    }

    // Fields of OpenAI's API that would change the reply and that this server does not implement: a 400, never ignored.
    private static readonly ImmutableArray<string> Unsupported = ["functions", "function_call", "audio", "prediction", "web_search_options", "suffix", "echo"];

    private static void RejectUnsupported(JsonElement root)
    {
        foreach (string name in Unsupported)
        {
            if (root.TryGetProperty(name, out var v) && v.ValueKind is not (JsonValueKind.Null or JsonValueKind.False)
                && !(v.ValueKind == JsonValueKind.String && v.GetString() == ""))
                throw new ApiException(400, $"'{name}' is not supported by this server.", name, code: "unsupported_parameter");
        }
        if (Int(root, "best_of") is { } bestOf && bestOf != 1)
            throw new ApiException(400, "Only best_of = 1 is supported.", "best_of", code: "unsupported_parameter");
        if (root.TryGetProperty("modalities", out var m) && m.ValueKind == JsonValueKind.Array && m.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String || e.GetString() != "text"))
            throw new ApiException(400, "Only the \"text\" modality is supported.", "modalities", code: "unsupported_parameter");
    }

    private static SamplingOptions ReadSampling(JsonElement root, int vocabSize)
    {
        var s = SamplingOptions.Default;
        if (Number(root, "temperature") is { } t) s = s with { Temperature = (float)t };
        if (Number(root, "top_p") is { } p) s = s with { TopP = (float)p };
        if (Int(root, "top_k") is { } k) s = s with { TopK = k };
        if (Number(root, "min_p") is { } mp) s = s with { MinP = (float)mp };
        if (Number(root, "presence_penalty") is { } pp) s = s with { PresencePenalty = (float)pp };
        if (Number(root, "frequency_penalty") is { } fp) s = s with { FrequencyPenalty = (float)fp };
        if (Number(root, "repeat_penalty") is { } rp) s = s with { RepeatPenalty = (float)rp };
        if (root.TryGetProperty("seed", out var seed) && seed.ValueKind != JsonValueKind.Null)
        {
            if (seed.ValueKind != JsonValueKind.Number || !seed.TryGetInt64(out long sv))
                throw new ApiException(400, "'seed' must be an integer.", "seed");
            s = s with { Seed = unchecked((ulong)sv) };
        }
        if (root.TryGetProperty("logit_bias", out var bias) && bias.ValueKind != JsonValueKind.Null)
        {
            if (bias.ValueKind != JsonValueKind.Object)
                throw new ApiException(400, "'logit_bias' must be an object of token id → bias.", "logit_bias");
            var map = new Dictionary<int, float>();
            foreach (var entry in bias.EnumerateObject())
            {
                if (!int.TryParse(entry.Name, NumberStyles.None, CultureInfo.InvariantCulture, out int id) || id >= vocabSize)
                    throw new ApiException(400, $"logit_bias key \"{entry.Name}\" is not a token id in [0, {vocabSize}).", "logit_bias");
                if (entry.Value.ValueKind != JsonValueKind.Number)
                    throw new ApiException(400, $"logit_bias[\"{entry.Name}\"] must be a number.", "logit_bias");
                double v = entry.Value.GetDouble();
                if (v is < -100 or > 100)
                    throw new ApiException(400, $"logit_bias[\"{entry.Name}\"] must be between -100 and 100.", "logit_bias");
                map[id] = (float)v;
            }
            s = s with { LogitBias = map };
        }
        // OpenAI's ranges, checked here so the message names the field.
        if (s.Temperature is < 0 or > 2)
            throw new ApiException(400, "temperature must be between 0 and 2.", "temperature");
        if (s.TopP is <= 0 or > 1)
            throw new ApiException(400, "top_p must be in (0, 1].", "top_p");
        if (s.PresencePenalty is < -2 or > 2)
            throw new ApiException(400, "presence_penalty must be between -2 and 2.", "presence_penalty");
        if (s.FrequencyPenalty is < -2 or > 2)
            throw new ApiException(400, "frequency_penalty must be between -2 and 2.", "frequency_penalty");
        if (s.TopK < 0)
            throw new ApiException(400, "top_k must be ≥ 0 (0 disables it).", "top_k");
        if (s.MinP is < 0 or > 1)
            throw new ApiException(400, "min_p must be between 0 and 1.", "min_p");
        if (!(s.RepeatPenalty > 0 && float.IsFinite(s.RepeatPenalty)))
            throw new ApiException(400, "repeat_penalty must be a finite number > 0 (1 disables it).", "repeat_penalty");
        try
        {
            s.Validate();
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new ApiException(400, e.Message, e.ParamName);
        }
        return s;
    }

    private static ImmutableArray<string> ReadStop(JsonElement root)
    {
        if (!root.TryGetProperty("stop", out var stop) || stop.ValueKind == JsonValueKind.Null)
            return [];
        if (stop.ValueKind == JsonValueKind.String)
            return stop.GetString()!.Length == 0 ? [] : [stop.GetString()!];
        if (stop.ValueKind != JsonValueKind.Array)
            throw new ApiException(400, "'stop' must be a string or an array of strings.", "stop");
        var list = ImmutableArray.CreateBuilder<string>();
        foreach (var item in stop.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String)
                throw new ApiException(400, "'stop' must be a string or an array of strings.", "stop");
            if (item.GetString()!.Length > 0)
                list.Add(item.GetString()!);
        }
        if (list.Count > 4)
            throw new ApiException(400, "'stop' holds at most 4 strings.", "stop");
        return list.ToImmutable();
    }

    private static ImmutableArray<ChatMessage> ReadMessages(JsonElement root)
    {
        if (!root.TryGetProperty("messages", out var messages))
            throw new ApiException(400, "'messages' is required.", "messages");
        if (messages.ValueKind != JsonValueKind.Array || messages.GetArrayLength() == 0)
            throw new ApiException(400, "'messages' must be a non-empty array.", "messages");
        var list = ImmutableArray.CreateBuilder<ChatMessage>();
        int i = 0;
        foreach (var m in messages.EnumerateArray())
        {
            string at = $"messages[{i++}]";
            if (m.ValueKind != JsonValueKind.Object)
                throw new ApiException(400, $"{at} must be an object.", at);
            string role = String(m, "role", $"{at}.role") ?? throw new ApiException(400, $"{at}.role is required.", $"{at}.role");
            if (role.Length == 0)
                throw new ApiException(400, $"{at}.role is empty.", $"{at}.role");
            string? content = Content(m, $"{at}.content");
            var calls = ImmutableArray.CreateBuilder<ToolCall>();
            if (m.TryGetProperty("tool_calls", out var tc) && tc.ValueKind != JsonValueKind.Null)
            {
                if (tc.ValueKind != JsonValueKind.Array)
                    throw new ApiException(400, $"{at}.tool_calls must be an array.", $"{at}.tool_calls");
                foreach (var call in tc.EnumerateArray())
                {
                    if (call.ValueKind != JsonValueKind.Object || !call.TryGetProperty("function", out var f) || f.ValueKind != JsonValueKind.Object)
                        throw new ApiException(400, $"{at}.tool_calls entries need a function object.", $"{at}.tool_calls");
                    string args = f.TryGetProperty("arguments", out var a) ? a.ValueKind == JsonValueKind.String ? a.GetString()! : a.GetRawText() : "{}";
                    calls.Add(new ToolCall(String(call, "id", $"{at}.tool_calls.id") ?? "", String(f, "name", $"{at}.tool_calls.function.name") ?? "", args));
                }
            }
            list.Add(new ChatMessage(role, content) { ToolCalls = calls.ToImmutable(), ToolCallId = String(m, "tool_call_id", $"{at}.tool_call_id") });
        }
        return list.ToImmutable();
    }

    // A string, null, or OpenAI's array of content parts (their texts joined).
    private static string? Content(JsonElement m, string param)
    {
        if (!m.TryGetProperty("content", out var c) || c.ValueKind == JsonValueKind.Null)
            return null;
        if (c.ValueKind == JsonValueKind.String)
            return c.GetString();
        if (c.ValueKind != JsonValueKind.Array)
            throw new ApiException(400, $"{param} must be a string, null or an array of content parts.", param);
        var text = new System.Text.StringBuilder();
        foreach (var part in c.EnumerateArray())
        {
            if (part.ValueKind != JsonValueKind.Object || String(part, "type", param) != "text")
                throw new ApiException(400, $"{param}: only text content parts are supported.", param);
            text.Append(String(part, "text", param));
        }
        return text.ToString();
    }

    // OpenAI's shape: [{"type": "function", "function": {"name": "...", "description"?, "parameters"?}}].
    private static JsonArray? ReadTools(JsonElement root)
    {
        if (!root.TryGetProperty("tools", out var tools) || tools.ValueKind == JsonValueKind.Null)
            return null;
        if (tools.ValueKind != JsonValueKind.Array)
            throw new ApiException(400, "'tools' must be an array.", "tools");
        int i = 0;
        foreach (var tool in tools.EnumerateArray())
        {
            string at = $"tools[{i++}]";
            if (tool.ValueKind != JsonValueKind.Object || String(tool, "type", $"{at}.type") != "function")
                throw new ApiException(400, $"{at} must be an object of type \"function\".", at);
            var function = Object(tool, "function", $"{at}.function") ?? throw new ApiException(400, $"{at}.function is required.", $"{at}.function");
            if (string.IsNullOrEmpty(String(function, "name", $"{at}.function.name")))
                throw new ApiException(400, $"{at}.function.name is required.", $"{at}.function.name");
        }
        return JsonNode.Parse(tools.GetRawText()) as JsonArray;
    }

    private static ApiRequest ReadPrompt(JsonElement root, ApiRequest r, int vocabSize)
    {
        if (!root.TryGetProperty("prompt", out var p))
            throw new ApiException(400, "'prompt' is required.", "prompt");
        switch (p.ValueKind)
        {
            case JsonValueKind.String:
                return r with { Prompt = p.GetString() };
            case JsonValueKind.Array when p.GetArrayLength() == 1 && p[0].ValueKind == JsonValueKind.String:
                return r with { Prompt = p[0].GetString() };
            case JsonValueKind.Array when p.GetArrayLength() > 0 && p.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Number):
                var ids = ImmutableArray.CreateBuilder<int>();
                foreach (var e in p.EnumerateArray())
                {
                    if (!e.TryGetInt32(out int id) || id < 0 || id >= vocabSize)
                        throw new ApiException(400, $"Prompt token {e.GetRawText()} is outside the vocabulary [0, {vocabSize}).", "prompt");
                    ids.Add(id);
                }
                return r with { PromptTokens = ids.ToImmutable() };
            default:
                throw new ApiException(400, "'prompt' must be a string, an array of one string, or an array of token ids.", "prompt");
        }
    }

    /// <summary>
    /// Checks what System.Text.Json leaves to its reader: every string and property name is Unicode text (it parses invalid
    /// UTF-8 and \u escapes of unpaired surrogates, and throws only when such a string is read, or a key beside it looked
    /// up), and no object has a key twice (parsers differ on which one counts). A 400 naming the field by its JSON path.
    /// </summary>
    public static void CheckBody(JsonElement root) => Check(root, "");

    private static void Check(JsonElement e, string path)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.String when !IsText(JsonMarshal.GetRawUtf8Value(e)):
                throw new ApiException(400, $"{Field(path)} is not valid text: it holds invalid UTF-8 or a \\u escape of an unpaired surrogate.", Param(path), code: "invalid_text");
            case JsonValueKind.Array:
                int i = 0;
                foreach (var item in e.EnumerateArray())
                {
                    if (item.ValueKind is JsonValueKind.String or JsonValueKind.Array or JsonValueKind.Object)
                        Check(item, $"{path}[{i}]");
                    i++;
                }
                break;
            case JsonValueKind.Object:
                var names = new HashSet<string>(StringComparer.Ordinal);
                foreach (var p in e.EnumerateObject())
                {
                    if (!IsText(JsonMarshal.GetRawUtf8PropertyName(p)))
                        throw new ApiException(400, $"A key of {Field(path)} is not valid text: it holds invalid UTF-8 or a \\u escape of an unpaired surrogate.", Param(path), code: "invalid_text");
                    if (!names.Add(p.Name))
                        throw new ApiException(400, $"{Field(path)} has the key \"{p.Name}\" twice.", Param(path), code: "duplicate_key");
                    if (p.Value.ValueKind is JsonValueKind.String or JsonValueKind.Array or JsonValueKind.Object)
                        Check(p.Value, path.Length == 0 ? p.Name : $"{path}.{p.Name}");
                }
                break;
        }
    }

    private static string? Param(string path) => path.Length == 0 ? null : path;

    private static string Field(string path) => path.Length == 0 ? "The request body" : $"'{path}'";

    // Raw JSON string bytes (escapes as written): valid UTF-8, and every \u escape of a surrogate one of a high-low pair.
    private static bool IsText(ReadOnlySpan<byte> raw)
    {
        if (!System.Text.Unicode.Utf8.IsValid(raw))
            return false;
        int i = raw.IndexOf((byte)'\\');
        if (i < 0)
            return true;
        bool highPending = false;
        for (; i < raw.Length; i++)
        {
            bool unicodeEscape = raw[i] == '\\' && raw[i + 1] == 'u';
            int unit = unicodeEscape ? int.Parse(raw.Slice(i + 2, 4), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture) : -1;
            if (highPending != (unit is >= 0xDC00 and <= 0xDFFF))
                return false;
            highPending = unit is >= 0xD800 and <= 0xDBFF;
            // The parser has checked the escapes: one char follows a backslash, four hex digits a \u.
            if (raw[i] == '\\')
                i += unicodeEscape ? 5 : 1;
        }
        return !highPending;
    }

    // Optional typed fields: absent or null → null; the wrong type → 400 naming the field.
    public static string? String(JsonElement o, string name, string? param = null)
    {
        if (!o.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
            return null;
        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw new ApiException(400, $"'{param ?? name}' must be a string.", param ?? name);
    }

    public static JsonElement? Object(JsonElement o, string name, string? param = null)
    {
        if (!o.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
            return null;
        return v.ValueKind == JsonValueKind.Object ? v : throw new ApiException(400, $"'{param ?? name}' must be an object.", param ?? name);
    }

    public static bool? Bool(JsonElement o, string name, string? param = null)
    {
        if (!o.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
            return null;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new ApiException(400, $"'{param ?? name}' must be a boolean.", param ?? name),
        };
    }

    public static int? Int(JsonElement o, string name)
    {
        if (!o.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
            return null;
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i : throw new ApiException(400, $"'{name}' must be an integer.", name);
    }

    public static double? Number(JsonElement o, string name)
    {
        if (!o.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
            return null;
        return v.ValueKind == JsonValueKind.Number && double.IsFinite(v.GetDouble()) ? v.GetDouble() : throw new ApiException(400, $"'{name}' must be a finite number.", name);
    }

    /// <summary>The reply's token budget before the prompt is known: max_tokens, or the server's limit.</summary>
    public int Budget(int maxTokensLimit)
    {
        if (MaxTokens > maxTokensLimit)
            throw new ApiException(400, $"max_tokens {MaxTokens} exceeds the server's limit of {maxTokensLimit}.", "max_tokens");
        return MaxTokens ?? maxTokensLimit;
    }

    /// <summary>
    /// The generation options of this request, for a prompt of <paramref name="promptLength"/> tokens: a request that stops
    /// at a full context gets at most what is left of it, one that shifts its whole budget.
    /// </summary>
    public GenerationOptions ToGeneration(int promptLength, int context, int maxTokensLimit, ContextOverflow overflow)
    {
        int budget = Budget(maxTokensLimit);
        return new GenerationOptions
        {
            MaxTokens = overflow == Generation.ContextOverflow.Stop ? Math.Min(budget, Math.Max(0, context - promptLength)) : budget,
            ContextOverflow = overflow,
            KeepTokens = KeepTokens,
            DiscardTokens = DiscardTokens,
            StopStrings = Stop,
            Sampling = Sampling,
            Logprobs = Logprobs,
            TopLogprobs = TopLogprobs,
            IgnoreEndOfGeneration = IgnoreEos,
            AddSpecialTokens = true,
            Grammar = Grammar?.Grammar,
        };
    }
}

using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using ManagedLM.Chat.Tools;
using ManagedLM.Generation;
using ManagedLM.Tokenization;

namespace ManagedLM.Server;

/// <summary>What one completion response (or stream chunk) says about itself.</summary>
/// <param name="Id">chatcmpl-… or cmpl-…, the same in every chunk of a stream.</param>
/// <param name="Chat">Chat completion (message/delta) or text completion (text).</param>
/// <param name="Created">Unix seconds.</param>
/// <param name="Model">The model id.</param>
internal sealed record CompletionHeader(string Id, bool Chat, long Created, string Model)
{
    public string Object(bool chunk) => Chat ? chunk ? "chat.completion.chunk" : "chat.completion" : "text_completion";
}

/// <summary>Writes OpenAI's response shapes with a <see cref="Utf8JsonWriter"/>.</summary>
internal static class ResponseJson
{
    /// <summary>Text as it is (no \u escapes for quotes, HTML characters or non-ASCII): the responses are JSON, never embedded in HTML.</summary>
    public static JsonWriterOptions WriterOptions => new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>OpenAI's finish_reason for a stop reason: "tool_calls" when a reply that ended by itself calls tools.</summary>
    public static string FinishReason(StopReason reason, ParsedReply? reply = null) => reason switch
    {
        StopReason.MaxTokens or StopReason.ContextFull => "length",
        _ when reply is { ToolCalls.IsDefaultOrEmpty: false } => "tool_calls",
        _ => "stop",
    };

    public static void Error(Utf8JsonWriter w, string message, string type, string? param, string? code)
    {
        w.WriteStartObject();
        w.WriteStartObject("error");
        w.WriteString("message", message);
        w.WriteString("type", type);
        WriteOptional(w, "param", param);
        WriteOptional(w, "code", code);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>A whole (non-streamed) completion.</summary>
    public static void Completion(Utf8JsonWriter w, CompletionHeader h, GenerationResult result, ParsedReply? reply, Tokenizer tokenizer, bool logprobs)
    {
        Start(w, h, chunk: false);
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", 0);
        if (h.Chat)
        {
            w.WriteStartObject("message");
            w.WriteString("role", "assistant");
            if (reply is null)
                w.WriteString("content", result.Text);
            else
                Message(w, reply);
            w.WriteEndObject();
        }
        else
            w.WriteString("text", result.Text);
        if (logprobs && result.Tokens is { } tokens)
            Logprobs(w, h.Chat, tokens, tokenizer);
        else
            w.WriteNull("logprobs");
        w.WriteString("finish_reason", FinishReason(result.StopReason, reply));
        w.WriteEndObject();
        w.WriteEndArray();
        Usage(w, result);
        w.WriteEndObject();
    }

    /// <summary>
    /// A stream chunk: the assistant's role (first chunk of a chat), a token's text (and log-probability), or the finish
    /// reason (last chunk).
    /// </summary>
    public static void Chunk(Utf8JsonWriter w, CompletionHeader h, bool role, string? text, TokenOutput? token, Tokenizer tokenizer, string? finishReason) =>
        Chunk(w, h, role, text, null, token, tokenizer, finishReason);

    // A stream chunk whose chat delta is the event's, or else the role and text given.
    private static void Chunk(Utf8JsonWriter w, CompletionHeader h, bool role, string? text, ReplyEvent? e, TokenOutput? token, Tokenizer tokenizer,
        string? finishReason)
    {
        Start(w, h, chunk: true);
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", 0);
        if (h.Chat)
        {
            w.WriteStartObject("delta");
            if (role)
                w.WriteString("role", "assistant");
            if (e is { } replyEvent)
                Delta(w, replyEvent);
            else if (text is not null)
                w.WriteString("content", text);
            w.WriteEndObject();
        }
        else
            w.WriteString("text", text ?? "");
        if (token is { Logprob: not null } t)
            Logprobs(w, h.Chat, [t], tokenizer);
        else
            w.WriteNull("logprobs");
        if (finishReason is null)
            w.WriteNull("finish_reason");
        else
            w.WriteString("finish_reason", finishReason);
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteEndObject();
    }

    // A parsed reply's fields of an assistant message: content (null when it only calls tools), reasoning_content, tool_calls.
    private static void Message(Utf8JsonWriter w, ParsedReply reply)
    {
        bool calls = !reply.ToolCalls.IsDefaultOrEmpty;
        if (calls && reply.Content.Length == 0)
            w.WriteNull("content");
        else
            w.WriteString("content", reply.Content);
        if (reply.Reasoning is { } reasoning)
            w.WriteString("reasoning_content", reasoning);
        if (!calls)
            return;
        w.WriteStartArray("tool_calls");
        for (int i = 0; i < reply.ToolCalls.Length; i++)
        {
            var call = reply.ToolCalls[i];
            w.WriteStartObject();
            w.WriteString("id", call.Id);
            w.WriteString("type", "function");
            w.WriteStartObject("function");
            w.WriteString("name", call.Name);
            w.WriteString("arguments", call.Arguments);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    /// <summary>
    /// A chat stream chunk for one event of a reply being read: a content or reasoning_content delta, or a tool_calls
    /// delta (a call's start with its index, id and name, or a chunk of its arguments).
    /// </summary>
    public static void EventChunk(Utf8JsonWriter w, CompletionHeader h, ReplyEvent e, TokenOutput? token, Tokenizer tokenizer) =>
        Chunk(w, h, role: false, null, e, token, tokenizer, null);

    // The delta fields of one reply event.
    private static void Delta(Utf8JsonWriter w, ReplyEvent e)
    {
        switch (e.Kind)
        {
            case ReplyEventKind.Content:
                w.WriteString("content", e.Text);
                return;
            case ReplyEventKind.Reasoning:
                w.WriteString("reasoning_content", e.Text);
                return;
        }
        w.WriteStartArray("tool_calls");
        w.WriteStartObject();
        w.WriteNumber("index", e.Index);
        bool start = e.Kind == ReplyEventKind.ToolCallStart;
        if (start)
        {
            w.WriteString("id", e.Id);
            w.WriteString("type", "function");
        }
        w.WriteStartObject("function");
        if (start)
            w.WriteString("name", e.Name);
        w.WriteString("arguments", start ? "" : e.Text);
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndArray();
    }

    /// <summary>The last chunk of a stream asked for with stream_options.include_usage: no choices, the usage.</summary>
    public static void UsageChunk(Utf8JsonWriter w, CompletionHeader h, GenerationResult result)
    {
        Start(w, h, chunk: true);
        w.WriteStartArray("choices");
        w.WriteEndArray();
        Usage(w, result);
        w.WriteEndObject();
    }

    private static void Start(Utf8JsonWriter w, CompletionHeader h, bool chunk)
    {
        w.WriteStartObject();
        w.WriteString("id", h.Id);
        w.WriteString("object", h.Object(chunk));
        w.WriteNumber("created", h.Created);
        w.WriteString("model", h.Model);
        w.WriteString("system_fingerprint", "managedlm");
    }

    private static void Usage(Utf8JsonWriter w, GenerationResult result)
    {
        w.WriteStartObject("usage");
        w.WriteNumber("prompt_tokens", result.PromptTokens.Length);
        w.WriteNumber("completion_tokens", result.GeneratedTokens.Length);
        w.WriteNumber("total_tokens", result.PromptTokens.Length + result.GeneratedTokens.Length);
        w.WriteStartObject("prompt_tokens_details");
        w.WriteNumber("cached_tokens", result.ReusedPromptTokens);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    // Chat: {"content": [{token, logprob, bytes, top_logprobs: [...]}]}.
    // Completions: {"tokens": [...], "token_logprobs": [...], "top_logprobs": [{token: logprob}], "text_offset": [...]}.
    private static void Logprobs(Utf8JsonWriter w, bool chat, IReadOnlyList<TokenOutput> tokens, Tokenizer tokenizer)
    {
        w.WriteStartObject("logprobs");
        if (chat)
        {
            w.WriteStartArray("content");
            foreach (var t in tokens)
            {
                if (t.Logprob is not { } lp)
                    continue;
                w.WriteStartObject();
                TokenEntry(w, tokenizer, t.Id, lp);
                w.WriteStartArray("top_logprobs");
                foreach (var top in t.TopLogprobs ?? [])
                {
                    w.WriteStartObject();
                    TokenEntry(w, tokenizer, top.Id, top.Logprob);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        else
        {
            var scored = tokens.Where(t => t.Logprob is not null).ToList();
            var pieces = scored.Select(t => Piece(tokenizer, t.Id)).ToList();
            w.WriteStartArray("tokens");
            foreach (string piece in pieces)
                w.WriteStringValue(piece);
            w.WriteEndArray();
            w.WriteStartArray("token_logprobs");
            foreach (var t in scored)
                w.WriteNumberValue(Finite(t.Logprob!.Value));
            w.WriteEndArray();
            w.WriteStartArray("top_logprobs");
            foreach (var t in scored)
            {
                w.WriteStartObject();
                foreach (var top in t.TopLogprobs ?? [])
                    w.WriteNumber(Piece(tokenizer, top.Id), Finite(top.Logprob));
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("text_offset");
            int offset = 0;
            foreach (string piece in pieces)
            {
                w.WriteNumberValue(offset);
                offset += piece.Length;
            }
            w.WriteEndArray();
        }
        w.WriteEndObject();
    }

    private static void TokenEntry(Utf8JsonWriter w, Tokenizer tokenizer, int id, float logprob)
    {
        w.WriteString("token", Piece(tokenizer, id));
        w.WriteNumber("logprob", Finite(logprob));
        w.WriteStartArray("bytes");
        foreach (byte b in tokenizer.TokenBytes(id, includeSpecial: true))
            w.WriteNumberValue(b);
        w.WriteEndArray();
    }

    // A token's text; bytes that are not UTF-8 on their own (part of a character) become U+FFFD, as OpenAI shows them.
    private static string Piece(Tokenizer tokenizer, int id) => Encoding.UTF8.GetString(tokenizer.TokenBytes(id, includeSpecial: true));

    // JSON has no -Infinity: a token with probability 0 is reported with OpenAI's floor.
    private static float Finite(float logprob) => float.IsFinite(logprob) ? logprob : -9999f;

    private static void WriteOptional(Utf8JsonWriter w, string name, string? value)
    {
        if (value is null)
            w.WriteNull(name);
        else
            w.WriteString(name, value);
    }
}

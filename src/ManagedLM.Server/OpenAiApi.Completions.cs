using System.Buffers;
using System.IO.Pipelines;
using System.Diagnostics;
using System.Text.Json;
using ManagedLM.Batching;
using ManagedLM.Chat;
using ManagedLM.Chat.Jinja;
using ManagedLM.Chat.Tools;
using ManagedLM.Grammars;
using ManagedLM.Generation;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace ManagedLM.Server;

internal sealed partial class OpenAiApi
{
    // POST /v1/chat/completions and /v1/completions: parse and check, submit to the engine (429 when its queue is full),
    // then answer whole or as a stream. The client's RequestAborted is the request's token: a disconnect ends it at the
    // engine's next step.
    private async Task Complete(HttpContext ctx, bool chat)
    {
        if (_engine is null)
        {
            throw new ApiException(400, $"This server serves embeddings only ({(_model.Config.Family.Encoder ? "the model is an encoder" : "--embedding, or the EmbeddingsOnly option")}): " +
                "use /v1/embeddings or /v1/rerank.", code: "unsupported_endpoint");
        }
        long received = Stopwatch.GetTimestamp();
        ApiRequest request;
        using (var body = await ReadJson(ctx).ConfigureAwait(false))
            request = ApiRequest.Parse(body.RootElement, chat, _model.Config.VocabSize);
        int context = _engine.ContextLength;
        string promptParam = chat ? "messages" : "prompt";
        var overflow = request.ContextOverflow ?? _options.ContextOverflow;
        int[] prompt;
        FittedConversation? fit = null;
        try
        {
            if (chat)
            {
                fit = ChatPrompt(request, context, overflow);
                prompt = fit.Tokens;
            }
            else
                prompt = CompletionPrompt(request, context);
        }
        catch (ArgumentException e)
        {
            // The prompt's text cannot fit the context (Tokenizer.EncodePrompt).
            throw new ApiException(400, Reason(e), promptParam, code: "context_length_exceeded");
        }
        if (prompt.Length == 0)
            throw new ApiException(400, "The prompt is empty.", promptParam);
        if (prompt.Length > context)
            throw new ApiException(400, $"The prompt has {prompt.Length} tokens; this server's context length is {context}.", promptParam, code: "context_length_exceeded");
        var generation = request.ToGeneration(prompt.Length, context, _options.MaxTokensLimit, overflow);
        ReplyParseOptions? replyOptions = null;
        if (fit is not null)
        {
            generation = _template.ForReply(fit.ForReply(generation, _model.Tokenizer));
            bool opened = _toolFormat.PromptOpensReasoning(fit.Rendered);
            replyOptions = new ReplyParseOptions { ExtractReasoning = _options.ExtractReasoning, StartsInReasoning = opened, ToolCalls = request.CallsTools };
            if (request.CallsTools)
                generation = ToolPlan(request, opened).ApplyTo(generation);
        }

        BatchRequest? job;
        try
        {
            if (!_engine.TrySubmit(prompt, generation, out job, ctx.RequestAborted))
                throw new ApiException(429, "The server is busy: its request queue is full. Retry later.", type: "rate_limit_error", code: "queue_full");
        }
        catch (ArgumentException e)
        {
            string? param = (e as ArgumentOutOfRangeException)?.ParamName switch
            {
                nameof(GenerationOptions.KeepTokens) => "n_keep",
                nameof(GenerationOptions.DiscardTokens) => "n_discard",
                var name => name,
            };
            throw new ApiException(400, Reason(e), param);
        }
        catch (ObjectDisposedException)
        {
            throw new ApiException(503, "The server is shutting down.", type: "server_error");
        }

        var header = new CompletionHeader((chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N"), chat, DateTimeOffset.UtcNow.ToUnixTimeSeconds(), _modelId);
        var reader = replyOptions is null ? null : new ReplyReader(_toolFormat, replyOptions);
        var result = request.Stream
            ? await Stream(ctx, job!, header, request, received, reader).ConfigureAwait(false)
            : await Whole(ctx, job!, header, request, received, reader).ConfigureAwait(false);
        if (result is not null)
            _metrics.Usage(result.PromptTokens.Length, result.GeneratedTokens.Length);
        _metrics.Latency.Observe(Stopwatch.GetElapsedTime(received).TotalSeconds);
    }

    // The message without the " (Parameter 'name')" .NET appends: the API names the field in param.
    private static string Reason(ArgumentException e) =>
        e.ParamName is { } name ? e.Message.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal) : e.Message;

    // The grammar of the request's tool calls (with its response format, if any: calls or that).
    private ToolCallPlan ToolPlan(ApiRequest request, bool opened)
    {
        try
        {
            return _toolFormat.Plan(request.ToolDefinitions, request.ToolChoice, request.ParallelToolCalls, opened, request.Grammar?.Gbnf,
                reasoning: _toolFormat.TemplateReasons(_template));
        }
        catch (JsonSchemaException e)
        {
            throw new ApiException(400, $"tools: a function's parameters: {e.Message}", "tools", code: "invalid_schema");
        }
        catch (ArgumentException e)
        {
            // The plan checks the tools (names) and that a named function is among them.
            throw new ApiException(400, Reason(e), e.ParamName == "choice" ? "tool_choice" : "tools");
        }
    }

    // The conversation rendered and tokenized; with truncate_history, its oldest turns left out until the reply has room.
    private FittedConversation ChatPrompt(ApiRequest request, int context, ContextOverflow overflow)
    {
        var template = _template;
        for (int i = 0; i < request.Messages.Length; i++)
        {
            string role = request.Messages[i].Role;
            if (!template.KnowsRole(role))
                throw new ApiException(400, $"messages[{i}].role \"{role}\" is not a role of OpenAI's API or of the model's chat template.", $"messages[{i}].role");
        }
        int room = ChatHistory.ReplyRoom(request.Budget(_options.MaxTokensLimit), context);
        try
        {
            return ChatHistory.Fit(template, _model.Tokenizer, request.Messages, context, room, overflow == ContextOverflow.TruncateHistory,
                new ChatTemplateOptions { Tools = request.Tools });
        }
        catch (TemplateException e)
        {
            throw new ApiException(400, $"The model's chat template rejected the conversation: {e.Message}", "messages");
        }
    }

    // Text is tokenized as llama-server does (BOS added, special tokens parsed); token ids are used as given.
    private int[] CompletionPrompt(ApiRequest request, int context) => request.PromptTokens.IsDefaultOrEmpty
        ? _model.Tokenizer.EncodePrompt(request.Prompt ?? "", context, addSpecialTokens: true, parseSpecialTokens: true)
        : [.. request.PromptTokens];

    private async Task<GenerationResult> Whole(HttpContext ctx, BatchRequest job, CompletionHeader header, ApiRequest request, long received, ReplyReader? reader)
    {
        await foreach (var _ in TimedTokens(job, received).ConfigureAwait(false))
        {
        }
        var result = await job.Completion.ConfigureAwait(false);
        var reply = reader?.Read(result.Text);
        await WriteJson(ctx, w => ResponseJson.Completion(w, header, result, reply, _model.Tokenizer, request.Logprobs)).ConfigureAwait(false);
        return result;
    }

    // Server-sent events: "data: {chunk}\n\n" per token (chat begins with the assistant's role), a chunk with the finish
    // reason, the usage when asked (stream_options.include_usage), then "data: [DONE]". An error after the stream has
    // begun is sent as an event with OpenAI's error object, which clients raise.
    private async Task<GenerationResult?> Stream(HttpContext ctx, BatchRequest job, CompletionHeader header, ApiRequest request, long received, ReplyReader? reader)
    {
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "text/event-stream; charset=utf-8";
        ctx.Response.Headers.CacheControl = "no-cache";
        ctx.Response.Headers["X-Accel-Buffering"] = "no";
        ctx.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        var events = new EventWriter(ctx.Response.BodyWriter, ctx.RequestAborted);
        var tokenizer = _model.Tokenizer;
        if (header.Chat)
            await events.Send(w => ResponseJson.Chunk(w, header, role: true, "", null, tokenizer, null)).ConfigureAwait(false);

        GenerationResult result;
        try
        {
            await foreach (var t in TimedTokens(job, received).ConfigureAwait(false))
            {
                bool scored = request.Logprobs && t.Logprob is not null;
                if (reader is not null)
                {
                    // The token's log-probability rides on its first delta (or an empty one when the reader holds its text back).
                    var scoredToken = scored ? t : (TokenOutput?)null;
                    foreach (var e in reader.Append(t.Text))
                    {
                        var token = scoredToken;
                        scoredToken = null;
                        await events.Send(w => ResponseJson.EventChunk(w, header, e, token, tokenizer)).ConfigureAwait(false);
                    }
                    if (scoredToken is { } held)
                        await events.Send(w => ResponseJson.Chunk(w, header, role: false, "", held, tokenizer, null)).ConfigureAwait(false);
                    continue;
                }
                if (t.Text.Length == 0 && !scored)
                    continue;
                await events.Send(w => ResponseJson.Chunk(w, header, role: false, t.Text, scored ? t : null, tokenizer, null)).ConfigureAwait(false);
            }
            result = await job.Completion.ConfigureAwait(false);
            if (reader is not null)
            {
                foreach (var e in reader.Finish())
                    await events.Send(w => ResponseJson.EventChunk(w, header, e, null, tokenizer)).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (!ctx.RequestAborted.IsCancellationRequested)
        {
            var error = e as ApiException ?? (e is ObjectDisposedException ? new ApiException(500, "The server is shutting down.", type: "server_error") : InternalError(e));
            await events.Send(w => ResponseJson.Error(w, error.Message, error.Type, error.Param, error.Code)).ConfigureAwait(false);
            return null;
        }
        string finish = ResponseJson.FinishReason(result.StopReason, reader?.Result);
        await events.Send(w => ResponseJson.Chunk(w, header, role: false, header.Chat ? null : "", null, tokenizer, finish)).ConfigureAwait(false);
        if (request.IncludeUsage)
            await events.Send(w => ResponseJson.UsageChunk(w, header, result)).ConfigureAwait(false);
        await events.Done().ConfigureAwait(false);
        return result;
    }

    // The request's tokens, observing the time from receipt to the first generated one.
    private async IAsyncEnumerable<TokenOutput> TimedTokens(BatchRequest job, long received)
    {
        bool first = true;
        await foreach (var t in job.Tokens.ConfigureAwait(false))
        {
            if (first && t.Id != TokenOutput.NoToken)
            {
                first = false;
                _metrics.TimeToFirstToken.Observe(Stopwatch.GetElapsedTime(received).TotalSeconds);
            }
            yield return t;
        }
    }

    /// <summary>Writes server-sent events of JSON to a response, flushing each.</summary>
    private sealed class EventWriter(PipeWriter output, CancellationToken cancellationToken)
    {
        private readonly Utf8JsonWriter _json = new(output, ResponseJson.WriterOptions);

        public ValueTask Send(Action<Utf8JsonWriter> write)
        {
            output.Write("data: "u8);
            _json.Reset(output);
            write(_json);
            _json.Flush();
            output.Write("\n\n"u8);
            return Flush();
        }

        public ValueTask Done()
        {
            output.Write("data: [DONE]\n\n"u8);
            return Flush();
        }

        private async ValueTask Flush() => await output.FlushAsync(cancellationToken).ConfigureAwait(false);
    }
}

using System.CommandLine;
using ManagedLM.Batching;
using ManagedLM.Generation;
using ManagedLM.Model;
using ManagedLM.Server;

namespace ManagedLM.Cli.Commands;

/// <summary>
/// `managedlm serve`: an OpenAI-compatible HTTP server (chat/completions, completions, models, tokenize, health, metrics,
/// and a chat page at /) over one model, its requests decoded together by a batch engine. Runs until Ctrl+C. The
/// endpoints are those <c>app.MapOpenAiEndpoints()</c> adds to any ASP.NET Core app, on <see cref="OpenAiServer"/>'s own.
/// </summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var model = CliOptions.Model();
        var host = new Option<string>("--host") { Description = "Address to bind: an IP, localhost, or 0.0.0.0 for every interface.", DefaultValueFactory = _ => "127.0.0.1" }
            .Checked(v => new ServerOptions { Host = v }.Validate());
        var port = new Option<int>("--port") { Description = "Port (0: any free port).", DefaultValueFactory = _ => 8080 }
            .Checked(v => new ServerOptions { Port = v }.Validate());
        var parallel = new Option<int>("--parallel", "-np") { Description = "Sequences decoded together; more requests wait in the queue.", DefaultValueFactory = _ => BatchEngineOptions.Default.MaxActiveSequences }
            .Checked(v => (BatchEngineOptions.Default with { MaxActiveSequences = v }).Validate());
        var queue = new Option<int>("--queue") { Description = "Requests that may wait for a place; beyond that the server answers 429.", DefaultValueFactory = _ => BatchEngineOptions.Default.MaxQueuedRequests }
            .Checked(v => (BatchEngineOptions.Default with { MaxQueuedRequests = v }).Validate());
        var ctx = new Option<int?>("--ctx-size", "--ctx", "-c") { Description = "Context length of each sequence (default: min(model's, 4096))." }.AtLeast(1);
        var apiKey = new Option<string?>("--api-key") { Description = "Require Authorization: Bearer KEY on the API (default: ${MANAGEDLM_API_KEY}, else open)." }
            .Checked(v =>
            {
                if (v is "")
                    throw new ArgumentException("--api-key must not be empty (leave it out for an open server).", "--api-key");
            });
        var threads = new Option<int?>("--threads", "-t") { Description = "Threads of each decoding step (default: one per core)." }.AtLeast(1);
        var kvType = CliOptions.KvType();
        var maxTokens = new Option<int>("--max-tokens") { Description = "Largest max_tokens a request may ask for, and the default.", DefaultValueFactory = _ => new ServerOptions().MaxTokensLimit }
            .Checked(v => new ServerOptions { MaxTokensLimit = v }.Validate());
        var modelId = new Option<string?>("--alias") { Description = "Model id the API reports (default: the file name without .gguf)." };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "No request log." };
        var chatTemplate = new Option<string?>("--chat-template-file") { Description = "Jinja chat template file to use instead of the model's tokenizer.chat_template." }
            .Checked(v => TemplateFile(v));
        var contextShift = new Option<bool>("--context-shift")
        {
            Description = "A reply that fills its context shifts it (llama-server's --context-shift; requests set n_keep, n_discard) instead of stopping; a request's context_overflow overrides.",
        };
        var truncateHistory = new Option<bool>("--truncate-history")
        {
            Description = "As --context-shift, and a chat conversation longer than the context loses its oldest turns instead of being refused.",
        };
        var reasoning = new Option<string>("--reasoning-format")
        {
            Description = "deepseek: the model's reasoning (<think>...</think>) goes to reasoning_content; none: it stays in the content.",
            DefaultValueFactory = _ => "deepseek",
        }.AcceptOnlyFromAmong("deepseek", "none");
        var embedding = new Option<bool>("--embedding", "--embeddings")
        {
            Description = "Serve embeddings only (/v1/embeddings, /v1/rerank): no completions and no batch engine. An encoder model (BERT) always is.",
        };
        var pooling = new Option<string?>("--pooling")
        {
            Description = "How /v1/embeddings pools a text's vectors (default: the model's pooling_type, else mean for an encoder and last for a decoder); rank: a reranker for /v1/rerank.",
        }.AcceptOnlyFromAmong("mean", "cls", "last", "rank");
        var command = new CliCommand("serve", "Serve a model over an OpenAI-compatible HTTP API (and a chat page at /).",
        [
            new("Serve on http://127.0.0.1:8080 (chat page at /, API at /v1)", "managedlm serve -m model.gguf"),
            new("On every interface, 16 sequences at once with 4096 tokens each, behind an API key",
                "managedlm serve -m model.gguf --host 0.0.0.0 --port 8080 --parallel 16 --ctx 4096 --api-key secret"),
            new("Under another model id, without the request log", "managedlm serve -m model.gguf --alias my-model --quiet"),
            new("Replies that go on past a context of 2048 by shifting it", "managedlm serve -m model.gguf --ctx 2048 --context-shift"),
            new("32 sequences of 8192 tokens in Q8_0 KV caches (about half the memory of F16)",
                "managedlm serve -m model.gguf --parallel 32 --ctx 8192 --kv-type q8_0"),
            new("An embedding model: /v1/embeddings (and /v1/rerank for a reranker)", "managedlm serve -m bge-small-en-v1.5-q8_0.gguf --embedding"),
        ])
        {
            model, host, port, parallel, queue, ctx, apiKey, threads, kvType, maxTokens, modelId, quiet, chatTemplate, reasoning, contextShift, truncateHistory,
            embedding, pooling,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            string path = ModelLocator.Resolve(parse.GetValue(model));
            var options = new ServerOptions
            {
                Host = parse.GetValue(host)!,
                Port = parse.GetValue(port),
                ApiKey = parse.GetValue(apiKey) ?? NullIfEmpty(Environment.GetEnvironmentVariable("MANAGEDLM_API_KEY")),
                ModelId = parse.GetValue(modelId),
                MaxTokensLimit = parse.GetValue(maxTokens),
                ChatTemplate = TemplateFile(parse.GetValue(chatTemplate)),
                ExtractReasoning = parse.GetValue(reasoning) != "none",
                ContextOverflow = Overflow(parse),
                Log = parse.GetValue(quiet) ? null : Console.Out,
                Engine = BatchEngineOptions.Default with
                {
                    MaxActiveSequences = parse.GetValue(parallel), MaxQueuedRequests = parse.GetValue(queue),
                    ContextLength = parse.GetValue(ctx), Threads = parse.GetValue(threads), KvCacheType = parse.GetValue(kvType),
                },
                EmbeddingsOnly = parse.GetValue(embedding),
                Embeddings = EmbeddingEngineOptions.Default with
                {
                    Threads = parse.GetValue(threads) ?? Environment.ProcessorCount,
                    Pooling = parse.GetValue(pooling) is { } p ? Enum.Parse<PoolingType>(p, ignoreCase: true) : null,
                },
            };
            options.Validate();
            using var m = ModelLoading.Load(path, parse.InvocationConfiguration.Error);
            CliOptions.CheckContext(options.Engine.ContextLength, m.MaxContextLength);
            await using var server = await Start(m, options, cancellationToken);
            string key = options.ApiKey is null ? "" : " (API key required)";
            if (server.EmbeddingsOnly)
            {
                var e = server.Embeddings;
                Console.Out.WriteLine($"managedlm serve: {options.ModelId ?? m.Name} ({m.Config.Architecture}, embeddings only: {e.Pooling.ToString().ToLowerInvariant()} pooling, {e.Dimensions} dimensions, up to {e.MaxTokens} tokens a text) on {string.Join(", ", server.Urls)}{key}");
                Console.Out.WriteLine($"  API: {server.BaseAddress}v1/{(e.Pooling == PoolingType.Rank ? "rerank" : "embeddings")}   Ctrl+C stops.");
            }
            else
            {
                Console.Out.WriteLine($"managedlm serve: {options.ModelId ?? m.Name} ({m.Config.Architecture}, context {server.Engine.ContextLength}, {CliOptions.KvTypeName(options.Engine.KvCacheType)} KV cache, {options.Engine.MaxActiveSequences} parallel) on {string.Join(", ", server.Urls)}{key}");
                Console.Out.WriteLine($"  chat page: {server.BaseAddress}   API: {server.BaseAddress}v1   Ctrl+C stops.");
            }
            try
            {
                await server.WaitForShutdownAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
            }
            return 0;
        });
        return command;
    }

    /// <summary>The server's default policy: --truncate-history, else --context-shift, else stop.</summary>
    internal static ContextOverflow Overflow(ParseResult parse) =>
        parse.GetValue<bool>("--truncate-history") ? ContextOverflow.TruncateHistory
        : parse.GetValue<bool>("--context-shift") ? ContextOverflow.Shift : ContextOverflow.Stop;

    // The template in a file, parsed; ArgumentException (reported under the flag) when it cannot be read or parsed.
    private static Chat.ChatTemplate? TemplateFile(string? path)
    {
        if (path is null)
            return null;
        try
        {
            return Chat.ChatTemplate.Parse(File.ReadAllText(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or Chat.Jinja.TemplateException)
        {
            throw new ArgumentException(e.Message, e);
        }
    }

    // Starts the server; failing to listen (the port is taken, or not ours to use) is a failure of the machine, not of the input.
    private static async Task<OpenAiServer> Start(TransformerModel model, ServerOptions options, CancellationToken cancellationToken)
    {
        try
        {
            return await OpenAiServer.StartAsync(model, options, cancellationToken);
        }
        catch (IOException e)
        {
            throw new CommandFailedException(e.Message, e);
        }
    }

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;
}

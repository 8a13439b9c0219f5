using System.Runtime.InteropServices;
using System.Text.Json;
using ManagedLM.Batching;
using ManagedLM.Embeddings;
using ManagedLM.Model;
using Microsoft.AspNetCore.Http;

namespace ManagedLM.Server;

internal sealed partial class OpenAiApi
{
    // Most texts (or documents) one request may send, as OpenAI's limit of 2048 inputs.
    private const int MaxInputs = 2048;

    // POST /v1/embeddings (OpenAI): {"input": "text" | ["text", ...] | [ids] | [[ids], ...], "encoding_format": "float" |
    // "base64", "dimensions": n} → {"object": "list", "data": [{"object": "embedding", "index": i, "embedding": [...]}],
    // "model": ..., "usage": {"prompt_tokens": n, "total_tokens": n}}.
    public async Task Embed(HttpContext ctx)
    {
        var engine = EmbeddingEngineFor("/v1/embeddings");
        if (engine.Pooling == PoolingType.Rank)
            throw new ApiException(400, "This model is a reranker (rank pooling): it scores query/document pairs at /v1/rerank.", code: "unsupported_endpoint");
        List<int[]> inputs;
        string format;
        int dimensions;
        using (var body = await ReadJson(ctx).ConfigureAwait(false))
        {
            var root = Object(body);
            ApiRequest.String(root, "model");
            ApiRequest.String(root, "user");
            format = ApiRequest.String(root, "encoding_format") ?? "float";
            if (format is not ("float" or "base64"))
                throw new ApiException(400, $"'encoding_format' must be \"float\" or \"base64\"; got \"{format}\".", "encoding_format");
            dimensions = ApiRequest.Int(root, "dimensions") ?? engine.Dimensions;
            if (dimensions < 1 || dimensions > engine.Dimensions)
                throw new ApiException(400, $"'dimensions' must be in [1, {engine.Dimensions}] for this model; got {dimensions}.", "dimensions");
            if (!root.TryGetProperty("input", out var input) || input.ValueKind == JsonValueKind.Null)
                throw new ApiException(400, "'input' is required: a string, an array of strings, an array of token ids or an array of such arrays.", "input");
            inputs = Inputs(engine, input);
        }
        float[][] vectors = await Run(engine, inputs, ctx.RequestAborted).ConfigureAwait(false);
        int tokens = inputs.Sum(s => s.Length);
        await WriteJson(ctx, w =>
        {
            w.WriteStartObject();
            w.WriteString("object", "list");
            w.WriteStartArray("data");
            for (int i = 0; i < vectors.Length; i++)
            {
                float[] v = EmbeddingVectors.Truncate(vectors[i], dimensions, engine.Options.Normalize);
                w.WriteStartObject();
                w.WriteString("object", "embedding");
                w.WriteNumber("index", i);
                if (format == "base64")
                    w.WriteBase64String("embedding", MemoryMarshal.AsBytes(v.AsSpan())); // little-endian float32, as OpenAI's
                else
                {
                    w.WriteStartArray("embedding");
                    foreach (float x in v)
                        w.WriteNumberValue(x);
                    w.WriteEndArray();
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteString("model", _modelId);
            Usage(w, tokens);
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    // POST /v1/rerank (llama.cpp's, Jina's and Cohere's shape): {"query": "...", "documents": ["...", ...], "top_n": n,
    // "return_documents": bool} → {"object": "list", "model": ..., "results": [{"index": i, "relevance_score": s,
    // "document": {"text": ...}}, ...] (best first), "usage": {...}}. Scores are the classifier's logits, as llama.cpp's.
    public async Task Rerank(HttpContext ctx)
    {
        var engine = EmbeddingEngineFor("/v1/rerank");
        if (engine.Pooling != PoolingType.Rank)
        {
            throw new ApiException(400, $"This model pools by {engine.Pooling.ToString().ToLowerInvariant()}: /v1/rerank needs a reranker " +
                "(a model with a classifier head and rank pooling).", code: "unsupported_endpoint");
        }
        string query;
        string[] documents;
        int topN;
        bool returnDocuments;
        using (var body = await ReadJson(ctx).ConfigureAwait(false))
        {
            var root = Object(body);
            ApiRequest.String(root, "model");
            query = ApiRequest.String(root, "query") ?? throw new ApiException(400, "'query' is required: a string.", "query");
            if (!root.TryGetProperty("documents", out var docs) || docs.ValueKind != JsonValueKind.Array)
                throw new ApiException(400, "'documents' is required: an array of strings.", "documents");
            int n = docs.GetArrayLength();
            if (n == 0 || n > MaxInputs)
                throw new ApiException(400, $"'documents' must hold 1 to {MaxInputs} strings; it holds {n}.", "documents");
            documents = new string[n];
            int i = 0;
            foreach (var d in docs.EnumerateArray())
            {
                documents[i] = d.ValueKind == JsonValueKind.String ? d.GetString()! : throw new ApiException(400, $"'documents[{i}]' must be a string.", $"documents[{i}]");
                i++;
            }
            topN = ApiRequest.Int(root, "top_n") ?? n;
            if (topN < 1)
                throw new ApiException(400, $"'top_n' must be at least 1; got {topN}.", "top_n");
            returnDocuments = ApiRequest.Bool(root, "return_documents") ?? false;
        }
        var pairs = new List<int[]>(documents.Length);
        for (int i = 0; i < documents.Length; i++)
            pairs.Add(Tokens(() => engine.TokenizePair(query, documents[i]), $"documents[{i}]"));
        float[][] scores = await Run(engine, pairs, ctx.RequestAborted).ConfigureAwait(false);
        int[] order = [.. Enumerable.Range(0, documents.Length).OrderByDescending(i => scores[i][0]).ThenBy(i => i).Take(topN)];
        await WriteJson(ctx, w =>
        {
            w.WriteStartObject();
            w.WriteString("object", "list");
            w.WriteString("model", _modelId);
            w.WriteStartArray("results");
            foreach (int i in order)
            {
                w.WriteStartObject();
                w.WriteNumber("index", i);
                w.WriteNumber("relevance_score", scores[i][0]);
                if (returnDocuments)
                {
                    w.WriteStartObject("document");
                    w.WriteString("text", documents[i]);
                    w.WriteEndObject();
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            Usage(w, pairs.Sum(p => p.Length));
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    private EmbeddingEngine EmbeddingEngineFor(string endpoint)
    {
        try
        {
            return _embeddings.Value;
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException)
        {
            throw new ApiException(400, $"This model cannot serve {endpoint}: {e.Message}", code: "unsupported_endpoint");
        }
    }

    // The token sequences of "input": strings are tokenized with the model's special tokens; ids are used as given.
    private List<int[]> Inputs(EmbeddingEngine engine, JsonElement input)
    {
        var result = new List<int[]>();
        if (input.ValueKind == JsonValueKind.String)
        {
            string text = input.GetString()!;
            result.Add(Tokens(() => engine.Tokenize(text), "input"));
            return result;
        }
        if (input.ValueKind != JsonValueKind.Array || input.GetArrayLength() == 0)
            throw new ApiException(400, "'input' must be a non-empty string, array of strings, array of token ids or array of such arrays.", "input");
        if (input[0].ValueKind == JsonValueKind.Number)
        {
            result.Add(Ids(input, "input", engine));
            return result;
        }
        if (input.GetArrayLength() > MaxInputs)
            throw new ApiException(400, $"'input' holds {input.GetArrayLength()} items; a request takes at most {MaxInputs}.", "input");
        int i = 0;
        foreach (var item in input.EnumerateArray())
        {
            string param = $"input[{i++}]";
            if (item.ValueKind == JsonValueKind.String)
            {
                string text = item.GetString()!;
                result.Add(Tokens(() => engine.Tokenize(text), param));
            }
            else if (item.ValueKind == JsonValueKind.Array)
                result.Add(Ids(item, param, engine));
            else
                throw new ApiException(400, $"'{param}' must be a string or an array of token ids.", param);
        }
        return result;
    }

    private int[] Ids(JsonElement array, string param, EmbeddingEngine engine)
    {
        int n = array.GetArrayLength();
        if (n == 0 || n > engine.MaxTokens)
            throw new ApiException(400, $"'{param}' has {n} tokens; an input takes 1 to {engine.MaxTokens}.", param, code: "context_length_exceeded");
        var ids = new int[n];
        int i = 0;
        foreach (var t in array.EnumerateArray())
        {
            if (t.ValueKind != JsonValueKind.Number || !t.TryGetInt32(out int id) || (uint)id >= (uint)_model.Config.VocabSize)
                throw new ApiException(400, $"'{param}[{i}]' ({t.GetRawText()}) is not a token id in [0, {_model.Config.VocabSize}).", param);
            ids[i++] = id;
        }
        return ids;
    }

    // A text's tokens; too long (or nothing to embed) is the request's fault.
    private static int[] Tokens(Func<int[]> tokenize, string param)
    {
        try
        {
            return tokenize();
        }
        catch (ArgumentException e)
        {
            throw new ApiException(400, $"'{param}': {Reason(e)}", param, code: "context_length_exceeded");
        }
    }

    private static async Task<float[][]> Run(EmbeddingEngine engine, List<int[]> sequences, CancellationToken cancellationToken)
    {
        if (!engine.TrySubmit(sequences, out var result, cancellationToken))
            throw new ApiException(429, "The server is busy: its embedding queue is full. Retry later.", type: "rate_limit_error", code: "queue_full");
        return await result.ConfigureAwait(false);
    }

    private static void Usage(Utf8JsonWriter w, int tokens)
    {
        w.WriteStartObject("usage");
        w.WriteNumber("prompt_tokens", tokens);
        w.WriteNumber("total_tokens", tokens);
        w.WriteEndObject();
    }
}

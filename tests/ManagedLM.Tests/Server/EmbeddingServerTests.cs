using System.ClientModel;
using System.Net;
using System.Text.Json;
using Microsoft.Extensions.AI;
using OpenAI;
using ManagedLM.Batching;
using ManagedLM.Embeddings;
using ManagedLM.Model;
using ManagedLM.Server;
using ManagedLM.Tests.Embeddings;

namespace ManagedLM.Tests.Server;

/// <summary>A server over the BERT fixture (an encoder: embeddings only), shared by a test class.</summary>
public sealed class EmbeddingServerFixture : IAsyncLifetime
{
    public TransformerModel Model { get; } = BertFixture.Load();
    public OpenAiServer Server { get; private set; } = null!;
    public HttpClient Http { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Server = await OpenAiServer.StartAsync(Model, new ServerOptions
        {
            Port = 0, MaxBodyBytes = 1 << 20, Embeddings = EmbeddingEngineOptions.Default with { Threads = 2, BatchTokens = 256 },
        });
        Http = ServerFixture.Client(Server);
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
        Model.Dispose();
    }
}

/// <summary>/v1/embeddings and /v1/rerank: OpenAI's and llama.cpp's shapes, the vectors the library computes, and 4xx for what cannot be served.</summary>
public class EmbeddingServerTests(EmbeddingServerFixture fixture) : IClassFixture<EmbeddingServerFixture>
{
    private static float[] Vector(JsonElement item) => [.. item.GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle())];

    private static string Json(object body) => JsonSerializer.Serialize(body);

    [Fact]
    public async Task Embeddings_are_the_embedders_bits_and_llama_cpps_vectors()
    {
        var texts = BertFixture.Reference.Texts;
        var reply = await Api.Post(fixture.Http, "/v1/embeddings", Json(new { model = "x", input = texts.Select(t => t.Text).ToArray() }));
        Assert.Equal(HttpStatusCode.OK, reply.Status);
        Assert.Equal("list", reply.Body.GetProperty("object").GetString());
        Assert.Equal("synth-bert-Q8_0", reply.Body.GetProperty("model").GetString());
        var data = reply.Body.GetProperty("data").EnumerateArray().ToArray();
        Assert.Equal(texts.Length, data.Length);
        using var embedder = fixture.Model.CreateEmbedder();
        for (int i = 0; i < texts.Length; i++)
        {
            Assert.Equal(("embedding", i), (data[i].GetProperty("object").GetString(), data[i].GetProperty("index").GetInt32()));
            float[] v = Vector(data[i]);
            Assert.Equal(embedder.Embed(texts[i].Text), v);
            Assert.True(Cosine(v, texts[i].Embedding) >= 0.9999, $"text {i}: cosine {Cosine(v, texts[i].Embedding)} with llama.cpp's");
        }
        int tokens = texts.Sum(t => t.Tokens.Length);
        Assert.Equal(tokens, reply.Body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(tokens, reply.Body.GetProperty("usage").GetProperty("total_tokens").GetInt32());
    }

    [Fact]
    public async Task Input_may_be_one_string_token_ids_or_arrays_of_them()
    {
        var t = BertFixture.Reference.Texts[1];
        var one = await Api.Post(fixture.Http, "/v1/embeddings", Json(new { input = t.Text }));
        var ids = await Api.Post(fixture.Http, "/embeddings", Json(new { input = t.Tokens }));
        var idArrays = await Api.Post(fixture.Http, "/v1/embeddings", Json(new { input = new[] { t.Tokens, BertFixture.Reference.Texts[0].Tokens } }));
        float[] expected = Vector(one.Body.GetProperty("data")[0]);
        Assert.Equal(expected, Vector(ids.Body.GetProperty("data")[0]));
        Assert.Equal(expected, Vector(idArrays.Body.GetProperty("data")[0]));
        Assert.Equal(2, idArrays.Body.GetProperty("data").GetArrayLength());
    }

    [Fact]
    public async Task Base64_is_little_endian_float32_and_dimensions_shorten_and_renormalize()
    {
        string text = BertFixture.Reference.Texts[2].Text;
        var floats = Vector((await Api.Post(fixture.Http, "/v1/embeddings", Json(new { input = text }))).Body.GetProperty("data")[0]);
        var base64 = await Api.Post(fixture.Http, "/v1/embeddings", Json(new { input = text, encoding_format = "base64" }));
        byte[] bytes = Convert.FromBase64String(base64.Body.GetProperty("data")[0].GetProperty("embedding").GetString()!);
        Assert.Equal(floats, Enumerable.Range(0, bytes.Length / 4).Select(i => BitConverter.ToSingle(bytes, 4 * i)).ToArray());

        var shortReply = await Api.Post(fixture.Http, "/v1/embeddings", Json(new { input = text, dimensions = 8 }));
        float[] shortened = Vector(shortReply.Body.GetProperty("data")[0]);
        Assert.Equal(8, shortened.Length);
        Assert.Equal(1.0, Math.Sqrt(shortened.Sum(x => (double)x * x)), 5);
        Assert.True(Cosine(shortened, floats[..8]) > 0.99999);
    }

    [Fact]
    public async Task Concurrent_requests_get_the_bits_of_requests_alone()
    {
        var texts = BertFixture.Reference.Texts.Select(t => t.Text).ToArray();
        using var embedder = fixture.Model.CreateEmbedder();
        var expected = texts.Select(embedder.Embed).ToArray();
        var replies = await Task.WhenAll(Enumerable.Range(0, 24).Select(i =>
            Api.Post(fixture.Http, "/v1/embeddings", Json(new { input = new[] { texts[i % texts.Length], texts[(i + 1) % texts.Length] } }))));
        for (int i = 0; i < replies.Length; i++)
        {
            Assert.Equal(expected[i % texts.Length], Vector(replies[i].Body.GetProperty("data")[0]));
            Assert.Equal(expected[(i + 1) % texts.Length], Vector(replies[i].Body.GetProperty("data")[1]));
        }
        Assert.True(fixture.Server.Embeddings.Metrics.Runs > 0);
    }

    [Theory]
    [InlineData("""{"model": "x"}""", "input")]
    [InlineData("""{"input": []}""", "input")]
    [InlineData("""{"input": [1.5]}""", "input")]
    [InlineData("""{"input": [[101, 99999]]}""", "input[0]")]
    [InlineData("""{"input": [{"a": 1}]}""", "input[0]")]
    [InlineData("""{"input": "hi", "dimensions": 0}""", "dimensions")]
    [InlineData("""{"input": "hi", "dimensions": 33}""", "dimensions")]
    [InlineData("""{"input": "hi", "encoding_format": "int8"}""", "encoding_format")]
    public async Task Bad_requests_are_400s_naming_the_field(string body, string param)
    {
        var reply = await Api.Post(fixture.Http, "/v1/embeddings", body);
        Assert.Equal(HttpStatusCode.BadRequest, reply.Status);
        Assert.Equal(param, reply.ErrorParam);
    }

    [Fact]
    public async Task A_text_longer_than_the_budget_is_a_400_and_completions_are_not_served()
    {
        string longText = string.Join(' ', Enumerable.Repeat("hello world", 200));
        var tooLong = await Api.Post(fixture.Http, "/v1/embeddings", Json(new { input = longText }));
        Assert.Equal(HttpStatusCode.BadRequest, tooLong.Status);
        Assert.Equal("context_length_exceeded", tooLong.Body.GetProperty("error").GetProperty("code").GetString());

        var chat = await Api.Post(fixture.Http, "/v1/chat/completions", """{"messages": [{"role": "user", "content": "hi"}]}""");
        Assert.Equal(HttpStatusCode.BadRequest, chat.Status);
        Assert.Equal("unsupported_endpoint", chat.Body.GetProperty("error").GetProperty("code").GetString());
        var rerank = await Api.Post(fixture.Http, "/v1/rerank", """{"query": "a", "documents": ["b"]}""");
        Assert.Equal(HttpStatusCode.BadRequest, rerank.Status);
        Assert.True(fixture.Server.EmbeddingsOnly);
        Assert.Throws<InvalidOperationException>(() => fixture.Server.Engine);

        var models = await Api.Get(fixture.Http, "/v1/models");
        var meta = models.Body.GetProperty("data")[0].GetProperty("meta");
        Assert.Equal(("mean", 32, 256), (meta.GetProperty("pooling").GetString(), meta.GetProperty("n_embd_out").GetInt32(), meta.GetProperty("context_length").GetInt32()));
        var metrics = await fixture.Http.GetStringAsync("/metrics");
        Assert.Contains("managedlm_embedding_sequences_total", metrics);
    }

    [Fact]
    public async Task A_reranker_serves_rerank_best_first_with_the_libraries_scores()
    {
        var (file, _, _, _, _) = BertFixture.Reranker(1);
        using var model = TransformerModel.Load(file);
        await using var server = await OpenAiServer.StartAsync(model, new ServerOptions { Port = 0, Embeddings = EmbeddingEngineOptions.Default with { Threads = 1 } });
        using var http = ServerFixture.Client(server);
        string query = "where do foxes live?";
        string[] documents = [.. BertFixture.Reference.Texts.Select(t => t.Text)];
        var reply = await Api.Post(http, "/v1/rerank", Json(new { model = "x", query, documents, top_n = 4, return_documents = true }));
        Assert.Equal(HttpStatusCode.OK, reply.Status);
        using var reranker = model.CreateEmbedder();
        float[] expected = reranker.Rerank(query, documents);
        var results = reply.Body.GetProperty("results").EnumerateArray().ToArray();
        Assert.Equal(4, results.Length);
        int[] best = [.. Enumerable.Range(0, documents.Length).OrderByDescending(i => expected[i]).Take(4)];
        Assert.Equal(best, results.Select(r => r.GetProperty("index").GetInt32()));
        Assert.Equal(best.Select(i => expected[i]), results.Select(r => r.GetProperty("relevance_score").GetSingle()));
        Assert.Equal(documents[best[0]], results[0].GetProperty("document").GetProperty("text").GetString());
        int tokens = documents.Sum(d => reranker.TokenizePair(query, d).Length);
        Assert.Equal(tokens, reply.Body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());

        foreach (string path in new[] { "/rerank", "/v1/reranking", "/reranking" })
            Assert.Equal(HttpStatusCode.OK, (await Api.Post(http, path, Json(new { query, documents = new[] { "x" } }))).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await Api.Post(http, "/v1/rerank", Json(new { query, documents = Array.Empty<string>() }))).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await Api.Post(http, "/v1/rerank", Json(new { documents = new[] { "x" } }))).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await Api.Post(http, "/v1/rerank", Json(new { query, documents = new[] { "x" }, top_n = 0 }))).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await Api.Post(http, "/v1/embeddings", Json(new { input = "x" }))).Status);
    }

    [Fact]
    public async Task A_decoder_server_also_embeds_with_last_token_pooling()
    {
        using var model = TransformerModel.Load(TestData.Model("stories260K.gguf"));
        await using var server = await OpenAiServer.StartAsync(model, new ServerOptions
        {
            Port = 0, Engine = new BatchEngineOptions { MaxActiveSequences = 2, Threads = 1, ContextLength = 128 },
            Embeddings = EmbeddingEngineOptions.Default with { Threads = 1 },
        });
        using var http = ServerFixture.Client(server);
        Assert.False(server.EmbeddingsOnly);
        var reply = await Api.Post(http, "/v1/embeddings", Json(new { input = "Once upon a time" }));
        Assert.Equal(HttpStatusCode.OK, reply.Status);
        using var embedder = model.CreateEmbedder();
        Assert.Equal(PoolingType.Last, server.Embeddings.Pooling);
        Assert.Equal(embedder.Embed("Once upon a time"), Vector(reply.Body.GetProperty("data")[0]));
        var chat = await Api.Post(http, "/v1/completions", """{"prompt": "Once", "max_tokens": 2}""");
        Assert.Equal(HttpStatusCode.OK, chat.Status);
    }

    [Fact]
    public async Task The_official_openai_package_and_its_extensions_adapter_embed_with_the_librarys_vectors()
    {
        string[] texts = [.. BertFixture.Reference.Texts.Take(3).Select(t => t.Text)];
        using var embedder = fixture.Model.CreateEmbedder();
        var expected = texts.Select(embedder.Embed).ToArray();
        var client = new OpenAIClient(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(fixture.Server.BaseAddress, "v1") })
            .GetEmbeddingClient("synth-bert-Q8_0");
        var result = await client.GenerateEmbeddingsAsync(texts); // base64 on the wire, as the package asks
        for (int i = 0; i < texts.Length; i++)
            Assert.Equal(expected[i], result.Value[i].ToFloats().ToArray());
        Assert.Equal(texts.Sum(t => embedder.Tokenize(t).Length), result.Value.Usage.InputTokenCount);

        IEmbeddingGenerator<string, Embedding<float>> generator = client.AsIEmbeddingGenerator();
        var shortened = await generator.GenerateAsync(texts, new EmbeddingGenerationOptions { Dimensions = 16 });
        Assert.Equal(EmbeddingVectors.Truncate(expected[0], 16, normalize: true), shortened[0].Vector.ToArray());
    }

    [Fact]
    public async Task The_openai_npm_package_embeds_as_floats_and_base64()
    {
        var run = await ClientTools.NodeAsync("openai-embeddings.mjs", new Uri(fixture.Server.BaseAddress, "v1").ToString());
        Assert.True(run.ExitCode == 0, run.ToString());
        using var report = JsonDocument.Parse(run.Stdout);
        var r = report.RootElement;
        using var embedder = fixture.Model.CreateEmbedder();
        string[] input = ["Hello world!", "The quick brown fox jumps over the lazy dog."];
        for (int i = 0; i < input.Length; i++)
        {
            float[] expected = embedder.Embed(input[i]);
            Assert.Equal(expected, r.GetProperty("base64")[i].EnumerateArray().Select(v => v.GetSingle()).ToArray());
            Assert.Equal(expected, r.GetProperty("float")[i].EnumerateArray().Select(v => v.GetSingle()).ToArray());
        }
        Assert.Equal("dimensions", r.GetProperty("error").GetProperty("param").GetString());
    }

    private static double Cosine(float[] a, float[] b) => BertFixture.Cosine(a, b);
}

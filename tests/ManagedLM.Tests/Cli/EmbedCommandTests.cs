using System.Globalization;
using System.Numerics.Tensors;
using System.Text.Json;
using ManagedLM.Cli;
using ManagedLM.Cli.Commands;
using ManagedLM.Embeddings;
using ManagedLM.Gguf;
using ManagedLM.Kernels;
using ManagedLM.Model;
using ManagedLM.Tests.Embeddings;
using ManagedLM.Tests.Model;

namespace ManagedLM.Tests.Cli;

/// <summary>`managedlm embed` on the synth-bert fixture: its output against the <see cref="Embedder"/>'s vectors, and its errors.</summary>
public sealed class EmbedCommandTests : IDisposable
{
    private static readonly string Model = TestData.Model(BertFixture.File);

    private static readonly string[] Texts = ["hello world", "a cat sat on the mat", "stock markets fell sharply today"];

    private readonly string _dir = Directory.CreateTempSubdirectory("managedlm-embed-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Output, string Error) Embed(params string[] args) => CliRun.Invoke(["embed", "-m", Model, "-t", "1", .. args]);

    private static string[] TextArgs(IEnumerable<string> texts) => texts.SelectMany(t => new[] { "--text", t }).ToArray();

    private static float[][] Reference(IReadOnlyList<string> texts, EmbedderOptions? options = null)
    {
        using var model = BertFixture.Load();
        using var embedder = model.CreateEmbedder(options);
        return embedder.Embed(texts);
    }

    private static string[] Lines(string output) => output.Split('\n').Select(l => l.TrimEnd('\r')).ToArray();

    private static float[] Values(string line) =>
        line[(line.IndexOf(": ", StringComparison.Ordinal) + 2)..].Split(' ').Select(v => float.Parse(v, CultureInfo.InvariantCulture)).ToArray();

    [Fact]
    public void One_text_is_one_line_of_its_vector_to_six_decimals()
    {
        var (code, output, error) = Embed("--text", Texts[0]);
        Assert.True(code == ExitCodes.Ok, error);
        var expected = Reference([Texts[0]])[0];
        string line = Assert.Single(Lines(output), l => l.Length > 0);
        Assert.StartsWith("embedding 0: ", line);
        Assert.Equal(expected.Select(v => v.ToString("F6", CultureInfo.InvariantCulture)), line["embedding 0: ".Length..].Split(' '));
        Assert.Equal(32, Values(line).Length);
    }

    [Fact]
    public void Several_texts_print_their_vectors_and_the_cosine_similarity_matrix()
    {
        var (code, output, error) = Embed(TextArgs(Texts));
        Assert.True(code == ExitCodes.Ok, error);
        var expected = Reference(Texts);
        var lines = Lines(output);
        for (int i = 0; i < Texts.Length; i++)
        {
            Assert.StartsWith($"embedding {i}: ", lines[i]);
            var got = Values(lines[i]);
            Assert.Equal(expected[i].Length, got.Length);
            Assert.All(got.Zip(expected[i]), p => Assert.True(Math.Abs(p.First - p.Second) <= 5e-7f, $"{p.First} vs {p.Second}"));
        }
        // As llama-embedding prints it: each text's first 6 characters, then a row per text and its first 10 characters.
        Assert.Equal(["", "cosine similarity matrix:", "", "hello  a cat  stock"], lines[3..7]);
        for (int i = 0; i < Texts.Length; i++)
        {
            string row = lines[7 + i];
            var cells = Enumerable.Range(0, Texts.Length).Select(j => row.Substring(7 * j, 7)).ToArray();
            for (int j = 0; j < Texts.Length; j++)
            {
                double cosine = TensorPrimitives.Dot(expected[i], expected[j]) / (TensorPrimitives.Norm(expected[i]) * TensorPrimitives.Norm(expected[j]));
                Assert.Equal(cosine, double.Parse(cells[j], CultureInfo.InvariantCulture), 0.0051);
            }
            Assert.Equal("  1.00 ", cells[i]);
            Assert.Equal(Texts[i][..10], row[(7 * Texts.Length)..]);
        }
        Assert.Equal([""], lines[10..]);
    }

    [Fact]
    public void Json_is_openais_embeddings_response_with_the_embedders_exact_vectors()
    {
        var (code, output, error) = Embed([.. TextArgs(Texts), "--json"]);
        Assert.True(code == ExitCodes.Ok, error);
        var expected = Reference(Texts);
        var root = JsonDocument.Parse(output).RootElement;
        Assert.Equal("list", root.GetProperty("object").GetString());
        Assert.Equal("synth-bert-Q8_0", root.GetProperty("model").GetString());
        var data = root.GetProperty("data").EnumerateArray().ToArray();
        Assert.Equal(Texts.Length, data.Length);
        for (int i = 0; i < data.Length; i++)
        {
            Assert.Equal("embedding", data[i].GetProperty("object").GetString());
            Assert.Equal(i, data[i].GetProperty("index").GetInt32());
            Assert.Equal(expected[i], data[i].GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()));
        }
        using var model = BertFixture.Load();
        int tokens = Texts.Sum(t => model.Tokenizer.Encode(t).Length);
        Assert.Equal((tokens, tokens), (root.GetProperty("usage").GetProperty("prompt_tokens").GetInt32(), root.GetProperty("usage").GetProperty("total_tokens").GetInt32()));
        Assert.Single(Lines(output), l => l.Length > 0);
    }

    [Fact]
    public void Pooling_and_normalization_options_reach_the_embedder()
    {
        var (code, output, error) = Embed("--text", Texts[1], "--pooling", "CLS", "--no-normalize", "--json", "--batch-tokens", "64");
        Assert.True(code == ExitCodes.Ok, error);
        var expected = Reference([Texts[1]], new EmbedderOptions { Pooling = PoolingType.Cls, Normalize = false })[0];
        var got = JsonDocument.Parse(output).RootElement.GetProperty("data")[0].GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray();
        Assert.Equal(expected, got);
        Assert.True(Math.Abs(TensorPrimitives.Norm(got) - 1) > 0.01, "not normalized");
    }

    [Fact]
    public void Pooling_none_prints_a_vector_per_token()
    {
        using var model = BertFixture.Load();
        using var embedder = model.CreateEmbedder();
        var rows = embedder.TokenEmbeddings(Texts[0]);
        int[] ids = embedder.Tokenize(Texts[0]);

        var (code, output, error) = Embed("--text", Texts[0], "--pooling", "none");
        Assert.True(code == ExitCodes.Ok, error);
        var lines = Lines(output).Where(l => l.Length > 0).ToArray();
        Assert.Equal(ids.Length, lines.Length);
        Assert.Equal("embedding 0 token 0 (101 '[CLS]'): ", lines[0][..(lines[0].IndexOf(": ", StringComparison.Ordinal) + 2)]);
        Assert.StartsWith($"embedding 0 token 1 ({ids[1]} ' hello'): ", lines[1]);
        for (int t = 0; t < ids.Length; t++)
            Assert.All(Values(lines[t]).Select((v, d) => (v, d)), p => Assert.True(Math.Abs(p.v - rows[t, p.d]) <= 5e-7f));

        (code, output, error) = Embed("--text", Texts[0], "--pooling", "none", "--json");
        Assert.True(code == ExitCodes.Ok, error);
        var tokens = JsonDocument.Parse(output).RootElement.GetProperty("data")[0].GetProperty("embedding").EnumerateArray().ToArray();
        Assert.Equal(ids.Length, tokens.Length);
        for (int t = 0; t < ids.Length; t++)
            Assert.Equal(Enumerable.Range(0, rows.GetLength(1)).Select(d => rows[t, d]), tokens[t].EnumerateArray().Select(v => v.GetSingle()));
    }

    [Fact]
    public void A_file_gives_a_text_per_non_empty_line_after_the_texts_given()
    {
        string path = Path.Combine(_dir, "texts.txt");
        File.WriteAllText(path, $"{Texts[1]}\r\n\n{Texts[2]}\n");
        var (code, output, error) = Embed("--text", Texts[0], "--file", path, "--json");
        Assert.True(code == ExitCodes.Ok, error);
        var expected = Reference(Texts);
        var data = JsonDocument.Parse(output).RootElement.GetProperty("data").EnumerateArray().ToArray();
        Assert.Equal(expected, data.Select(e => e.GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray()));

        Assert.Equal(Texts[1..], EmbedCommand.ReadTexts([], "-", new StringReader($"\n{Texts[1]}\n\n{Texts[2]}")));
        Assert.Equal(Texts, EmbedCommand.ReadTexts(Texts, null, new StringReader("ignored")));
    }

    [Fact]
    public void Rank_pooling_scores_each_text_against_the_query_best_first()
    {
        var random = new Random(5);
        (GgufTensorSpec, byte[]) Tensor(string name, long[] shape, float scale) => (new GgufTensorSpec(name, GgmlType.F32, shape),
            Enumerable.Range(0, (int)shape.Aggregate(1L, (a, b) => a * b)).SelectMany(_ => BitConverter.GetBytes((float)(random.NextDouble() * 2 - 1) * scale)).ToArray());
        string reranker = Path.Combine(_dir, "reranker.gguf");
        File.WriteAllBytes(reranker, BertFixture.Bytes(m => ModelBytes.Set(m, "bert.pooling_type", GgufValue.Of(4u)),
            [Tensor("cls.weight", [32, 32], 0.3f), Tensor("cls.bias", [32], 0.1f), Tensor("cls.output.weight", [32, 1], 0.5f), Tensor("cls.output.bias", [1], 0.1f)]));
        float[] scores;
        using (var model = TransformerModel.Load(reranker))
        using (var embedder = model.CreateEmbedder())
            scores = embedder.Rerank("what is a cat?", Texts);
        int[] order = Enumerable.Range(0, Texts.Length).OrderByDescending(i => scores[i]).ToArray();

        var (code, output, error) = CliRun.Invoke(["embed", "-m", reranker, "-t", "1", "--query", "what is a cat?", .. TextArgs(Texts)]);
        Assert.True(code == ExitCodes.Ok, error);
        Assert.Equal(order.Select(i => $"{i} {scores[i].ToString("F6", CultureInfo.InvariantCulture)} {Texts[i]}").Append(""), Lines(output));

        (code, output, error) = CliRun.Invoke(["embed", "-m", reranker, "-t", "1", "--query", "what is a cat?", "--json", .. TextArgs(Texts)]);
        Assert.True(code == ExitCodes.Ok, error);
        var results = JsonDocument.Parse(output).RootElement.GetProperty("results").EnumerateArray().ToArray();
        Assert.Equal(order, results.Select(r => r.GetProperty("index").GetInt32()));
        Assert.Equal(order.Select(i => scores[i]), results.Select(r => r.GetProperty("relevance_score").GetSingle()));

        (code, _, error) = CliRun.Invoke(["embed", "-m", reranker, "-t", "1", .. TextArgs(Texts)]);
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Equal("managedlm embed: error: Rank pooling scores each text as a document against a query: give it with --query.", error.TrimEnd());
    }

    [Theory]
    [InlineData(new string[0], "Nothing to embed: give a text with --text (repeatable) or a file of lines with --file.")]
    [InlineData(new[] { "--text", "a", "--pooling", "rank", "--query", "q" }, "Rank pooling scores with the model's classifier head, and this model has none")]
    [InlineData(new[] { "--text", "a", "--query", "q" }, "--query is for rank pooling (a reranker's classifier head); this embedder pools by mean.")]
    [InlineData(new[] { "--text", "a", "--text", "LONG" }, "text 1: The text has 602 tokens; this embedder takes at most 512 per text")]
    [InlineData(new[] { "--text", "a b c d", "--batch-tokens", "4" }, "text 0: The text has 6 tokens; this embedder takes at most 4 per text (the model's context and --batch-tokens 4).")]
    [InlineData(new[] { "--text", "x", "--pooling", "max" }, "--pooling must be one of none, mean, cls, last, rank, not \"max\".")]
    [InlineData(new[] { "--text", "x", "--batch-tokens", "0" }, "--batch-tokens must be ≥ 1")]
    public void Errors_are_usage_errors_of_one_line(string[] args, string message)
    {
        // LONG: a text past the fixture's 512 positions.
        args = args.Select(a => a == "LONG" ? string.Join(' ', Enumerable.Repeat("word", 600)) : a).ToArray();
        var (code, output, error) = Embed(args);
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Equal("", output);
        string line = Assert.Single(error.TrimEnd().Split('\n'));
        Assert.Contains(message, line);
    }

    [Fact]
    public void A_missing_file_of_texts_or_model_is_a_bad_input()
    {
        var (code, _, error) = Embed("--file", Path.Combine(_dir, "none.txt"));
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains("none.txt", error);
        (code, _, error) = CliRun.Invoke("embed", "-m", Path.Combine(_dir, "none.gguf"), "--text", "a");
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains("Model file not found", error);
    }

    [Fact]
    public void Cosine_similarity_is_llama_cpps()
    {
        Assert.Equal(1f, EmbedCommand.CosineSimilarity([0, 0], [0, 0]));
        Assert.Equal(0f, EmbedCommand.CosineSimilarity([0, 0], [1, 0]));
        Assert.Equal(-1f, EmbedCommand.CosineSimilarity([2, 0], [-3, 0]));
        Assert.Equal(MathF.Sqrt(0.5f), EmbedCommand.CosineSimilarity([1, 1], [0, 4]), 6);
    }
}

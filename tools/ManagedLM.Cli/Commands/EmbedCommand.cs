using System.Collections.Immutable;
using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Text;
using System.Text.Json;
using ManagedLM.Embeddings;
using ManagedLM.Model;

namespace ManagedLM.Cli.Commands;

/// <summary>
/// `managedlm embed`, after llama.cpp's llama-embedding: the embedding of each text (<c>--text</c>, repeatable, and
/// <c>--file</c>, a text per line), one line each (<c>embedding i: v0 v1 ...</c>, every component to 6 decimals) and,
/// for two texts or more, their cosine-similarity matrix as llama-embedding prints it. <c>--json</c> prints OpenAI's
/// embeddings response instead. <c>--pooling none</c> prints a vector per token; <c>--pooling rank</c> (a reranker) scores
/// each text as a document against <c>--query</c> and prints <c>index score text</c>, the best first.
/// </summary>
internal static class EmbedCommand
{
    /// <summary>Pooling names as llama.cpp's --pooling takes them.</summary>
    public static readonly ImmutableArray<string> PoolingNames = ["none", "mean", "cls", "last", "rank"];

    public static Command Create()
    {
        var model = CliOptions.Model();
        var text = new Option<string[]>("--text", "-p")
        {
            Description = "A text to embed (repeat for several; tokenized with the model's special tokens).", AllowMultipleArgumentsPerToken = false,
        };
        var file = new Option<string?>("--file", "-f") { Description = "Embed each line of this file (UTF-8; empty lines skipped); - reads stdin." };
        var json = new Option<bool>("--json") { Description = "Print OpenAI's embeddings response (object, data[].embedding, model, usage) as JSON." };
        var pooling = PoolingOption();
        var query = new Option<string?>("--query", "-q") { Description = "With rank pooling: the query each text is scored against as a document." };
        var noNormalize = new Option<bool>("--no-normalize") { Description = "Print the vectors as pooled, without dividing by their L2 norm." };
        var threads = CliOptions.Threads();
        var batchTokens = new Option<int>("--batch-tokens", "-ub")
        {
            Description = "Most tokens evaluated in one pass (texts are packed into passes; bounds a text's length too).",
            DefaultValueFactory = _ => EmbedderOptions.DefaultBatchTokens,
        }.AtLeast(1);
        var command = new CliCommand("embed", "Print the embeddings of texts (or rerank them against a query).",
        [
            new("The embedding of a text, pooled as the file says, L2-normalized", "managedlm embed -m bge-small.gguf --text \"Hello world\""),
            new("Several texts and their cosine-similarity matrix", "managedlm embed -m bge-small.gguf --text \"a cat\" --text \"a dog\" --text \"the stock market\""),
            new("One text per line of a file, as OpenAI's JSON response", "managedlm embed -m bge-small.gguf --file texts.txt --json"),
            new("Lines from stdin, mean-pooled and not normalized, on 4 threads", "managedlm embed -m model.gguf --file - --pooling mean --no-normalize -t 4"),
            new("A vector per token", "managedlm embed -m bge-small.gguf --text \"Hello world\" --pooling none"),
            new("Rerank documents against a query (a reranker's classifier head)",
                "managedlm embed -m bge-reranker.gguf --pooling rank --query \"what is a panda?\" --text \"hi\" --text \"The giant panda is a bear.\""),
        ])
        {
            model, text, file, json, pooling, query, noNormalize, threads, batchTokens,
        };
        command.SetAction(parse =>
        {
            var texts = ReadTexts(parse.GetValue(text) ?? [], parse.GetValue(file), Console.In);
            var request = new EmbedRequest(ModelLocator.Resolve(parse.GetValue(model)), texts, parse.GetValue(json))
            {
                Pooling = parse.GetValue(pooling), Query = parse.GetValue(query), Normalize = !parse.GetValue(noNormalize),
                Threads = parse.GetValue(threads), BatchTokens = parse.GetValue(batchTokens),
            };
            Run(request, parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error);
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>--pooling: none, mean, cls, last or rank (any case); absent, the model's.</summary>
    public static Option<PoolingType?> PoolingOption()
    {
        var option = new Option<PoolingType?>("--pooling")
        {
            Description = "How tokens' vectors become a text's: none (a vector per token), mean, cls, last or rank (a reranker's score); default: the model's.",
            CustomParser = ParsePooling,
        };
        option.CompletionSources.Add([.. PoolingNames]);
        return option;
    }

    /// <summary>llama.cpp's name of a pooling type: "mean".</summary>
    public static string PoolingName(PoolingType pooling) => PoolingNames[(int)pooling];

    private static PoolingType? ParsePooling(ArgumentResult result)
    {
        string value = result.Tokens.Count == 1 ? result.Tokens[0].Value : "";
        int i = PoolingNames.IndexOf(value.ToLowerInvariant());
        if (i >= 0)
            return (PoolingType)i;
        result.AddError($"--pooling must be one of {string.Join(", ", PoolingNames)}, not \"{value}\".");
        return null;
    }

    /// <summary>What to embed and how.</summary>
    public sealed record EmbedRequest(string ModelPath, IReadOnlyList<string> Texts, bool Json)
    {
        /// <summary>Null: the model's pooling.</summary>
        public PoolingType? Pooling { get; init; }
        /// <summary>With rank pooling: the query the texts are scored against.</summary>
        public string? Query { get; init; }
        public bool Normalize { get; init; } = true;
        public int Threads { get; init; } = 1;
        public int BatchTokens { get; init; } = EmbedderOptions.DefaultBatchTokens;
    }

    /// <summary>
    /// The texts of the command line: each --text, then each non-empty line of <paramref name="file"/> ("-": of
    /// <paramref name="stdin"/>). None at all is a usage error.
    /// </summary>
    public static IReadOnlyList<string> ReadTexts(IReadOnlyList<string> texts, string? file, TextReader stdin)
    {
        var all = new List<string>(texts);
        if (file is not null)
        {
            string content = file == "-" ? stdin.ReadToEnd() : new UTF8Encoding(false, false).GetString(File.ReadAllBytes(ModelLocator.NotADirectory(file)));
            all.AddRange(content.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0));
        }
        if (all.Count == 0)
            throw new ArgumentException(file is null
                ? "Nothing to embed: give a text with --text (repeatable) or a file of lines with --file."
                : $"Nothing to embed: {(file == "-" ? "stdin" : file)} has no non-empty line.");
        return all;
    }

    /// <summary>Loads the model, embeds the texts and prints them as the request says.</summary>
    public static void Run(EmbedRequest r, TextWriter output, TextWriter? log = null)
    {
        using var model = ModelLoading.Load(r.ModelPath, log);
        using var embedder = model.CreateEmbedder(new EmbedderOptions
        {
            Pooling = r.Pooling, Normalize = r.Normalize, Threads = r.Threads, BatchTokens = r.BatchTokens,
        });
        if (embedder.Pooling == PoolingType.Rank)
        {
            if (r.Query is null)
                throw new ArgumentException("Rank pooling scores each text as a document against a query: give it with --query.");
            Rerank(embedder, r, output);
            return;
        }
        if (r.Query is not null)
            throw new ArgumentException($"--query is for rank pooling (a reranker's classifier head); this embedder pools by {PoolingName(embedder.Pooling)}.");

        var sequences = new int[r.Texts.Count][];
        for (int i = 0; i < sequences.Length; i++)
            sequences[i] = Checked(i, () => embedder.Tokenize(r.Texts[i]));
        if (embedder.Pooling == PoolingType.None)
        {
            var rows = new float[sequences.Length][,];
            for (int i = 0; i < rows.Length; i++)
                rows[i] = embedder.TokenEmbeddings(sequences[i]);
            int tokens = sequences.Sum(s => s.Length);
            if (r.Json)
                WriteJson(output, model.Name, rows.Select(Rows).ToArray(), tokens);
            else
                WriteTokens(output, model, sequences, rows);
            return;
        }
        var vectors = embedder.EmbedTokens(sequences);
        if (r.Json)
            WriteJson(output, model.Name, vectors, embedder.LastTokenCount);
        else
            WritePlain(output, r.Texts, vectors);
    }

    // Runs a step for text i, naming the text in an argument error it throws.
    private static T Checked<T>(int i, Func<T> step)
    {
        try
        {
            return step();
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"text {i}: {ExitCodes.Message(e).Replace("EmbedderOptions.BatchTokens", "--batch-tokens", StringComparison.Ordinal)}", e);
        }
    }

    private static void Rerank(Embedder embedder, EmbedRequest r, TextWriter output)
    {
        var pairs = new int[r.Texts.Count][];
        for (int i = 0; i < pairs.Length; i++)
            pairs[i] = Checked(i, () => embedder.TokenizePair(r.Query!, r.Texts[i]));
        var scores = embedder.EmbedTokens(pairs).Select(s => s[0]).ToArray();
        // Best first; equal scores in input order.
        int[] order = Enumerable.Range(0, scores.Length).OrderByDescending(i => scores[i]).ThenBy(i => i).ToArray();
        if (r.Json)
        {
            output.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["object"] = "list",
                ["model"] = embedder.Model.Name,
                ["results"] = order.Select(i => new Dictionary<string, object> { ["index"] = i, ["relevance_score"] = scores[i] }).ToArray(),
                ["usage"] = Usage(embedder.LastTokenCount),
            }));
            return;
        }
        foreach (int i in order)
            output.WriteLine($"{i} {Format(scores[i])} {r.Texts[i]}");
    }

    // One line per text, then (two texts or more) llama-embedding's cosine-similarity matrix: a header of each text's
    // first 6 characters, then per text its similarities and its first 10 characters.
    private static void WritePlain(TextWriter output, IReadOnlyList<string> texts, float[][] vectors)
    {
        for (int i = 0; i < vectors.Length; i++)
            output.WriteLine($"embedding {i}: {string.Join(' ', vectors[i].Select(Format))}");
        if (vectors.Length < 2)
            return;
        output.WriteLine();
        output.WriteLine("cosine similarity matrix:");
        output.WriteLine();
        output.WriteLine(string.Concat(texts.Select(t => $"{Clip(t, 6),6} ")).TrimEnd());
        for (int i = 0; i < vectors.Length; i++)
            output.WriteLine(string.Concat(vectors.Select(v => $"{CosineSimilarity(vectors[i], v),6:F2} ")) + Clip(texts[i], 10));
    }

    // A line per token of each text: the text, the token's position, id and piece, and its vector.
    private static void WriteTokens(TextWriter output, TransformerModel model, int[][] sequences, float[][,] rows)
    {
        for (int i = 0; i < sequences.Length; i++)
        {
            for (int t = 0; t < sequences[i].Length; t++)
            {
                int id = sequences[i][t];
                var values = Enumerable.Range(0, rows[i].GetLength(1)).Select(d => Format(rows[i][t, d]));
                output.WriteLine($"embedding {i} token {t} ({id} '{model.Tokenizer.TokenToPiece(id)}'): {string.Join(' ', values)}");
            }
        }
    }

    // OpenAI's embeddings response; each embedding a float[] (or, a vector per token, a float[][]), numbers written to round-trip.
    private static void WriteJson(TextWriter output, string model, object[] embeddings, int tokens) =>
        output.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["object"] = "list",
            ["data"] = embeddings.Select((e, i) => new Dictionary<string, object> { ["object"] = "embedding", ["index"] = i, ["embedding"] = e }).ToArray(),
            ["model"] = model,
            ["usage"] = Usage(tokens),
        }));

    private static Dictionary<string, int> Usage(int tokens) => new() { ["prompt_tokens"] = tokens, ["total_tokens"] = tokens };

    private static float[][] Rows(float[,] rows) =>
        Enumerable.Range(0, rows.GetLength(0)).Select(t => Enumerable.Range(0, rows.GetLength(1)).Select(d => rows[t, d]).ToArray()).ToArray();

    /// <summary>
    /// The cosine similarity of two vectors as llama.cpp's common_embd_similarity_cos computes it: sums in double, 1 when
    /// both are zero, 0 when one is.
    /// </summary>
    public static float CosineSimilarity(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double dot = 0, aa = 0, bb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            dot += a[i] * b[i];
            aa += a[i] * a[i];
            bb += b[i] * b[i];
        }
        if (aa == 0 || bb == 0)
            return aa == 0 && bb == 0 ? 1f : 0f;
        return (float)(dot / (Math.Sqrt(aa) * Math.Sqrt(bb)));
    }

    private static string Format(float v) => v.ToString("F6", CultureInfo.InvariantCulture);

    // The first `length` characters of a text (whole surrogate pairs), line breaks as spaces.
    private static string Clip(string text, int length)
    {
        var runes = text.EnumerateRunes().Take(length).Select(r => r.Value is '\n' or '\r' or '\t' ? " " : r.ToString());
        return string.Concat(runes);
    }
}

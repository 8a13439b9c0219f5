using System.Collections.Immutable;
using System.Diagnostics;
using System.Text.Json;
using ManagedLM.Embeddings;
using ManagedLM.Model;
using ManagedLM.Sampling;
using ManagedLM.Tokenization;

namespace ManagedLM.Cli.Commands;

/// <summary>
/// `managedlm bench --embed`: embeddings/s of batches of B texts (<c>--batch</c>, default 32) of L tokens each (<c>-p</c>,
/// default 64, special tokens included), each batch embedded in one pass (<see cref="Embedder.Embed(IReadOnlyList{string})"/>,
/// tokenization included), mean ± stddev over repetitions after a warm-up. The texts are whole words of the vocabulary
/// (<see cref="Texts"/>), so that they give exactly L tokens in any tokenizer that agrees with ours.
/// With a peer (llama.cpp's llama-embedding), each repetition of ours is followed by one of the peer's on the same file,
/// texts, threads and pooling. llama-embedding reports no time for an encoder, so the peer is timed from outside: one run
/// over the B texts and one over <see cref="PeerExtraBatches"/> + 1 batches of them, each batch one llama_encode; the
/// difference over the extra batches is its time per batch, without its load and warm-up.
/// </summary>
internal static class EmbedBench
{
    /// <summary>Texts per batch when --batch gives none.</summary>
    public const int DefaultTexts = 32;

    /// <summary>Tokens per text when -p is not given.</summary>
    public const int DefaultTokens = 64;

    /// <summary>Batches the peer's long run has beyond its short one.</summary>
    public const int PeerExtraBatches = 4;

    /// <summary>One test: B texts of L tokens on some threads; seconds per batch of each repetition, ours and the peer's.</summary>
    public sealed record EmbedResult(int Texts, int Tokens, int Threads, string Pooling, double[] Seconds)
    {
        /// <summary>The peer's seconds per batch of each repetition (run right after ours); empty without a peer.</summary>
        public double[] PeerSeconds { get; init; } = [];
        public double[] EmbeddingsPerSecond => Seconds.Select(s => Texts / s).ToArray();
        public double AvgEs => EmbeddingsPerSecond.Average();
        public double StddevEs => BenchCommand.StdDev(EmbeddingsPerSecond);
        public double[] PeerEmbeddingsPerSecond => PeerSeconds.Select(s => Texts / s).ToArray();
        public SpeedRatio Ratio => SpeedRatio.Of(EmbeddingsPerSecond, PeerEmbeddingsPerSecond);
        /// <summary>"B=32 L=64".</summary>
        public string Name => $"B={Texts} L={Tokens}";
    }

    private static readonly ImmutableArray<BenchColumn> Columns =
    [
        new("model", 32, Left: true), new("threads", 7), new("test", 12), new("pooling", 7), new("embeddings/s", 20), new("tokens/s", 10),
        new("ms/batch", 9),
    ];

    private static readonly ImmutableArray<BenchColumn> PeerColumns =
    [
        new("model", 32, Left: true), new("threads", 7), new("test", 12), new("pooling", 7), new("ours emb/s", 20), new("peer emb/s", 20),
        new("ours/peer", 12),
    ];

    /// <summary>
    /// Runs each batch size (<paramref name="texts"/>) and text length (<paramref name="tokens"/>) on each thread count,
    /// printing a row or a JSON line for each; <paramref name="progress"/> gets a line per run.
    /// </summary>
    public static IReadOnlyList<EmbedResult> Run(BenchCommand.BenchSettings s, int[] texts, int[] tokens, bool json, TextWriter output,
        TextWriter? log = null, PeerProgram? peer = null, TextWriter? progress = null)
    {
        s.CheckTests();
        if (texts.Length == 0 || texts.Any(b => b < 1))
            throw new ArgumentOutOfRangeException(nameof(texts), "--batch values (texts per batch) must be at least 1.");
        if (tokens.Length == 0 || tokens.Any(l => l < 1))
            throw new ArgumentOutOfRangeException(nameof(tokens), "-p/--n-prompt values (tokens per text) must be at least 1.");
        if (peer is not null && texts.Any(b => b > MaxPeerSequences))
            throw new ArgumentOutOfRangeException(nameof(texts), $"llama-embedding encodes at most {MaxPeerSequences} sequences at once: --batch values must be ≤ {MaxPeerSequences} with --peer.");

        using var model = s.LoadModel(log);
        var info = ModelSummary.Of(model, s.ModelPath);
        string file = Path.GetFullPath(s.ModelPath);
        string build = peer?.Version() ?? "";
        var results = new List<EmbedResult>();
        BenchTable.Run(output, json, peer is null ? Columns : PeerColumns, report =>
        {
            foreach (int t in s.Threads)
            {
                foreach (int l in tokens)
                {
                    foreach (int b in texts)
                    {
                        var r = RunTest(model, file, b, l, t, s.Repetitions, peer, progress);
                        results.Add(r);
                        report(JsonLine(info, r, peer, build), peer is not null
                            ? [info.Type, $"{t}", r.Name, r.Pooling, BenchCommand.TokensPerSecond(r.AvgEs, r.StddevEs),
                                BenchCommand.TokensPerSecond(r.PeerEmbeddingsPerSecond.Average(), BenchCommand.StdDev(r.PeerEmbeddingsPerSecond)), $"{r.Ratio}"]
                            : [info.Type, $"{t}", r.Name, r.Pooling, BenchCommand.TokensPerSecond(r.AvgEs, r.StddevEs), $"{r.AvgEs * l:F1}",
                                $"{r.Seconds.Average() * 1000:F1}"]);
                    }
                }
            }
        });
        if (peer is not null && !json && results.Count > 0)
            output.WriteLine($"peer: {peer.Path}{(build.Length > 0 ? $", build {build}" : "")}");
        return results;
    }

    /// <summary>llama.cpp's LLAMA_MAX_SEQ: the most sequences llama-embedding's batch holds.</summary>
    public const int MaxPeerSequences = 256;

    private static EmbedResult RunTest(TransformerModel model, string file, int count, int length, int threads, int repetitions, PeerProgram? peer,
        TextWriter? progress)
    {
        using var embedder = model.CreateEmbedder(new EmbedderOptions { Threads = threads, BatchTokens = checked(count * length) });
        if (embedder.Pooling == PoolingType.None)
            throw new ArgumentException("bench --embed measures pooled embeddings, and this model's pooling is none.");
        if (length > embedder.MaxTokens)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"-p/--n-prompt {length}: this model embeds at most {embedder.MaxTokens} tokens per text.");
        string[] batch = Texts(model.Tokenizer, count, length);
        string pooling = EmbedCommand.PoolingName(embedder.Pooling);
        string test = $"B={count} L={length} -t {threads}";

        string? small = null, big = null;
        try
        {
            if (peer is not null)
            {
                small = WriteLines(batch, 1);
                big = WriteLines(batch, PeerExtraBatches + 1);
            }
            var seconds = new double[repetitions];
            var peerSeconds = new double[peer is null ? 0 : repetitions];
            embedder.Embed(batch); // warm-up
            for (int rep = 0; rep < repetitions; rep++)
            {
                // After the peer's processes, a warm-up of ours, as the peer warms up before it encodes.
                if (peer is not null && rep > 0)
                    embedder.Embed(batch);
                var clock = Stopwatch.StartNew();
                embedder.Embed(batch);
                seconds[rep] = clock.Elapsed.TotalSeconds;
                progress?.WriteLine($"managedlm {test}: run {rep + 1}/{repetitions}: {count / seconds[rep]:F2} embeddings/s");
                if (peer is null)
                    continue;
                double once = peer.RunLlamaEmbedding(file, small!, count, length, threads, pooling, 1);
                double many = peer.RunLlamaEmbedding(file, big!, count, length, threads, pooling, PeerExtraBatches + 1);
                peerSeconds[rep] = (many - once) / PeerExtraBatches;
                if (!(peerSeconds[rep] > 0))
                    throw new CommandFailedException(
                        $"{peer.Name} took {many:F3} s for {PeerExtraBatches + 1} batches and {once:F3} s for one: the machine is too busy to time it.");
                progress?.WriteLine($"{peer.Name} {test}: run {rep + 1}/{repetitions}: {count / peerSeconds[rep]:F2} embeddings/s " +
                    $"({once:F3} s for 1 batch, {many:F3} s for {PeerExtraBatches + 1})");
            }
            return new EmbedResult(count, length, threads, pooling, seconds) { PeerSeconds = peerSeconds };
        }
        finally
        {
            foreach (string? path in new[] { small, big })
            {
                if (path is not null)
                    File.Delete(path);
            }
        }
    }

    // A temporary file of the texts, one per line, `times` over.
    private static string WriteLines(string[] texts, int times)
    {
        string path = Path.Combine(Path.GetTempPath(), $"managedlm-embed-{Guid.NewGuid():N}.txt");
        File.WriteAllLines(path, Enumerable.Repeat(texts, times).SelectMany(t => t));
        return path;
    }

    /// <summary>
    /// <paramref name="count"/> texts that each encode to exactly <paramref name="tokens"/> tokens, special tokens
    /// included: words of at least three lowercase ASCII letters that are tokens of the vocabulary on their own, at the
    /// start of a text and after a space, drawn at random with a fixed seed and joined by spaces. The same arguments give
    /// the same texts.
    /// </summary>
    /// <exception cref="ArgumentException">The vocabulary has no such words, or <paramref name="tokens"/> leaves no room for one after the special tokens.</exception>
    public static string[] Texts(Tokenizer tokenizer, int count, int tokens)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var words = Words(tokenizer);
        if (words.Count == 0)
            throw new ArgumentException("The vocabulary has no whole lowercase words to build texts of a known length from.");
        int special = tokenizer.Encode(words[0]).Length - 1;
        int n = tokens - special;
        if (n < 1)
            throw new ArgumentOutOfRangeException(nameof(tokens), tokens, $"A text of {tokens} tokens leaves no room for a word after the model's {special} special tokens.");
        var texts = new string[count];
        var rng = new Xoshiro256(0x656d626564); // "embed"
        var picked = new string[n];
        for (int i = 0; i < count; i++)
        {
            for (int attempt = 0; ; attempt++)
            {
                for (int j = 0; j < n; j++)
                    picked[j] = words[(int)(rng.NextUInt64() % (ulong)words.Count)];
                string text = string.Join(' ', picked);
                // Words are whole tokens alone; a merge across the space could still join two of them, which a new draw avoids.
                if (tokenizer.Encode(text).Length == tokens)
                {
                    texts[i] = text;
                    break;
                }
                if (attempt == 100)
                    throw new InvalidOperationException($"No text of {n} vocabulary words encodes to exactly {tokens} tokens in 100 draws.");
            }
        }
        return texts;
    }

    // Up to 2000 words, in vocabulary order, that encode to one token alone and to two when repeated after a space.
    private static List<string> Words(Tokenizer tokenizer)
    {
        var words = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int id = 0; id < tokenizer.VocabSize && words.Count < 2000; id++)
        {
            if (tokenizer.GetTokenType(id) != TokenType.Normal)
                continue;
            string word = tokenizer.TokenText(id).TrimStart('▁', 'Ġ');
            if (word.Length < 3 || !word.All(c => c is >= 'a' and <= 'z') || !seen.Add(word))
                continue;
            if (tokenizer.Encode(word, addSpecialTokens: false).Length == 1 && tokenizer.Encode(word + " " + word, addSpecialTokens: false).Length == 2)
                words.Add(word);
        }
        return words;
    }

    private static string JsonLine(ModelSummary info, EmbedResult r, PeerProgram? peer, string build)
    {
        var o = BenchCommand.JsonHeader(info, "embed");
        o["n_threads"] = r.Threads;
        o["n_texts"] = r.Texts;
        o["n_tokens"] = r.Tokens;
        o["pooling"] = r.Pooling;
        o["avg_es"] = Math.Round(r.AvgEs, 6);
        o["stddev_es"] = Math.Round(r.StddevEs, 6);
        o["avg_ts"] = Math.Round(r.AvgEs * r.Tokens, 6);
        o["samples_ns"] = r.Seconds.Select(s => (long)(s * 1e9)).ToArray();
        o["samples_es"] = r.EmbeddingsPerSecond.Select(v => Math.Round(v, 6)).ToArray();
        if (peer is not null)
        {
            var es = r.PeerEmbeddingsPerSecond;
            o["peer"] = peer.Path;
            o["peer_build"] = build;
            o["peer_avg_es"] = Math.Round(es.Average(), 6);
            o["peer_stddev_es"] = Math.Round(BenchCommand.StdDev(es), 6);
            o["peer_samples_es"] = es.Select(v => Math.Round(v, 6)).ToArray();
            o["ratio"] = Math.Round(r.Ratio.Value, 4);
            o["ratio_stddev"] = Math.Round(r.Ratio.Stddev, 4);
        }
        return JsonSerializer.Serialize(o);
    }
}

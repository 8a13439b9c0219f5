using System.Text.Json;
using System.Text.RegularExpressions;
using ManagedLM.Cli;
using ManagedLM.Cli.Commands;
using ManagedLM.Tests.Embeddings;

namespace ManagedLM.Tests.Cli;

/// <summary>`managedlm bench --embed`: its texts of an exact token count, its table and JSON lines, and its peer against a fake llama-embedding.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public class EmbedBenchTests
{
    private static readonly string Model = TestData.Model(BertFixture.File);

    // bench, without the line the model's load logs (the memory of the weights' copies).
    private static (int Code, string Output, string Error) Bench(params string[] args)
    {
        var (code, output, error) = CliRun.Invoke(["bench", .. args]);
        return (code, output, string.Join('\n', error.Split('\n').Where(l => !l.StartsWith("repacked ", StringComparison.Ordinal))));
    }

    [Theory]
    [InlineData(BertFixture.File, 2)]
    [InlineData("vocab/ggml-vocab-llama-spm.gguf.gz", 1)]
    [InlineData("vocab/ggml-vocab-gpt-2.gguf.gz", 0)]
    [InlineData("vocab/ggml-vocab-qwen2.gguf.gz", 0)]
    [InlineData("stories260K.gguf", 1)]
    public void Texts_encode_to_exactly_the_tokens_asked_for(string file, int special)
    {
        var tokenizer = TokenizeCommand.LoadTokenizer(TestData.Model(file));
        foreach (int tokens in new[] { special + 1, 16, 64, 500 })
        {
            string[] texts = EmbedBench.Texts(tokenizer, 6, tokens);
            Assert.Equal(6, texts.Length);
            Assert.All(texts, t => Assert.Equal(tokens, tokenizer.Encode(t).Length));
            Assert.All(texts, t => Assert.Matches("^[a-z]{3,}( [a-z]{3,})*$", t));
            Assert.Equal(tokens - special, texts[0].Split(' ').Length);
            Assert.Equal(texts, EmbedBench.Texts(tokenizer, 6, tokens));
            if (tokens > special + 1)
                Assert.Equal(6, texts.Distinct().Count());
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => EmbedBench.Texts(tokenizer, 1, special));
    }

    [Fact]
    public void The_table_has_a_row_per_thread_count_length_and_batch()
    {
        var (code, output, error) = Bench("-m", Model, "--embed", "-t", "1,2", "-r", "1", "-B", "3", "-p", "8,12");
        Assert.True(code == ExitCodes.Ok, error);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["model", "threads", "test", "pooling", "embeddings/s", "tokens/s", "ms/batch"], lines[0].Split('|').Select(c => c.Trim()).Where(c => c.Length > 0));
        var rows = lines[2..6].Select(l => l.Split('|').Select(c => c.Trim()).ToArray()).ToArray();
        Assert.Equal([("1", "B=3 L=8"), ("1", "B=3 L=12"), ("2", "B=3 L=8"), ("2", "B=3 L=12")], rows.Select(r => (r[2], r[3])));
        Assert.All(rows, r => Assert.Equal("mean", r[4]));
        Assert.All(rows, r => Assert.Matches(@"^\d+\.\d\d ± +\d+\.\d\d$", r[5]));
        Assert.Equal(ManagedLM.Kernels.CpuFeatures.Description, lines[6]);
        Assert.Equal(7, lines.Length);
    }

    [Fact]
    public void Json_lines_carry_embeddings_per_second_and_the_defaults_are_32_texts_of_64_tokens()
    {
        var (code, output, error) = Bench("-m", Model, "--embed", "-t", "1", "-r", "2", "--json");
        Assert.True(code == ExitCodes.Ok, error);
        var e = JsonDocument.Parse(Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries))).RootElement;
        Assert.Equal(("embed", 1, 32, 64, "mean"), (e.GetProperty("mode").GetString(), e.GetProperty("n_threads").GetInt32(), e.GetProperty("n_texts").GetInt32(),
            e.GetProperty("n_tokens").GetInt32(), e.GetProperty("pooling").GetString()));
        double avg = e.GetProperty("avg_es").GetDouble();
        Assert.True(avg > 0);
        Assert.Equal(2, e.GetProperty("samples_es").GetArrayLength());
        Assert.Equal(avg, e.GetProperty("samples_es").EnumerateArray().Average(v => v.GetDouble()), 1e-3 * avg);
        Assert.Equal(avg * 64, e.GetProperty("avg_ts").GetDouble(), 1e-3 * avg * 64);
        Assert.False(e.TryGetProperty("peer", out _));
    }

    [Theory]
    [InlineData("--parallel", "2")]
    [InlineData("-n", "16")]
    [InlineData("-d", "64")]
    [InlineData("--engine")]
    public void Embed_mode_refuses_the_options_of_other_modes(params string[] args)
    {
        var (code, output, error) = Bench(["-m", Model, "--embed", "-r", "1", .. args]);
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Equal("", output);
        Assert.Contains("--embed measures batches of --batch texts of -p tokens", error);
    }

    [Fact]
    public void A_text_longer_than_the_model_takes_is_a_usage_error()
    {
        var (code, _, error) = Bench("-m", Model, "--embed", "-r", "1", "-B", "1", "-p", "600");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("-p/--n-prompt 600: this model embeds at most 512 tokens per text", error);
    }

    // A fake llama-embedding: --version as build b9749 prints it; otherwise a batch_decode line per batch of the -f file's
    // lines (-np of them, of -b tokens, less `short` tokens), and a pause of 0.2 s per batch.
    private static FakePeer LlamaEmbedding(int @short = 0) => new("llama-embedding", [],
        "if [ \"$1\" = --version ]; then echo 'version: 9749 (d32676d77)' >&2; echo 'built with GNU 12.2.0 for Linux x86_64' >&2; exit 0; fi\n" +
        "b=$(( $(wc -l < \"$4\") / $6 )); i=0\n" +
        $"while [ $i -lt $b ]; do echo \"0.00.122.853 I batch_decode: n_tokens = $(( $8 - {@short} )), n_seq = $6\" >&2; sleep 0.2; i=$((i + 1)); done\n" +
        "echo '[[0.1,0.2]]'");

    [Fact]
    public void The_peer_runs_a_short_and_a_long_file_after_each_repetition_of_ours()
    {
        using var peer = LlamaEmbedding();
        var (code, output, error) = Bench("-m", Model, "--embed", "-t", "1", "-r", "2", "-B", "2", "-p", "8", "--peer", peer.Path, "--progress");

        Assert.True(code == ExitCodes.Ok, error);
        var calls = peer.Calls;
        Assert.Equal("--version", calls[0]);
        Assert.Equal(5, calls.Length);
        var files = calls[1..].Select(c => Regex.Match(c, $@"^-m {Regex.Escape(Model)} -f (\S+) -np 2 -b 16 -ub 16 -c 16 -t 1 --pooling mean --embd-output-format array$"))
            .Select(m => Assert.IsType<Match>(m) is { Success: true } ? m.Groups[1].Value : throw new Xunit.Sdk.XunitException("unexpected peer call")).ToArray();
        // Short, long, short, long: the same two files, deleted after the test.
        Assert.Equal([files[0], files[1], files[0], files[1]], files);
        Assert.NotEqual(files[0], files[1]);
        Assert.All(files, f => Assert.False(File.Exists(f)));

        var runs = error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, runs.Length);
        Assert.Matches(@"^managedlm B=2 L=8 -t 1: run 1/2: \d+\.\d\d embeddings/s$", runs[0]);
        Assert.Matches(@"^llama-embedding B=2 L=8 -t 1: run 1/2: \d+\.\d\d embeddings/s \(\d\.\d{3} s for 1 batch, \d\.\d{3} s for 5\)$", runs[1]);
        Assert.StartsWith("managedlm B=2 L=8 -t 1: run 2/2: ", runs[2]);

        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["model", "threads", "test", "pooling", "ours emb/s", "peer emb/s", "ours/peer"], lines[0].Split('|').Select(c => c.Trim()).Where(c => c.Length > 0));
        var row = lines[2].Split('|').Select(c => c.Trim()).ToArray();
        Assert.Equal(("1", "B=2 L=8", "mean"), (row[2], row[3], row[4]));
        Assert.Matches(@"^\d+\.\d\d ± +\d+\.\d\d$", row[7]);
        Assert.Equal($"peer: {peer.Path}, build b9749 (d32676d77)", lines[^1]);
    }

    [Fact]
    public void Json_lines_carry_the_peers_speed_and_the_ratio()
    {
        using var peer = LlamaEmbedding();
        var output = new StringWriter();
        var settings = new BenchCommand.BenchSettings(Model, [8], [0], [1], 1);
        var r = Assert.Single(EmbedBench.Run(settings, [2], [8], json: true, output, peer: new PeerProgram(peer.Path)));

        // 0.2 s per batch of two texts, with the fake's pauses: about 10 embeddings/s.
        Assert.InRange(r.PeerEmbeddingsPerSecond[0], 2, 20);
        var e = JsonDocument.Parse(output.ToString()).RootElement;
        Assert.Equal(peer.Path, e.GetProperty("peer").GetString());
        Assert.Equal("b9749 (d32676d77)", e.GetProperty("peer_build").GetString());
        Assert.Equal(r.PeerEmbeddingsPerSecond[0], e.GetProperty("peer_avg_es").GetDouble(), 1e-3);
        Assert.Equal(e.GetProperty("avg_es").GetDouble() / e.GetProperty("peer_avg_es").GetDouble(), e.GetProperty("ratio").GetDouble(), 1e-3);
    }

    [Fact]
    public void A_peer_whose_batches_hold_other_token_counts_fails_naming_them()
    {
        using var peer = LlamaEmbedding(@short: 1);
        var (code, _, error) = Bench("-m", Model, "--embed", "-t", "1", "-r", "1", "-B", "2", "-p", "8", "--peer", peer.Path);
        Assert.Equal(ExitCodes.Failure, code);
        Assert.Contains("encoded a batch of 15 tokens in 2 sequences, not 16 in 2: its tokenizer does not give each text 8 tokens.", error);
    }
}

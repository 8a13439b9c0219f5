using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using ManagedLM.Chat;
using ManagedLM.Generation;
using ManagedLM.Model;
using ManagedLM.Sampling;
using Microsoft.Extensions.AI;

namespace ManagedLM.Tests.Samples;

/// <summary>
/// Runs the README's samples (samples/, built with the tests) as a user would, on stories260K, and checks what they print
/// against the same calls made here.
/// </summary>
public sealed class SampleRunTests : IDisposable
{
    private static readonly GenerationOptions Greedy32 = new() { MaxTokens = 32, Sampling = SamplingOptions.Greedy };

    private readonly string _dir = Directory.CreateTempSubdirectory("managedlm-samples-").FullName;
    private readonly TransformerModel _model = TransformerModel.Load(TestData.Model("stories260K.gguf"));

    public void Dispose()
    {
        _model.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void Quick_start_prints_the_seeded_story_the_greedy_stream_and_its_result()
    {
        string output = Run("ManagedLM.Samples.QuickStart", TestData.Model("stories260K.gguf"));
        Assert.Equal("""
            , there was a boy named Tim. Tim loved to play outside in the sun. One day, he saw a big horse on the ground. It was a piece of flowers. The flower was n
            . He liked to play with his toys. He liked to play with his toys. He liked to play with his toy
            StopReason=MaxTokens, 32 tokens (prompt 7, reused 1), # tokens/s: ". He liked to play with his toys. He liked to play with his …"

            """, Regex.Replace(output, @"[\d.]+ tokens/s", "# tokens/s"));
    }

    [Fact]
    public void Many_requests_give_every_prompt_the_text_it_gets_alone_in_each_of_the_four_ways()
    {
        var o = JsonDocument.Parse(Run("ManagedLM.Samples", "many-requests", TestData.Model("stories260K.gguf"))).RootElement;
        string[] prompts = Strings(o.GetProperty("prompts"));
        Assert.Equal(4, prompts.Length);
        string[] alone = prompts.Select(Alone).ToArray();
        Assert.Equal(alone, Strings(o.GetProperty("task_run")));
        Assert.Equal(alone, Strings(o.GetProperty("batch_generate")));
        Assert.Equal(alone, Strings(o.GetProperty("thread_local")));
        Assert.Equal(alone[0], o.GetProperty("pool").GetString());
    }

    [Fact]
    public void Batch_engine_requests_give_what_each_gives_alone_and_the_metrics_count_them()
    {
        var (printed, o) = SplitJson(Run("ManagedLM.Samples", "batch-engine", TestData.Model("stories260K.gguf")));
        Assert.Equal(Alone("Tom had a ball"), printed);
        Assert.Equal(Alone("Once upon a time"), o.GetProperty("generate").GetString());
        Assert.Equal(Alone("The sun was hot"), o.GetProperty("submitted").GetString());
        Assert.Equal(Alone("Lily saw a cat"), o.GetProperty("try_submit").GetString());
        Assert.Matches(@"^Active=0, Queued=0; requests: 4 admitted, 4 completed, 0 cancelled, 0 rejected; \d+ steps \(mean batch [\d.]+\); prompt \d+ tokens \(shared \d+\), generated 128 tokens, [\d.]+ tokens/s$",
            o.GetProperty("metrics").GetString());
        Assert.StartsWith("Active=", o.GetProperty("metrics_then").GetString());
    }

    [Fact]
    public void Embeddings_prints_the_vectors_an_embedder_gives()
    {
        var o = JsonDocument.Parse(Run("ManagedLM.Samples", "embeddings", TestData.Model("stories260K.gguf"))).RootElement;
        using var embedder = ManagedLM.Embeddings.ModelEmbedders.CreateEmbedder(_model);
        float[] query = embedder.Embed("Once upon a time");
        string[] texts = ["Tom had a ball", "The sun was hot", "Lily saw a cat"];
        Assert.Equal(query, o.GetProperty("query").EnumerateArray().Select(v => v.GetSingle()).ToArray());
        var vectors = o.GetProperty("texts").EnumerateArray().Select(t => t.EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToArray();
        Assert.Equal(texts.Select(embedder.Embed).ToArray(), vectors);
        Assert.Equal(texts.Sum(t => _model.Tokenizer.Encode(t).Length), o.GetProperty("tokens").GetInt32());
        Assert.Equal(query.Zip(vectors[0], (a, b) => (double)a * b).Sum(), o.GetProperty("similarity").GetSingle(), 5);
    }

    [Fact]
    public async Task Retrieval_ranks_the_documents_as_the_embedding_generator_here_does()
    {
        string bert = TestData.Model("synthetic/synth-bert-Q8_0.gguf");
        var (printed, o) = SplitJson(Run("ManagedLM.Samples", "retrieval", bert));
        using var model = TransformerModel.Load(bert);
        using var generator = new ManagedLM.Embeddings.ModelEmbeddingGenerator(model);
        string[] documents = ["The cat sat on the warm mat.", "Stock prices fell sharply on Monday.", "A kitten chased a ball of yarn.", "The recipe needs two cups of flour."];
        var index = await generator.GenerateAsync(documents);
        var query = await generator.GenerateAsync(["Where is the cat?"]);
        var ranked = index.Select((e, i) => (Document: documents[i], Score: System.Numerics.Tensors.TensorPrimitives.CosineSimilarity(query[0].Vector.Span, e.Vector.Span)))
            .OrderByDescending(r => r.Score).ToList();
        Assert.Equal(ranked.Select(r => r.Document), Strings(o.GetProperty("documents")));
        Assert.Equal(ranked.Select(r => r.Score), o.GetProperty("scores").EnumerateArray().Select(v => v.GetSingle()));
        Assert.Equal(index.Usage!.InputTokenCount, o.GetProperty("tokens").GetInt64());
        Assert.Equal(string.Join("\n", ranked.Select(r => $"{r.Score:F3}  {r.Document}")), printed);
    }

    [Fact]
    public void Token_budget_splits_the_text_into_chunks_of_at_most_32_tokens()
    {
        var (printed, o) = SplitJson(Run("ManagedLM.Samples", "token-budget", TestData.Model("stories260K.gguf")));
        string text = string.Concat(Enumerable.Repeat("Once upon a time, there was a little girl named Lily. She loved to play outside. ", 4));
        string[] chunks = Strings(o.GetProperty("chunks")).ToArray();
        int[] counts = o.GetProperty("counts").EnumerateArray().Select(c => c.GetInt32()).ToArray();
        Assert.Equal(text, string.Concat(chunks));
        Assert.True(chunks.Length > 1);
        Assert.All(counts, c => Assert.InRange(c, 1, 32));
        Assert.Equal(chunks.Select(c => _model.Tokenizer.Encode(c, addSpecialTokens: false).Length), counts);
        int[] ids = _model.Tokenizer.Encode(text, addSpecialTokens: false);
        Assert.Equal(ids.Length, o.GetProperty("total").GetInt32());
        string tail = o.GetProperty("tail").GetString()!;
        Assert.EndsWith(tail, text, StringComparison.Ordinal);
        Assert.Equal(_model.Tokenizer.Decode(ids[^8..]).TrimStart(), tail.TrimStart());
        Assert.Equal(string.Join("\n", chunks), printed);
    }

    [Fact]
    public void Chat_saves_both_turns_as_they_were_printed()
    {
        var (streamed, o) = SplitJson(Run("ManagedLM.Samples", "chat", TestData.Model("stories260K.gguf")));
        using var restored = new ChatSession(_model, new ChatSessionOptions());
        using (var file = File.OpenRead(Path.Combine(_dir, "chat.json")))
            restored.Load(file);
        Assert.Equal("You are a concise assistant.", restored.SystemPrompt);
        Assert.Equal(
            [ManagedLM.Chat.ChatMessage.User("What is a GGUF file?"), ManagedLM.Chat.ChatMessage.Assistant(o.GetProperty("reply").GetString()!),
             ManagedLM.Chat.ChatMessage.User("And a tensor?"), ManagedLM.Chat.ChatMessage.Assistant(streamed)],
            restored.Messages);
    }

    [Fact]
    public async Task Chat_client_answers_as_a_ModelChatClient_here_does()
    {
        var (printed, o) = SplitJson(Run("ManagedLM.Samples", "chat-client", TestData.Model("stories260K.gguf")));
        IChatClient client = new ModelChatClient(_model);
        ChatResponse r = await client.GetResponseAsync("What is a GGUF file?",
            new ChatOptions { Temperature = 0.2f, TopP = 0.9f, MaxOutputTokens = 200, StopSequences = ["\n\n"], Seed = 7 });
        string streamed = string.Concat(await client.GetStreamingResponseAsync("And a tensor?", new ChatOptions { Seed = 7 }).Select(u => u.Text).ToArrayAsync());
        Assert.Equal(r.Text, o.GetProperty("text").GetString());
        Assert.Equal(r.Usage!.OutputTokenCount, o.GetProperty("output_tokens").GetInt64());
        Assert.Equal(r.FinishReason!.Value.Value, o.GetProperty("finish_reason").GetString());
        Assert.Equal($"{r.Text} ({r.Usage.OutputTokenCount} tokens, {r.FinishReason})\n{streamed}", printed);
    }

    [Fact]
    public async Task Structured_output_replies_follow_their_grammars_as_the_same_calls_here_do()
    {
        var (printed, o) = SplitJson(Run("ManagedLM.Samples", "structured-output", TestData.Model("stories260K.gguf")));
        string answer = o.GetProperty("answer").GetString()!, json = o.GetProperty("json").GetString()!;
        Assert.Matches("^(yes|no), because [a-z ]{1,40}\\.$", answer);
        const string Schema = """
            {"type": "object",
             "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer", "minimum": 0, "maximum": 120}},
             "required": ["name", "age"]}
            """;
        Assert.True(ManagedLM.Tests.Grammars.JsonSchemaTestValidator.IsValid(Schema, json), json);
        IChatClient client = new ModelChatClient(_model);
        var pet = await client.GetResponseAsync<ManagedLM.Samples.StructuredOutputSample.Pet>("Describe a pet.", new ChatOptions { Temperature = 1, Seed = 1 });
        Assert.Equal(pet.Text, o.GetProperty("pet").GetString());
        Assert.Equal($"{answer}\n{json}\n{pet.Result}", printed);
    }

    [Fact]
    public void Tools_sample_runs_the_function_the_model_called()
    {
        var (printed, o) = SplitJson(Run("ManagedLM.Samples", "tools", TestData.Model("stories260K.gguf")));
        string[] calls = Strings(o.GetProperty("calls"));
        Assert.NotEmpty(calls);
        Assert.All(calls, call => Assert.Matches("(?s)^GetWeather\\(.*, .*\\)$", call));
        Assert.Equal($"{string.Join(", ", calls)}\n{o.GetProperty("answer").GetString()}", printed);
    }

    [Fact]
    public void Long_conversations_go_on_past_the_context_as_the_same_calls_here_do()
    {
        var (printed, o) = SplitJson(Run("ManagedLM.Samples", "long-conversations", TestData.Model("stories260K.gguf")));
        using var generator = _model.CreateGenerator(new GeneratorOptions { ContextLength = 256 });
        var story = generator.Complete("Once upon a time", new GenerationOptions
        {
            MaxTokens = 1024, IgnoreEndOfGeneration = true, ContextOverflow = ContextOverflow.Shift, KeepTokens = -1,
        });
        Assert.Equal(1024, o.GetProperty("tokens").GetInt32());
        Assert.Equal(story.ContextShifts, o.GetProperty("shifts").GetInt32());
        Assert.True(story.ContextShifts >= 4);
        int kept = o.GetProperty("kept").GetInt32(), dropped = o.GetProperty("dropped").GetInt32();
        Assert.Equal(40, kept + dropped);
        Assert.True(dropped > 0);
        Assert.Equal($"1024 tokens, {story.ContextShifts} shifts\n{kept} messages kept, {dropped} dropped", printed);
    }

    [Fact]
    public void Without_a_sample_name_the_samples_say_which_there_are()
    {
        var (code, stdout, stderr) = Process("ManagedLM.Samples");
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        Assert.Equal("usage: ManagedLM.Samples (many-requests | batch-engine | chat | chat-client | structured-output | tools | long-conversations | embeddings | retrieval | token-budget) [MODEL.gguf]\n", stderr);
    }

    // The greedy 32-token continuation of a prompt on a generator of its own.
    private string Alone(string prompt)
    {
        using var generator = _model.CreateGenerator();
        return generator.Generate(prompt, Greedy32);
    }

    private static string[] Strings(JsonElement array) => array.EnumerateArray().Select(e => e.GetString()!).ToArray();

    // What a sample printed before its last line, and that line: its JSON summary.
    private static (string Printed, JsonElement Json) SplitJson(string output)
    {
        Assert.EndsWith("\n", output);
        int lastLine = output.LastIndexOf('\n', output.Length - 2);
        Assert.True(lastLine >= 0, $"Expected the printed text and a JSON line, got: {output}");
        return (output[..lastLine], JsonDocument.Parse(output[(lastLine + 1)..]).RootElement);
    }

    // Runs a sample to its end (exit code 0) and returns its stdout.
    private string Run(string sample, params string[] args)
    {
        var (code, stdout, stderr) = Process(sample, args);
        Assert.True(code == 0, $"{sample} {string.Join(' ', args)}: exit code {code}\n{stderr}");
        return stdout;
    }

    // Runs a sample's assembly (copied beside the tests) with `dotnet`, in this test's folder.
    private (int Code, string Stdout, string Stderr) Process(string sample, params string[] args)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = _dir,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, sample + ".dll"));
        foreach (string a in args)
            start.ArgumentList.Add(a);
        using var process = System.Diagnostics.Process.Start(start) ?? throw new InvalidOperationException($"Could not start {sample}.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{sample} {string.Join(' ', args)} ran longer than 2 minutes.");
        }
        return (process.ExitCode, stdout.Result.ReplaceLineEndings("\n"), stderr.Result.ReplaceLineEndings("\n"));
    }
}

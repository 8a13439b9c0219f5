using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime;
using System.Text.Json;
using ManagedLM.Chat;
using ManagedLM.Generation;
using ManagedLM.Inference;
using ManagedLM.Sampling;

namespace ManagedLM.Cli.Commands;

/// <summary>
/// `managedlm generate`: continues a prompt, streaming text as it is produced, then prints llama.cpp-style timings (load,
/// prompt eval, eval) measured warm. `--json` prints one object (ids, text, stop reason, seed, timings) instead.
/// </summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var model = CliOptions.Model();
        var prompt = new Option<string?>("--prompt", "-p") { Description = "Prompt text (encoded with the model's tokenizer; BOS added when the model asks for it)." };
        var promptIds = new Option<string?>("--prompt-ids") { Description = "Prompt as comma-separated token ids, used as given (no BOS added, no tokenizer)." };
        var flags = new SamplingFlags(128, "Most tokens to generate");
        var kvType = CliOptions.KvType();
        var threads = CliOptions.Threads();
        var ctx = CliOptions.ContextSize();
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of streaming text." };
        var chatTemplate = new Option<string?>("--chat-template-file")
        {
            Description = "Render the prompt as a user message with this Jinja chat template (and the model's BOS/EOS tokens); the text is the assistant's reply.",
        };
        var command = new CliCommand("generate", "Generate text from a prompt.",
        [
            new("Greedy continuation of a prompt, 64 tokens at most", "managedlm generate -m model.gguf -p \"Once upon a time\" -n 64 --temp 0"),
            new("Sampled, reproducibly, until a stop string", "managedlm generate -m model.gguf -p \"The capital of France is\" --temp 0.7 --top-p 0.9 --seed 42 --stop \".\""),
            new("Until end of generation or a full context, with a random seed", "managedlm generate -m model.gguf -p \"Chapter 1\" -n -1 --seed -1"),
            new("Token ids in, one JSON object out (ids, text, timings)", "managedlm generate -m model.gguf --prompt-ids 1,403,407 -n 8 --json"),
            new("Long context with an F32 KV cache on 4 threads", "managedlm generate -m model.gguf -p \"Chapter 1\" -n 512 -c 8192 --kv-type f32 -t 4"),
            new("A Q8_0 KV cache: about half the memory of F16", "managedlm generate -m model.gguf -p \"Chapter 1\" -n 512 -c 8192 --kv-type q8_0"),
            new("Past the context: shift it, keeping the prompt's first 16 tokens", "managedlm generate -m model.gguf -p \"Chapter 1\" -n 4096 -c 512 --context-shift --keep 16"),
            new("A reply to a user message, through a chat template file", "managedlm generate -m model.gguf -p \"Hello!\" --chat-template-file chatml.jinja"),
        ])
        {
            model, prompt, promptIds,
        };
        foreach (var option in flags.All)
            command.Options.Add(option);
        foreach (var option in new Option[] { threads, ctx, kvType, json, chatTemplate })
            command.Options.Add(option);
        command.SetAction(parse =>
        {
            var request = new GenerateRequest(
                ModelLocator.Resolve(parse.GetValue(model)), parse.GetValue(prompt), ParseIds(parse.GetValue(promptIds)),
                flags.MaxTokens(parse), flags.Sampling(parse), parse.GetValue(threads), parse.GetValue(ctx), parse.GetValue(json))
            {
                StopStrings = flags.StopStrings(parse),
                IgnoreEndOfGeneration = flags.IgnoresEndOfGeneration(parse),
                KvCacheType = parse.GetValue(kvType),
                Grammar = flags.Grammar(parse),
                ChatTemplatePath = parse.GetValue(chatTemplate),
                ContextOverflow = flags.Overflow(parse),
                KeepTokens = flags.KeepTokens(parse),
            };
            using var ctrlC = new CancelOnCtrlC();
            Run(request, parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, ctrlC.Token);
            return ExitCodes.Ok;
        });
        return command;
    }

    public sealed record GenerateRequest(
        string ModelPath, string? Prompt, int[]? PromptIds, int MaxTokens, SamplingOptions Sampling,
        int Threads, int? ContextLength, bool Json)
    {
        public IReadOnlyList<string> StopStrings { get; init; } = [];
        public bool IgnoreEndOfGeneration { get; init; }
        public KvCacheType KvCacheType { get; init; } = KvCacheType.F16;
        public Grammars.Grammar? Grammar { get; init; }
        /// <summary>A chat template file: the prompt is rendered as one user message with it.</summary>
        public string? ChatTemplatePath { get; init; }
        /// <summary>--context-shift: shift the context when it is full instead of stopping; --keep: what the shift keeps.</summary>
        public ContextOverflow ContextOverflow { get; init; }
        public int KeepTokens { get; init; }
    }

    /// <summary>
    /// Where the time went, as llama.cpp's timings lines: loading (the file, then a warm-up pass that compiles and
    /// touches what decoding uses), the prompt's evaluation, and decoding (<see cref="EvalRuns"/> forward passes with their
    /// sampling; printing the text excluded). <see cref="Jit"/> is the time spent compiling code that the warm-up did not
    /// reach (a longer attention span takes other vector paths), taken out of the two evaluation times.
    /// </summary>
    public sealed record Timings(TimeSpan Model, TimeSpan WarmUp, int PromptTokens, TimeSpan PromptEval, int EvalRuns, TimeSpan Eval, TimeSpan Jit)
    {
        public TimeSpan Load => Model + WarmUp;
        public double PromptTokensPerSecond => PerSecond(PromptTokens, PromptEval);
        public double EvalTokensPerSecond => PerSecond(EvalRuns, Eval);

        private static double PerSecond(int count, TimeSpan time) => count == 0 ? 0 : count / Math.Max(time.TotalSeconds, 1e-9);
    }

    // Prompt tokens the warm-up evaluates: enough for the batched prompt kernels (four rows at a time) and their tail.
    private const int WarmUpPromptTokens = 5;

    /// <summary>Generates; when <paramref name="cancellationToken"/> stops it, ends the line of text and throws <see cref="OperationCanceledException"/>.</summary>
    public static GenerationResult Run(GenerateRequest r, TextWriter output, TextWriter log, CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        using var model = ModelLoading.Load(r.ModelPath, log, warmUp: false); // WarmUp below, on the generator it times
        var modelTime = clock.Elapsed;
        CliOptions.CheckContext(r.ContextLength, model.MaxContextLength);
        var template = r.ChatTemplatePath is null ? null
            : Chat.ChatTemplate.Parse(File.ReadAllText(r.ChatTemplatePath), model.ChatTemplate.BosToken, model.ChatTemplate.EosToken);
        if (template is not null && r.PromptIds is not null)
            throw new ArgumentException("--chat-template-file renders --prompt text, not --prompt-ids.");
        int[] prompt = template is not null ? template.Tokenize(model.Tokenizer, template.Render([Chat.ChatMessage.User(r.Prompt ?? "")]))
            : r.PromptIds ?? model.Tokenizer.Encode(r.Prompt ?? "", addSpecialTokens: true);
        if (prompt.Length == 0)
            throw new ArgumentException("The prompt is empty: give --prompt text or --prompt-ids.");
        using var generator = model.CreateGenerator(new GeneratorOptions
        {
            Sampling = r.Sampling, Threads = r.Threads, ContextLength = r.ContextLength, KvCacheType = r.KvCacheType,
        });

        if (!r.Json && r.Prompt is not null && r.PromptIds is null && template is null)
        {
            output.Write(r.Prompt);
            output.Flush();
        }
        GenerationResult result;
        TimeSpan warmUp, jitStart, printing = TimeSpan.Zero, jitPrinting = TimeSpan.Zero;
        TimeSpan? jitAtFirstToken = null;
        Action<TokenOutput> onToken = token =>
        {
            jitAtFirstToken ??= JitInfo.GetCompilationTime();
            if (r.Json)
                return;
            long start = Stopwatch.GetTimestamp();
            var jit = JitInfo.GetCompilationTime();
            output.Write(token.Text);
            output.Flush();
            printing += Stopwatch.GetElapsedTime(start);
            jitPrinting += JitInfo.GetCompilationTime() - jit;
        };
        RuntimeHelpers.PrepareDelegate(onToken); // compiled now, not between the prompt and the first token
        var options = new GenerationOptions
        {
            MaxTokens = r.MaxTokens, StopStrings = r.StopStrings, IgnoreEndOfGeneration = r.IgnoreEndOfGeneration, Grammar = r.Grammar,
            ContextOverflow = r.ContextOverflow, KeepTokens = r.KeepTokens,
        };
        if (template is not null)
            options = template.ForReply(options);
        try
        {
            warmUp = WarmUp(generator, prompt, cancellationToken);
            jitStart = JitInfo.GetCompilationTime();
            result = generator.Complete(prompt, options, onToken, cancellationToken);
        }
        catch (OperationCanceledException) when (!r.Json)
        {
            output.WriteLine(); // the shell's prompt on a line of its own
            throw;
        }
        catch (ArgumentOutOfRangeException e) when (e.ParamName == nameof(GenerationOptions.KeepTokens))
        {
            throw new ArgumentException($"--keep: {ExitCodes.Message(e)}", e);
        }

        // Compilation before the first token is the prompt's; after it, the decoding's (less what printing compiled).
        var jitEnd = JitInfo.GetCompilationTime();
        var jitPrompt = (jitAtFirstToken ?? jitEnd) - jitStart;
        var jitEval = jitEnd - (jitAtFirstToken ?? jitEnd) - jitPrinting;
        // Tokens evaluated after the prompt: those still cached and those context shifts discarded.
        var timings = new Timings(modelTime, warmUp, prompt.Length, NonNegative(result.PromptTime - jitPrompt), generator.Position + result.DiscardedTokens - prompt.Length,
            NonNegative(result.DecodeTime - printing - jitEval), jitPrompt + jitEval);
        if (r.Json)
        {
            output.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["prompt_ids"] = result.PromptTokens,
                ["generated_ids"] = result.GeneratedTokens,
                ["text"] = result.Text,
                ["stop_reason"] = result.StopReason.ToString(),
                ["context_shifts"] = result.ContextShifts,
                ["seed"] = generator.Sampler.Seed,
                ["load_ms"] = Milliseconds(timings.Load),
                ["warmup_ms"] = Milliseconds(timings.WarmUp),
                ["prompt_eval_ms"] = Milliseconds(timings.PromptEval),
                ["prompt_tokens_per_s"] = Math.Round(timings.PromptTokensPerSecond, 3),
                ["eval_ms"] = Milliseconds(timings.Eval),
                ["eval_runs"] = timings.EvalRuns,
                ["decode_tokens_per_s"] = Math.Round(timings.EvalTokensPerSecond, 3),
                ["jit_ms"] = Milliseconds(timings.Jit),
            }));
        }
        else
        {
            output.WriteLine();
            WriteTimings(timings, result, log);
        }
        return result;
    }

    /// <summary>
    /// Evaluates the first tokens of the prompt and decodes two tokens, then forgets them (the sampler restarts from its
    /// seed): the first call of every kernel compiles it and the first pass reads the weights in, which would otherwise
    /// be charged to the prompt's speed. llama.cpp warms up the same way. Returns the time it took.
    /// </summary>
    private static TimeSpan WarmUp(Generator generator, int[] prompt, CancellationToken cancellationToken)
    {
        long start = Stopwatch.GetTimestamp();
        generator.Complete(prompt[..Math.Min(prompt.Length, WarmUpPromptTokens)],
            new GenerationOptions { MaxTokens = 2, IgnoreEndOfGeneration = true }, null, cancellationToken);
        generator.Reset();
        return Stopwatch.GetElapsedTime(start);
    }

    /// <summary>The timings as llama.cpp prints them, then why generation stopped.</summary>
    public static void WriteTimings(Timings t, GenerationResult result, TextWriter log)
    {
        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"load time        = {Milliseconds(t.Load),10:F2} ms (model {Milliseconds(t.Model):F2} ms, warm-up {Milliseconds(t.WarmUp):F2} ms)"));
        log.WriteLine(Rate("prompt eval time", t.PromptEval, t.PromptTokens, "tokens", t.PromptTokensPerSecond));
        log.WriteLine(Rate("eval time", t.Eval, t.EvalRuns, "runs  ", t.EvalTokensPerSecond));
        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"jit time         = {Milliseconds(t.Jit),10:F2} ms (compiling code the warm-up did not reach; not in the times above)"));
        string shifts = result.ContextShifts > 0 ? $" ({result.ContextShifts} context shifts discarded {result.DiscardedTokens} tokens)" : "";
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"stop: {result.StopReason} after {result.GeneratedTokens.Length} tokens{shifts}"));
    }

    private static string Rate(string name, TimeSpan time, int count, string unit, double perSecond) => string.Create(CultureInfo.InvariantCulture,
        $"{name,-16} = {Milliseconds(time),10:F2} ms / {count,5} {unit} ({(count == 0 ? 0 : Milliseconds(time) / count),8:F2} ms per token, {perSecond,8:F2} tokens per second)");

    private static TimeSpan NonNegative(TimeSpan t) => t < TimeSpan.Zero ? TimeSpan.Zero : t;

    private static double Milliseconds(TimeSpan t) => Math.Round(t.TotalMilliseconds, 3);

    private static int[]? ParseIds(string? ids)
    {
        if (ids is null)
            return null;
        return ids.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v
                : throw new ArgumentException($"--prompt-ids: \"{s}\" is not a token id."))
            .ToArray();
    }
}

using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using ManagedLM.Generation;
using ManagedLM.Sampling;

namespace ManagedLM.Cli.Commands;

/// <summary>
/// `managedlm generate`: continues a prompt, streaming text as it is produced, then prints speed.
/// `--json` prints one object (prompt_ids, generated_ids, text, prompt_tokens_per_s, decode_tokens_per_s) instead.
/// </summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var model = CliOptions.Model();
        var prompt = new Option<string?>("--prompt", "-p") { Description = "Prompt text (encoded with the model's tokenizer; BOS added when the model asks for it)." };
        var promptIds = new Option<string?>("--prompt-ids") { Description = "Prompt as comma-separated token ids, used as given (no BOS added, no tokenizer)." };
        var count = new Option<int>("--n-predict", "-n") { Description = "Most tokens to generate.", DefaultValueFactory = _ => 128 };
        var temp = new Option<float>("--temp") { Description = "Temperature; 0 is greedy.", DefaultValueFactory = _ => SamplingOptions.Default.Temperature };
        var topK = new Option<int>("--top-k") { Description = "Top-k (0 disables).", DefaultValueFactory = _ => SamplingOptions.Default.TopK };
        var topP = new Option<float>("--top-p") { Description = "Top-p (1 disables).", DefaultValueFactory = _ => SamplingOptions.Default.TopP };
        var minP = new Option<float>("--min-p") { Description = "Min-p (0 disables).", DefaultValueFactory = _ => SamplingOptions.Default.MinP };
        var typical = new Option<float>("--typical") { Description = "Locally typical sampling p (1 disables).", DefaultValueFactory = _ => SamplingOptions.Default.TypicalP };
        var repeatPenalty = new Option<float>("--repeat-penalty") { Description = "Penalty for repeated tokens (1 disables).", DefaultValueFactory = _ => SamplingOptions.Default.RepeatPenalty };
        var repeatLastN = new Option<int>("--repeat-last-n") { Description = "Tokens the penalties look back over (0 disables, -1 all).", DefaultValueFactory = _ => SamplingOptions.Default.RepeatLastN };
        var presence = new Option<float>("--presence-penalty") { Description = "Presence penalty (0 disables)." };
        var frequency = new Option<float>("--frequency-penalty") { Description = "Frequency penalty (0 disables)." };
        var stop = new Option<string[]>("--stop") { Description = "Stop string (repeatable); not printed.", AllowMultipleArgumentsPerToken = false };
        var ignoreEos = new Option<bool>("--ignore-eos") { Description = "Keep generating past end-of-generation tokens." };
        var kvType = new Option<KvCacheType>("--kv-type") { Description = "KV cache storage: F16 (default) or F32.", DefaultValueFactory = _ => KvCacheType.F16 };
        var seed = new Option<ulong?>("--seed", "-s") { Description = "Random seed (default: random)." };
        var threads = new Option<int>("--threads", "-t") { Description = "Threads per matmul.", DefaultValueFactory = _ => Environment.ProcessorCount };
        var ctx = new Option<int?>("--ctx-size", "-c") { Description = "Context length (default: min(model's, 4096))." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of streaming text." };
        var command = new CliCommand("generate", "Generate text from a prompt.",
        [
            new("Greedy continuation of a prompt, 64 tokens at most", "managedlm generate -m model.gguf -p \"Once upon a time\" -n 64 --temp 0"),
            new("Sampled, reproducibly, until a stop string", "managedlm generate -m model.gguf -p \"The capital of France is\" --temp 0.7 --top-p 0.9 --seed 42 --stop \".\""),
            new("Token ids in, one JSON object out (ids, text, speed)", "managedlm generate -m model.gguf --prompt-ids 1,403,407 -n 8 --json"),
            new("Long context with an F32 KV cache on 4 threads", "managedlm generate -m model.gguf -p \"Chapter 1\" -n 512 -c 8192 --kv-type F32 -t 4"),
        ])
        {
            model, prompt, promptIds, count, temp, topK, topP, minP, typical, repeatPenalty, repeatLastN, presence, frequency,
            stop, ignoreEos, seed, threads, ctx, kvType, json,
        };
        command.SetAction(parse =>
        {
            var request = new GenerateRequest(
                ModelLocator.Resolve(parse.GetValue(model)), parse.GetValue(prompt), ParseIds(parse.GetValue(promptIds)),
                parse.GetValue(count),
                new SamplingOptions
                {
                    Temperature = parse.GetValue(temp), TopK = parse.GetValue(topK), TopP = parse.GetValue(topP),
                    MinP = parse.GetValue(minP), TypicalP = parse.GetValue(typical), RepeatPenalty = parse.GetValue(repeatPenalty),
                    RepeatLastN = parse.GetValue(repeatLastN), PresencePenalty = parse.GetValue(presence),
                    FrequencyPenalty = parse.GetValue(frequency), Seed = parse.GetValue(seed),
                },
                parse.GetValue(threads), parse.GetValue(ctx), parse.GetValue(json))
            {
                StopStrings = parse.GetValue(stop) ?? [],
                IgnoreEndOfGeneration = parse.GetValue(ignoreEos),
                KvCacheType = parse.GetValue(kvType),
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
    }

    /// <summary>Generates; when <paramref name="cancellationToken"/> stops it, ends the line of text and throws <see cref="OperationCanceledException"/>.</summary>
    public static GenerationResult Run(GenerateRequest r, TextWriter output, TextWriter log, CancellationToken cancellationToken = default)
    {
        using var model = ModelLoading.Load(r.ModelPath, log);
        var tokenizer = model.Tokenizer;
        int[] prompt = r.PromptIds ?? tokenizer.Encode(r.Prompt ?? "", addSpecialTokens: true);
        if (prompt.Length == 0)
            throw new ArgumentException("The prompt is empty: give --prompt text or --prompt-ids.");
        using var generator = model.CreateGenerator(new GeneratorOptions
        {
            Sampling = r.Sampling, Threads = r.Threads, ContextLength = r.ContextLength, KvCacheType = r.KvCacheType,
        });

        if (!r.Json && r.Prompt is not null && r.PromptIds is null)
        {
            output.Write(r.Prompt);
            output.Flush();
        }
        GenerationResult result;
        try
        {
            result = generator.Complete(prompt, new GenerationOptions
            {
                MaxTokens = r.MaxTokens, StopStrings = r.StopStrings, IgnoreEndOfGeneration = r.IgnoreEndOfGeneration,
            }, token =>
            {
                if (!r.Json)
                {
                    output.Write(token.Text);
                    output.Flush();
                }
            }, cancellationToken);
        }
        catch (OperationCanceledException) when (!r.Json)
        {
            output.WriteLine(); // the shell's prompt on a line of its own
            throw;
        }

        if (r.Json)
        {
            output.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["prompt_ids"] = result.PromptTokens,
                ["generated_ids"] = result.GeneratedTokens,
                ["text"] = result.Text,
                ["stop_reason"] = result.StopReason.ToString(),
                ["seed"] = generator.Sampler.Seed,
                ["prompt_tokens_per_s"] = Math.Round(result.PromptTokensPerSecond, 3),
                ["decode_tokens_per_s"] = Math.Round(result.DecodeTokensPerSecond, 3),
            }));
        }
        else
        {
            output.WriteLine();
            log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"prompt: {result.PromptTokens.Length} tokens, {result.PromptTokensPerSecond:F1} tokens/s | generated: {result.GeneratedTokens.Length} tokens, {result.DecodeTokensPerSecond:F1} tokens/s | stop: {result.StopReason}"));
        }
        return result;
    }

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

using System.CommandLine;
using ManagedLM.Gguf;
using ManagedLM.Quantization;
using ManagedLM.Synthesis;

namespace ManagedLM.Cli.Commands;

/// <summary>
/// `managedlm synth`: a GGUF model with random weights at real shapes (a --preset, and/or dimensions by flags; without a
/// preset, --arch starts from that family's tiny fixture shape),
/// deterministic by --seed, quantized with llama.cpp's mix for --type (<see cref="ModelSynthesizer"/>).
/// </summary>
internal static class SynthCommand
{
    public static Command Create()
    {
        var preset = new Option<string?>("--preset") { Description = $"Model shape: {string.Join(", ", SynthesisPreset.All.Select(p => p.Name))}." }
            .Checked(v => SynthesisPreset.Get(v!));
        var arch = new Option<string?>("--arch") { Description = $"Architecture: {string.Join(", ", SynthesisSpec.Architectures)}." }
            .Checked(v => SynthesisSpec.TinyOf(v!).Validate());
        var embd = new Option<int?>("--embd") { Description = "Embedding length (n_embd)." }.AtLeast(1);
        var ff = new Option<int?>("--ff") { Description = "Feed-forward length (n_ff)." }.AtLeast(1);
        var layers = new Option<int?>("--layers") { Description = "Blocks (n_layer)." }.AtLeast(1);
        var heads = new Option<int?>("--heads") { Description = "Attention heads." }.AtLeast(1);
        var kvHeads = new Option<int?>("--kv-heads") { Description = "Key/value heads." }.AtLeast(1);
        var headDim = new Option<int?>("--head-dim") { Description = "Head size (default: embd / heads)." }.AtLeast(1);
        var vocab = new Option<int?>("--vocab") { Description = "Vocabulary size (must equal the tokenizer's)." }.AtLeast(1);
        var ctx = new Option<int?>("--ctx") { Description = "Context length." }.AtLeast(1);
        var ropeBase = new Option<float?>("--rope-base") { Description = "RoPE frequency base." }.Positive();
        var eps = new Option<float?>("--eps") { Description = "RMSNorm epsilon." }.Positive();
        var tied = new Option<bool?>("--tied") { Description = "Tie the output matrix to token_embd (--tied false unties a tied preset)." };
        var window = new Option<int?>("--window") { Description = "Sliding window of the sliding layers (gemma2, gemma3; 0: none)." }.AtLeast(0);
        var experts = new Option<int?>("--experts") { Description = "Experts per block (qwen3moe)." }.AtLeast(2);
        var expertsUsed = new Option<int?>("--experts-used") { Description = "Experts each token is routed to (qwen3moe)." }.AtLeast(1);
        var expertFf = new Option<int?>("--expert-ff") { Description = "Hidden width of one expert (qwen3moe)." }.AtLeast(1);
        var padVocab = new Option<bool>("--pad-vocab")
        {
            Description = "Fill a vocabulary smaller than --vocab with <unusedN> tokens (the presets that need it always do).",
        };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the weights.", DefaultValueFactory = _ => 1 };
        var type = ConversionCli.FileType();
        type.DefaultValueFactory = _ => LlamaFileTypes.Name(LlamaFileType.Q4_K_M);
        var tokenEmbd = ConversionCli.TokenEmbeddingType();
        var outputType = ConversionCli.OutputTensorType();
        var vocabFrom = new Option<string?>("--vocab-from") { Description = "GGUF (.gguf or .gguf.gz) whose tokenizer.* keys to copy (default: the preset's, or a shared vocabulary of --vocab tokens)." };
        var name = new Option<string?>("--name") { Description = "general.name (default: the preset's name, or synth-<arch>)." };
        var output = new Option<string?>("--output", "-o") { Description = "File to write (default: checkpoints/<preset>-<type>.gguf)." };
        var threads = ConversionCli.Threads();
        var command = new CliCommand("synth", "Write a GGUF model with random weights at real shapes, deterministic by seed.",
        [
            new("TinyLlama's shapes at Q4_K_M, to checkpoints/tinyllama-1.1b-Q4_K_M.gguf", "managedlm synth --preset tinyllama-1.1b"),
            new("A one-block stories15m at Q8_0, to a file of your choice", "managedlm synth --preset stories15m --layers 1 --type Q8_0 -o stories15m-1layer-Q8_0.gguf"),
            new("A tiny Qwen3 given by its dimensions (the 512-token vocabulary of stories260K)",
                "managedlm synth --arch qwen3 --embd 256 --ff 256 --layers 1 --heads 4 --kv-heads 1 --head-dim 128 --vocab 512 --type Q4_K_M --seed 9 -o tiny-qwen3.gguf"),
            new("Gemma 2 2B's shapes (Llama 2's vocabulary padded to 256000 tokens) to a folder of your choice",
                "managedlm synth --preset gemma-2-2b --type Q4_K_M -o /data/gemma-2-2b-Q4_K_M.gguf"),
            new("A smaller mixture of experts than qwen3-moe-small", "managedlm synth --preset qwen3-moe-small --layers 4 --experts 16 --experts-used 4"),
        ])
        {
            preset, arch, embd, ff, layers, heads, kvHeads, headDim, vocab, ctx, ropeBase, eps, tied, window, experts, expertsUsed, expertFf,
            seed, type, tokenEmbd, outputType, vocabFrom, padVocab, name, output, threads,
        };
        command.SetAction(parse => ConversionCli.Execute(parse, progress =>
        {
            var basePreset = parse.GetValue(preset) is { } p ? SynthesisPreset.Get(p) : null;
            var spec = new SynthesisOverrides
            {
                Architecture = parse.GetValue(arch), EmbeddingLength = parse.GetValue(embd), FeedForwardLength = parse.GetValue(ff),
                BlockCount = parse.GetValue(layers), HeadCount = parse.GetValue(heads), HeadCountKv = parse.GetValue(kvHeads),
                HeadDim = parse.GetValue(headDim), VocabSize = parse.GetValue(vocab), ContextLength = parse.GetValue(ctx),
                RopeFreqBase = parse.GetValue(ropeBase), RmsNormEps = parse.GetValue(eps), TiedEmbeddings = parse.GetValue(tied),
                SlidingWindow = parse.GetValue(window), ExpertCount = parse.GetValue(experts), ExpertUsedCount = parse.GetValue(expertsUsed),
                ExpertFeedForwardLength = parse.GetValue(expertFf),
            }.ApplyTo(basePreset?.Spec ?? SynthesisSpec.TinyOf(parse.GetValue(arch) ?? "llama"));
            var options = ConversionCli.Options(parse.GetValue(type)!, parse.GetValue(tokenEmbd), parse.GetValue(outputType), parse.GetValue(threads));
            string modelName = parse.GetValue(name) ?? basePreset?.Name ?? $"synth-{spec.Architecture}";
            string path = parse.GetValue(output)
                ?? Path.Combine(ModelLocator.CheckpointsDirectory(), $"{basePreset?.Name ?? modelName}-{LlamaFileTypes.Name(options.FileType)}.gguf");

            bool presetVocab = basePreset is not null && basePreset.Spec.VocabSize == spec.VocabSize;
            string vocabPath = parse.GetValue(vocabFrom) ?? ModelLocator.SharedModelsFile(
                (presetVocab ? basePreset!.VocabFile : null)
                ?? SynthesisPreset.VocabFileFor(spec.VocabSize)
                ?? throw new ArgumentException($"No shared vocabulary has {spec.VocabSize} tokens; give one with --vocab-from (and --pad-vocab if it has fewer)."));
            List<KeyValuePair<string, GgufValue>> tokenizer;
            using (var vocabFile = GgufFile.OpenOrUnzip(vocabPath))
                tokenizer = ModelSynthesizer.TokenizerMetadata(vocabFile.Metadata);
            if (parse.GetValue(padVocab) || (presetVocab && parse.GetValue(vocabFrom) is null && basePreset!.PadVocabulary))
                tokenizer = SyntheticVocabulary.Pad(tokenizer, spec.VocabSize);

            return (path, options.FileType, ModelSynthesizer.WriteFile(spec, modelName, parse.GetValue(seed), options, tokenizer, path, progress));
        }));
        return command;
    }
}

using System.IO.Compression;
using ManagedLM.Gguf;

namespace ManagedLM.Fuzz;

/// <summary>A seed file: a name for the reports, its bytes, and its layout taken apart once.</summary>
internal sealed record FuzzSeed(string Name, byte[] Bytes, GgufImage Image);

/// <summary>
/// The seed corpus: the small real files of ../shared/models (stories260K in five types, the synthetic fixtures of
/// llama, qwen2, qwen3, a YaRN llama, gemma2, gemma3 (sliding windows, soft-caps), phi3 (fused projections, longrope),
/// qwen3moe (experts) and granite), plus files made from them: chat templates in their metadata, and a byte-level BPE
/// (gpt2) vocabulary on stories260K's weights.
/// </summary>
internal static class FuzzSeeds
{
    private static readonly string[] Files =
    [
        "stories260K.gguf", "stories260K-F16.gguf", "stories260K-mix-Q4_0.gguf", "stories260K-mix-Q5_0.gguf", "stories260K-mix-Q8_0.gguf",
        "synthetic/synth-llama-Q4_K_M.gguf", "synthetic/synth-llama-Q6_K.gguf", "synthetic/synth-llama-Q4_0.gguf",
        "synthetic/synth-qwen2-Q4_K_M.gguf", "synthetic/synth-qwen3-Q4_K_M.gguf", "synthetic/synth-llama-tied-Q4_K_M.gguf",
        "synthetic/synth-llama-yarn-Q8_0.gguf", "synthetic/synth-gemma2-Q8_0.gguf", "synthetic/synth-gemma3-Q8_0.gguf",
        "synthetic/synth-phi3-Q8_0.gguf", "synthetic/synth-phi3-longrope-Q8_0.gguf", "synthetic/synth-qwen3moe-Q8_0.gguf",
        "synthetic/synth-granite-Q8_0.gguf",
    ];

    /// <summary>A small ChatML template, as many models ship.</summary>
    public const string ChatMLTemplate =
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    /// <summary>Real templates (../shared/models/templates) the chat-template mutations start from.</summary>
    public static readonly string[] TemplateFiles =
    [
        "meta-llama-Llama-3.2-3B-Instruct.jinja", "Qwen-Qwen2.5-7B-Instruct.jinja", "microsoft-Phi-3.5-mini-instruct.jinja",
        "google-gemma-2-2b-it.jinja", "mistralai-Mistral-Nemo-Instruct-2407.jinja", "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja",
    ];

    /// <summary>../shared/models beside the repository that holds this program.</summary>
    public static string DefaultModelsDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ManagedLM.sln")))
                return Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "models"));
        }
        throw new DirectoryNotFoundException($"ManagedLM.sln not found above {AppContext.BaseDirectory}: pass --models DIR.");
    }

    /// <summary>Loads the corpus from <paramref name="modelsDirectory"/>; a missing file is an error, never skipped.</summary>
    public static FuzzCorpus Load(string modelsDirectory)
    {
        string Path(string relative) =>
            System.IO.Path.Combine(modelsDirectory, relative) is var p && File.Exists(p) ? p : throw new FileNotFoundException($"Fuzz seed missing: {p}");

        var seeds = Files.Select(f => Seed(System.IO.Path.GetFileNameWithoutExtension(f), File.ReadAllBytes(Path(f)))).ToList();
        var templates = TemplateFiles.Select(f => File.ReadAllText(Path("templates/" + f))).ToArray();

        seeds.Add(WithMetadata(seeds[4], "stories260K-mix-Q8_0+chatml", m => m.Set("tokenizer.chat_template", GgufValue.Of(ChatMLTemplate))));
        seeds.Add(WithMetadata(seeds[0], "stories260K+llama3-template", m => m.Set("tokenizer.chat_template", GgufValue.Of(templates[0]))));
        seeds.Add(WithMetadata(seeds[8], "synth-qwen2+qwen-template", m => m.Set("tokenizer.chat_template", GgufValue.Of(templates[1]))));
        var gpt2 = Gpt2Vocabulary(ReadGz(Path("vocab/ggml-vocab-gpt-2.gguf.gz")), 512);
        seeds.Add(WithMetadata(seeds[2], "stories260K-mix-Q4_0+gpt2-vocab+phi3-template", m =>
        {
            m.Entries.RemoveAll(e => e.KeyText.StartsWith("tokenizer.", StringComparison.Ordinal));
            foreach (var (key, value) in gpt2)
                m.Set(key, value);
            m.Set("tokenizer.chat_template", GgufValue.Of(templates[2]));
        }));
        return new FuzzCorpus(seeds, templates);
    }

    private static FuzzSeed Seed(string name, byte[] bytes) => new(name, bytes, GgufImage.Parse(bytes));

    private static FuzzSeed WithMetadata(FuzzSeed source, string name, Action<GgufImage> edit)
    {
        var image = source.Image.Clone();
        edit(image);
        return Seed(name, image.Serialize());
    }

    private static byte[] ReadGz(string path)
    {
        using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var bytes = new MemoryStream();
        gz.CopyTo(bytes);
        return bytes.ToArray();
    }

    // The first n−1 tokens of a byte-level BPE vocabulary (the 256 byte tokens, then merge results in merge order), the
    // merges among them, and <|endoftext|> as the last id (BOS and EOS).
    private static List<(string, GgufValue)> Gpt2Vocabulary(byte[] vocabFile, int n)
    {
        using var file = GgufFile.Parse(vocabFile);
        var m = file.Metadata;
        string[] tokens = [.. m.GetArray<string>("tokenizer.ggml.tokens").Take(n - 1), "<|endoftext|>"];
        var kept = tokens.ToHashSet(StringComparer.Ordinal);
        string[] merges = m.GetArray<string>("tokenizer.ggml.merges")
            .Where(merge => merge.Split(' ') is [var a, var b] && kept.Contains(a) && kept.Contains(b) && kept.Contains(a + b))
            .ToArray();
        int[] types = [.. Enumerable.Repeat(1, n - 1), 3];
        return
        [
            ("tokenizer.ggml.model", GgufValue.Of("gpt2")),
            ("tokenizer.ggml.pre", GgufValue.Of("gpt-2")),
            ("tokenizer.ggml.tokens", GgufValue.Of(GgufArray.Of(tokens))),
            ("tokenizer.ggml.token_type", GgufValue.Of(GgufArray.Of(types))),
            ("tokenizer.ggml.merges", GgufValue.Of(GgufArray.Of(merges))),
            ("tokenizer.ggml.bos_token_id", GgufValue.Of((uint)(n - 1))),
            ("tokenizer.ggml.eos_token_id", GgufValue.Of((uint)(n - 1))),
        ];
    }
}

/// <summary>The seeds and the real chat templates a campaign mutates.</summary>
internal sealed record FuzzCorpus(IReadOnlyList<FuzzSeed> Seeds, IReadOnlyList<string> Templates);

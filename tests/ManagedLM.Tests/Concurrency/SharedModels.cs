using ManagedLM.Gguf;
using ManagedLM.Model;
using ManagedLM.Quantization;
using ManagedLM.Synthesis;

namespace ManagedLM.Tests.Concurrency;

/// <summary>Models loaded once for the concurrency tests (loading is what they share, on purpose).</summary>
public sealed class SharedModels : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("managedlm-shared-").FullName;

    /// <summary>stories260K (SentencePiece, 512 tokens).</summary>
    public TransformerModel Stories { get; } = TransformerModel.Load(TestData.Model("stories260K.gguf"));

    /// <summary>A small random-weight qwen2 with the GPT-2 byte-level BPE tokenizer (50257 tokens) and Qwen2.5's chat template.</summary>
    public TransformerModel Gpt2Vocab { get; }

    public SharedModels()
    {
        using var vocab = GgufFile.Parse(TestData.ReadBytes(TestData.Model("vocab/ggml-vocab-gpt-2.gguf.gz")));
        var tokenizer = ModelSynthesizer.TokenizerMetadata(vocab.Metadata);
        tokenizer.Add(KeyValuePair.Create("tokenizer.chat_template", GgufValue.Of(File.ReadAllText(TestData.Model("templates/Qwen-Qwen2.5-7B-Instruct.jinja")))));
        var spec = SynthesisSpec.Tiny with
        {
            Architecture = "qwen2", EmbeddingLength = 64, FeedForwardLength = 128, BlockCount = 2, HeadCount = 4,
            HeadCountKv = 2, HeadDim = 16, VocabSize = 50257, TiedEmbeddings = true, ContextLength = 4096,
        };
        string path = Path.Combine(_dir, "qwen2-gpt2vocab.gguf");
        ModelSynthesizer.WriteFile(spec, "qwen2-gpt2vocab", 7, new QuantizationOptions(LlamaFileType.Q8_0), tokenizer, path);
        Gpt2Vocab = TransformerModel.Load(path);
    }

    public void Dispose()
    {
        Stories.Dispose();
        Gpt2Vocab.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}

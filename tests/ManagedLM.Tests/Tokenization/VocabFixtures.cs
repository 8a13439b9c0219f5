using System.Collections.Concurrent;
using ManagedLM.Gguf;
using ManagedLM.Tokenization;

namespace ManagedLM.Tests.Tokenization;

/// <summary>The llama.cpp vocabularies in ../shared/models/vocab, each loaded once per test run.</summary>
public static class VocabFixtures
{
    public static readonly string[] Names = ["bert-bge", "gpt-2", "llama-bpe", "llama-spm", "phi-3", "qwen2"];

    private static readonly ConcurrentDictionary<string, Lazy<Tokenizer>> Cache = new();

    public static Tokenizer Load(string name) =>
        Cache.GetOrAdd(name, n => new Lazy<Tokenizer>(() => Read(n))).Value;

    public static GgufMetadata Metadata(string name)
    {
        using var file = GgufFile.Parse(TestData.ReadBytes(TestData.Model($"vocab/ggml-vocab-{name}.gguf.gz")));
        return file.Metadata;
    }

    private static Tokenizer Read(string name) => Tokenizer.FromGguf(Metadata(name));

    /// <summary>The test texts of a vocabulary and the ids llama.cpp gives each (no BOS/EOS, special tokens not parsed).</summary>
    public static IReadOnlyList<(string Text, int[] Ids)> Vectors(string name)
    {
        string inp = File.ReadAllText(TestData.Model($"vocab/ggml-vocab-{name}.gguf.inp"));
        string[] outLines = File.ReadAllLines(TestData.Model($"vocab/ggml-vocab-{name}.gguf.out"));
        var texts = inp.Split("\n__ggml_vocab_test__\n").ToList();
        if (texts[^1].Length == 0)
            texts.RemoveAt(texts.Count - 1);
        if (texts.Count != outLines.Length)
            throw new InvalidDataException($"{name}: {texts.Count} texts but {outLines.Length} expected id lines");
        return texts.Select((t, i) => (t, outLines[i].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray())).ToList();
    }
}

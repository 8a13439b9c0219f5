using BenchmarkDotNet.Attributes;
using ManagedLM.Gguf;
using ManagedLM.Grammars;
using ManagedLM.Synthesis;
using ManagedLM.Tokenization;

namespace ManagedLM.Benchmarks.Grammars;

/// <summary>
/// The cost of constraining one token with llama.cpp's JSON grammar, on a 32k (Llama 2) and a 152k (Qwen2)
/// vocabulary: <c>Allows</c> checks one sampled token (the fast path), <c>AcceptDocument</c> checks and accepts each
/// token of a JSON document (per token), <c>Mask</c> filters the whole vocabulary (the path taken when the sampled
/// token is rejected: its mask cached, its byte transitions cached, nothing cached). <c>State</c>: expecting a value, or inside a string (where most tokens are allowed).
/// Compare against a decode step's time from the generation benchmarks.
/// </summary>
public class GrammarBenchmarks
{
    private const string Document = "{\"name\": \"Ada Lovelace\", \"born\": 1815, \"tags\": [\"math\", \"engines\"], \"notes\": {\"first\": true, \"ratio\": -2.5e3}}";

    [Params(SynthesisPreset.LlamaSpmVocab, SynthesisPreset.Qwen2Vocab)]
    public string Vocabulary { get; set; } = SynthesisPreset.LlamaSpmVocab;

    [Params("value", "string")]
    public string State { get; set; } = "value";

    private GrammarMatcher _matcher = null!;
    private GrammarMatcher _document = null!;
    private float[] _logits = [];
    private int[] _documentTokens = [];
    private int _first, _second;

    [GlobalSetup]
    public void Setup()
    {
        string shared = Path.Combine(BenchmarkModels.RepositoryRoot(), "..", "shared", "models");
        Tokenizer tokenizer;
        using (var file = GgufFile.OpenOrUnzip(Path.Combine(shared, Vocabulary)))
            tokenizer = Tokenizer.FromGguf(file.Metadata);
        var vocabulary = GrammarVocabulary.FromTokenizer(tokenizer);
        var grammar = Grammar.FromGbnf(File.ReadAllText(Path.Combine(shared, "grammars", "json.gbnf")));
        _matcher = grammar.CreateMatcher(vocabulary);
        string prefix = State == "value" ? "{\"a\":" : "{\"a\": \"x";
        if (!_matcher.TryAccept(prefix))
            throw new InvalidOperationException("The JSON grammar rejected the benchmark's prefix.");
        // Two allowed tokens, checked in turn so that neither answer is the cached one.
        _logits = new float[vocabulary.Count];
        _matcher.Mask(_logits);
        int[] allowed = Enumerable.Range(0, vocabulary.Count).Where(t => !float.IsNegativeInfinity(_logits[t]) && !vocabulary.IsEndOfGeneration(t)).ToArray();
        (_first, _second) = (allowed[allowed.Length / 3], allowed[2 * allowed.Length / 3]);
        // After "{", a SentencePiece tokenizer's leading space is whitespace the grammar allows.
        _documentTokens = tokenizer.Encode(Document[1..], addSpecialTokens: false);
        Console.WriteLine($"// {Vocabulary}: the document is {_documentTokens.Length} tokens");
        _document = grammar.CreateMatcher(vocabulary);
    }

    [Benchmark(OperationsPerInvoke = 2)]
    public bool Allows() => _matcher.Allows(_first) & _matcher.Allows(_second);

    /// <summary>The whole vocabulary, in a state seen before (its mask cached, as in most steps of a decode).</summary>
    [Benchmark]
    public int Mask() => _matcher.Mask(_logits);

    /// <summary>The whole vocabulary in a new state whose byte transitions are cached: a walk over the token trie.</summary>
    [Benchmark]
    public int MaskWalk()
    {
        _matcher.ClearCache(keepTransitions: true);
        return _matcher.Mask(_logits);
    }

    /// <summary>The whole vocabulary in a state never seen before (empty cache).</summary>
    [Benchmark]
    public int MaskUncached()
    {
        _matcher.ClearCache();
        return _matcher.Mask(_logits);
    }

    /// <summary>Every token of the document (setup prints how many): check, then accept.</summary>
    [Benchmark]
    public bool AcceptDocument()
    {
        _document.Reset();
        bool all = _document.TryAccept("{"u8);
        foreach (int token in _documentTokens)
            all &= _document.Allows(token) && _document.TryAcceptToken(token);
        return all ? true : throw new InvalidOperationException("The JSON grammar rejected the document.");
    }
}

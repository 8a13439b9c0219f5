using ManagedLM.Gguf;

namespace ManagedLM.Synthesis;

/// <summary>A vocabulary of a size no shared donor has: a donor's <c>tokenizer.*</c> keys with tokens added at the end.</summary>
public static class SyntheticVocabulary
{
    /// <summary>Token type of the added tokens: llama.cpp's LLAMA_TOKEN_TYPE_NORMAL (not special, so never matched as a control token).</summary>
    public const int AddedTokenType = 1;

    /// <summary>
    /// <paramref name="tokenizer"/> with <c>tokenizer.ggml.tokens</c> extended to <paramref name="vocabSize"/> tokens:
    /// <c>&lt;unused0&gt;</c>, <c>&lt;unused1&gt;</c>, ... (skipping any text the donor has: llama.cpp requires distinct
    /// texts), each a normal token scored below every donor token; <c>scores</c> and <c>token_type</c> grow with them
    /// when present. Everything else (ids of BOS/EOS, merges, the template) is the donor's. Unchanged when the donor
    /// already has <paramref name="vocabSize"/> tokens.
    /// </summary>
    /// <exception cref="ArgumentException">The donor has no token list, or more than <paramref name="vocabSize"/> tokens.</exception>
    public static List<KeyValuePair<string, GgufValue>> Pad(IReadOnlyList<KeyValuePair<string, GgufValue>> tokenizer, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var tokens = Array(tokenizer, "tokenizer.ggml.tokens")?.AsSpan<string>().ToArray()
            ?? throw new ArgumentException("The vocabulary has no tokenizer.ggml.tokens array.", nameof(tokenizer));
        if (tokens.Length > vocabSize)
            throw new ArgumentException($"The vocabulary has {tokens.Length} tokens, more than the model's {vocabSize}.", nameof(tokenizer));
        if (tokens.Length == vocabSize)
            return [.. tokenizer];

        int donorCount = tokens.Length;
        var seen = new HashSet<string>(tokens, StringComparer.Ordinal);
        var padded = new string[vocabSize];
        tokens.CopyTo(padded, 0);
        for (int i = donorCount, n = 0; i < vocabSize; i++)
        {
            string text;
            do
                text = $"<unused{n++}>";
            while (!seen.Add(text));
            padded[i] = text;
        }

        var result = new List<KeyValuePair<string, GgufValue>>(tokenizer.Count);
        foreach (var (key, value) in tokenizer)
        {
            GgufValue v = key switch
            {
                "tokenizer.ggml.tokens" => GgufValue.Of(GgufArray.Of(padded)),
                "tokenizer.ggml.scores" when value.AsArray is { ElementType: GgufValueType.Float32 } a => GgufValue.Of(GgufArray.Of(Scores(a, vocabSize))),
                "tokenizer.ggml.token_type" when value.AsArray is { ElementType: GgufValueType.Int32 } a => GgufValue.Of(GgufArray.Of(Types(a, vocabSize))),
                _ => value,
            };
            result.Add(KeyValuePair.Create(key, v));
        }
        return result;
    }

    private static GgufArray? Array(IReadOnlyList<KeyValuePair<string, GgufValue>> tokenizer, string key) =>
        tokenizer.FirstOrDefault(p => p.Key == key).Value?.AsArray;

    private static float[] Scores(GgufArray donor, int count)
    {
        var s = donor.AsSpan<float>()[..Math.Min(donor.Count, count)];
        float low = 0;
        foreach (float v in s)
            low = MathF.Min(low, v);
        var result = new float[count];
        s.CopyTo(result);
        result.AsSpan(s.Length).Fill(low - 1);
        return result;
    }

    private static int[] Types(GgufArray donor, int count)
    {
        var t = donor.AsSpan<int>()[..Math.Min(donor.Count, count)];
        var result = new int[count];
        t.CopyTo(result);
        result.AsSpan(t.Length).Fill(AddedTokenType);
        return result;
    }
}

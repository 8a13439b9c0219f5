using System.Text;
using Xunit.Abstractions;

namespace ManagedLM.Tests.Tokenization;

/// <summary>llama.cpp's tokenizer conformance vectors: every text must give exactly llama.cpp's ids.</summary>
public class VocabVectorTests(ITestOutputHelper output)
{
    public static TheoryData<string> Vocabularies => new(VocabFixtures.Names);

    [Theory]
    [MemberData(nameof(Vocabularies))]
    public void Every_vector_encodes_to_llama_cpp_ids(string vocab)
    {
        var tokenizer = VocabFixtures.Load(vocab);
        var vectors = VocabFixtures.Vectors(vocab);
        var failures = new StringBuilder();
        int failed = 0;
        foreach (var (text, expected) in vectors)
        {
            int[] actual = tokenizer.Encode(text, addSpecialTokens: false, parseSpecialTokens: false);
            if (!actual.SequenceEqual(expected))
            {
                failed++;
                failures.AppendLine($"text:     \"{Escape(text)}\"");
                failures.AppendLine($"expected: [{string.Join(' ', expected)}]");
                failures.AppendLine($"actual:   [{string.Join(' ', actual)}]");
            }
        }
        output.WriteLine($"{vocab}: {vectors.Count - failed}/{vectors.Count} vectors pass");
        Assert.NotEmpty(vectors);
        Assert.True(failed == 0, $"{vocab}: {failed} of {vectors.Count} vectors differ\n{failures}");
    }

    [Theory]
    [MemberData(nameof(Vocabularies))]
    public void Decode_of_encode_gives_the_text_back(string vocab)
    {
        var tokenizer = VocabFixtures.Load(vocab);
        var failures = new StringBuilder();
        foreach (var (text, _) in VocabFixtures.Vectors(vocab))
        {
            int[] ids = tokenizer.Encode(text, addSpecialTokens: false);
            string decoded = tokenizer.Decode(ids);
            if (Normalizes(vocab))
            {
                // WordPiece lowercases, strips accents and whitespace, and writes [UNK] for what it cannot cover, so the text does
                // not come back; what comes back encodes to the same ids, less the [UNK]s (which decode to nothing).
                int[] again = tokenizer.Encode(decoded, addSpecialTokens: false);
                if (!again.SequenceEqual(ids.Where(id => id != tokenizer.UnknownTokenId)))
                    failures.AppendLine($"\"{Escape(text)}\" -> \"{Escape(decoded)}\" -> [{string.Join(' ', again)}]");
                continue;
            }
            // Models with clean_up_tokenization_spaces (gpt-2, llama-bpe) change " ?" and " 's" on decode, as llama.cpp does.
            if (CleansSpaces(vocab) && HasCleanedPattern(text))
                continue;
            if (decoded != text)
                failures.AppendLine($"\"{Escape(text)}\" -> \"{Escape(decoded)}\"");
        }
        Assert.True(failures.Length == 0, failures.ToString());
    }

    private static bool Normalizes(string vocab) => vocab is "bert-bge";

    private static bool CleansSpaces(string vocab) => vocab is "gpt-2" or "llama-bpe";

    private static bool HasCleanedPattern(string text) =>
        new[] { " ?", " !", " .", " ,", " ' ", " 's", " 'm", " 're", " 've" }.Any(text.Contains);

    internal static string Escape(string s) => s.Replace("\\", "\\\\").Replace("\n", "\\n").Replace("\r", "\\r").Replace("\t", "\\t");
}

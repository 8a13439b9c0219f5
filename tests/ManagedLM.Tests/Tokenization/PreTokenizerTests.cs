using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using ManagedLM.Tokenization;

namespace ManagedLM.Tests.Tokenization;

public class PreTokenizerTests
{
    // Code points that exercise every branch: letters, digits, apostrophes, spaces of several kinds, newlines, punctuation,
    // non-ASCII letters/digits/marks/symbols, control characters and an emoji.
    private static readonly int[] Alphabet =
    [
        'a', 'Z', 's', 'S', 't', 'l', 'L', 'e', 'r', 'v', 'm', 'd', '1', '9', '\'', ' ', ' ', '\t', '\n', '\r', '\v', '!', '.', '$', '~', '`',
        0x00, 0x1F, 0x85, 0xA0, 0x3000, 0x2009, 'é', 'Ж', '中', '٣', 0x0301, '€', '…', 0x1F600, 0xE000, 0x0378,
    ];

    /// <summary>FsCheck's generator of code-point arrays for the properties here: texts over <see cref="Alphabet"/>.</summary>
    public static class Texts
    {
        public static Arbitrary<int[]> CodePoints() => Gen.ArrayOf(Gen.Elements(Alphabet)).ToArbitrary();
    }

    private static List<int> ByRegex(string pattern, int[] cps)
    {
        var regex = new UnitRegex(pattern, BpePreTokenizer.CollapsedClass);
        var units = cps.Select(BpePreTokenizer.CollapsedUnit).ToArray();
        var pieces = new List<int>();
        regex.Split(units, [cps.Length], pieces);
        return pieces;
    }

    private static List<int> ByHand(Action<int[], List<int>, List<int>> split, int[] cps)
    {
        var pieces = new List<int>();
        split(cps, [cps.Length], pieces);
        return pieces;
    }

    // A fixed seed: the same 1000 texts on every run.
    [Property(Arbitrary = [typeof(Texts)], MaxTest = 1000, Replay = "(1640271319,1973046111)")]
    public bool Llama3_splitter_agrees_with_its_regex(int[] cps) =>
        ByHand(BpePreTokenizer.SplitLlama3, cps).SequenceEqual(ByRegex(BpePreTokenizer.Llama3Pattern, cps));

    [Property(Arbitrary = [typeof(Texts)], MaxTest = 1000, Replay = "(1640271319,1973046111)")]
    public bool Gpt2_splitter_agrees_with_its_regex(int[] cps) =>
        ByHand(BpePreTokenizer.SplitGpt2, cps).SequenceEqual(ByRegex(BpePreTokenizer.Gpt2Pattern, cps));

    [Theory]
    [InlineData("Hello world", new[] { "Hello", " world" })]
    [InlineData("I'VE 12345 apples!!\n\n  ok", new[] { "I", "'VE", " ", "1", "2", "3", "4", "5", " apples", "!!\n\n", " ", " ok" })]
    [InlineData("  \t x", new[] { "  \t", " x" })]
    public void Qwen2_regex_splits_words_digits_and_spaces(string text, string[] words)
    {
        var pre = BpePreTokenizer.ForName("qwen2");
        int[] cps = text.EnumerateRunes().Select(r => r.Value).ToArray();
        var lengths = pre.Split(cps, cps.Length);
        var actual = new List<string>();
        int pos = 0;
        foreach (int n in lengths)
        {
            actual.Add(string.Concat(cps[pos..(pos + n)].Select(char.ConvertFromUtf32)));
            pos += n;
        }
        Assert.Equal(words, actual);
    }

    [Fact]
    public void Regex_engine_handles_lookahead_anchors_classes_and_groups()
    {
        static int End(string pattern, string text, int start = 0)
        {
            var regex = new UnitRegex(pattern, BpePreTokenizer.CollapsedClass);
            int[] units = text.EnumerateRunes().Select(r => r.Value).ToArray();
            return regex.MatchAt(units, start, units.Length);
        }

        Assert.Equal(2, End(@"\s+(?!\S)", "   x"));
        Assert.Equal(3, End(@"\s+$", "   "));
        Assert.Equal(-1, End(@"\s+$", "  x"));
        Assert.Equal(3, End("[0-9][0-9][0-9]", "12345"));
        Assert.Equal(4, End(@"(?:ab)+", "ababa"));
        Assert.Equal(2, End(@"(?:ab)+?", "abab"));
        Assert.Equal(4, End(@"(a|ab)(c|bcd)", "abcd"));
        Assert.Equal(2, End(@"[^\s\d]{1,2}", "xyz"));
        Assert.Equal(1, End(@"\p{N}", "\u00D1"));
        Assert.Equal(-1, End(@"x\b", "xy"));
        Assert.Equal(1, End(@"x\b", "x!"));
        Assert.Equal(1, End(@"[\u4E00-\u9FA5]", "中"));
        Assert.Equal(1, End("[𐐀-𐑏]", "𐐨"));
        Assert.Throws<ArgumentException>(() => new UnitRegex("(a", BpePreTokenizer.CollapsedClass));
        Assert.Throws<ArgumentException>(() => new UnitRegex(@"\p{Han}", BpePreTokenizer.CollapsedClass));
    }

    [Theory]
    [InlineData("default")]
    [InlineData("llama-bpe")]
    [InlineData("qwen2")]
    [InlineData("gpt-2")]
    [InlineData("deepseek-coder")]
    [InlineData("deepseek-llm")]
    [InlineData("deepseek-v3")]
    [InlineData("falcon")]
    [InlineData("starcoder")]
    [InlineData("poro-chat")]
    [InlineData("viking")]
    [InlineData("seed-coder")]
    [InlineData("bailingmoe")]
    [InlineData("qwen35")]
    public void Every_supported_pre_tokenizer_covers_the_text(string name)
    {
        var pre = BpePreTokenizer.ForName(name);
        string text = TokenizerTests.GenerateText(4000, seed: 7);
        int[] cps = text.EnumerateRunes().Select(r => r.Value).ToArray();
        var lengths = pre.Split(cps, cps.Length);
        Assert.All(lengths, n => Assert.True(n > 0));
        Assert.Equal(cps.Length, lengths.Sum());
    }

    [Fact]
    public void Unknown_pre_tokenizer_throws_naming_it()
    {
        var e = Assert.Throws<NotSupportedException>(() => BpePreTokenizer.ForName("tekken"));
        Assert.Contains("tekken", e.Message);
        Assert.Equal("default", BpePreTokenizer.ForName(null).Name);
    }
}

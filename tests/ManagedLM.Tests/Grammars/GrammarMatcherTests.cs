using System.Text;
using ManagedLM.Grammars;

namespace ManagedLM.Tests.Grammars;

public class GrammarMatcherTests
{
    internal static Grammar Shared(string name) =>
        Grammar.FromGbnf(File.ReadAllText(Path.Combine(TestData.ModelsDir, "grammars", name + ".gbnf")));

    private static bool Matches(Grammar grammar, string text)
    {
        var m = grammar.CreateMatcher();
        return m.TryAccept(text) && m.IsComplete;
    }

    [Theory]
    [InlineData("{}", true)]
    [InlineData("{\"a\": 1}", true)]
    [InlineData("{\"a\": [1, -2.5e3, \"x\\u00e9\\n\", true, null], \"b\": {\"c\": {}}}", true)]
    [InlineData("{\n  \"key\": \"välue 😀\"\n}", true)]
    [InlineData("[1]", false)]
    [InlineData("{\"a\" 1}", false)]
    [InlineData("{'a': 1}", false)]
    [InlineData("{\"a\": 01}", false)]
    [InlineData("{\"a\": tru}", false)]
    [InlineData("{\"a\": \"\\x\"}", false)]
    [InlineData("{\"a\": \"tab\there\"}", false)]
    [InlineData("{\"a\": 1", false)]
    public void Json_grammar_accepts_json_objects_only(string text, bool expected)
    {
        Assert.Equal(expected, Matches(Shared("json"), text));
    }

    [Theory]
    [InlineData("1+2=3\n", true)]
    [InlineData("(a+b1 )*c= x_2\n", true)]
    [InlineData("1=1\n2=2\n", true)]
    [InlineData("1+=3\n", false)]
    [InlineData("1=1", false)]
    [InlineData("A=1\n", false)]
    public void Arithmetic_grammar(string text, bool expected)
    {
        Assert.Equal(expected, Matches(Shared("arithmetic"), text));
    }

    [Theory]
    [InlineData("こんにちは 世界", true)]
    [InlineData("カタカナ、ひらがな", true)]
    [InlineData("hello", false)]
    [InlineData("世界!", false)]
    public void Japanese_grammar_matches_code_point_ranges(string text, bool expected)
    {
        Assert.Equal(expected, Matches(Shared("japanese"), text));
    }

    [Theory]
    [InlineData("1. e4 e5\n2. Nf3 Nc6\n", true)]
    [InlineData("1. O-O-O Qxd8+\n10. exd8=Q# a1\n", true)]
    [InlineData("1. e9 e5\n2. Nf3 Nc6\n", false)]
    public void Chess_grammar(string text, bool expected)
    {
        Assert.Equal(expected, Matches(Shared("chess"), text));
    }

    [Theory]
    [InlineData("c", "int main(){return 0;}float f(int x){while(x<1){x = x+1;}}", true)]
    [InlineData("c", "int main(){return 0}", false)]
    [InlineData("english", "Hello, world!\tIt's 2024.", true)]
    [InlineData("english", "Grüße", false)]
    [InlineData("list", "- milk\n- eggs ✓\n", true)]
    [InlineData("list", "- milk\u2028\n", false)]
    [InlineData("json_arr", "[\n1,\n{\"a\": [true]}]", true)]
    [InlineData("json_arr", "[1]", false)]
    public void More_of_llama_cpp_grammars(string name, string text, bool expected)
    {
        Assert.Equal(expected, Matches(Shared(name), text));
    }

    [Theory]
    [InlineData("", false)]
    [InlineData("a", false)]
    [InlineData("aa", true)]
    [InlineData("aaa", true)]
    [InlineData("aaaa", true)]
    [InlineData("aaaaa", false)]
    public void Bounded_repetition_accepts_between_min_and_max(string text, bool expected)
    {
        Assert.Equal(expected, Matches(Grammar.FromGbnf("root ::= \"a\"{2,4}"), text));
    }

    [Fact]
    public void Exact_and_open_repetitions()
    {
        var exact = Grammar.FromGbnf("root ::= [0-9]{3} \"-\" [a-z]{2,}");
        Assert.True(Matches(exact, "123-ab"));
        Assert.True(Matches(exact, "123-abcdefgh"));
        Assert.False(Matches(exact, "12-ab"));
        Assert.False(Matches(exact, "1234-ab"));
        Assert.False(Matches(exact, "123-a"));
    }

    [Fact]
    public void Any_character_and_negated_classes_cover_all_of_unicode()
    {
        var g = Grammar.FromGbnf("root ::= \"<\" [^>]* \">\" .");
        Assert.True(Matches(g, "<a😀\u0000\U0010FFFF>é"));
        Assert.False(Matches(g, "<a>b>c"));
        Assert.True(Matches(Grammar.FromGbnf("root ::= \"<\" .* \">\""), "<a>b>"));
    }

    [Fact]
    public void Reports_completion_and_whether_more_can_follow()
    {
        var m = Shared("json").CreateMatcher();
        Assert.False(m.IsComplete);
        Assert.True(m.CanContinue);
        Assert.True(m.TryAccept("{\"a\": "));
        Assert.False(m.IsComplete);
        Assert.True(m.TryAccept("1}"));
        Assert.True(m.IsComplete);
        Assert.True(m.CanContinue); // trailing whitespace
        var closed = Grammar.FromGbnf("root ::= \"ab\"").CreateMatcher();
        Assert.True(closed.TryAccept("ab"));
        Assert.True(closed.IsComplete);
        Assert.False(closed.CanContinue);
    }

    [Fact]
    public void A_rejected_text_leaves_the_state_unchanged()
    {
        var m = Grammar.FromGbnf("root ::= \"abc\" | \"abd\"").CreateMatcher();
        Assert.True(m.TryAccept("a"));
        Assert.False(m.TryAccept("bx"));
        Assert.False(m.TryAccept("c"));
        Assert.True(m.TryAccept("bd"));
        Assert.True(m.IsComplete);
        Assert.False(m.TryAccept("d"));
        Assert.True(m.IsComplete);
    }

    [Fact]
    public void Carries_a_split_utf8_sequence_across_calls()
    {
        var m = Grammar.FromGbnf("root ::= \"é\" [😀-😂]").CreateMatcher();
        Assert.True(m.TryAccept([0xC3]));
        Assert.False(m.IsComplete);
        Assert.False(m.TryAccept([0xA8])); // è
        Assert.True(m.TryAccept([0xA9]));
        byte[] grin = Encoding.UTF8.GetBytes("😁");
        foreach (byte b in grin)
        {
            Assert.False(m.IsComplete);
            Assert.True(m.TryAccept([b]));
        }
        Assert.True(m.IsComplete);
    }

    [Fact]
    public void Rejects_the_first_byte_no_character_of_the_grammar_can_start_with()
    {
        var m = Grammar.FromGbnf("root ::= [a-z] | \"é\"").CreateMatcher();
        Assert.False(m.TryAccept([0xC4]));
        Assert.False(m.TryAccept([0xE4]));
        Assert.True(m.TryAccept([0xC3]));
    }

    [Theory]
    [InlineData(new byte[] { 0x80 })]
    [InlineData(new byte[] { 0xC0, 0x80 })]
    [InlineData(new byte[] { 0xE0, 0x80, 0x80 })]
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 })]
    [InlineData(new byte[] { 0xF4, 0x90, 0x80, 0x80 })]
    [InlineData(new byte[] { 0xF8 })]
    [InlineData(new byte[] { 0xC3, 0x41 })]
    public void Rejects_invalid_utf8_even_where_any_character_is_allowed(byte[] bytes)
    {
        var m = Grammar.FromGbnf("root ::= .*").CreateMatcher();
        Assert.False(m.TryAccept(bytes));
        Assert.True(m.IsComplete);
    }

    [Fact]
    public void Accepts_runes_and_resets()
    {
        var m = Grammar.FromGbnf("root ::= \"x😀\"").CreateMatcher();
        Assert.True(m.TryAccept(new Rune('x')));
        Assert.False(m.TryAccept(new Rune('x')));
        Assert.True(m.TryAccept(new Rune(0x1F600)));
        Assert.True(m.IsComplete);
        m.Reset();
        Assert.False(m.IsComplete);
        Assert.True(m.TryAccept("x😀"));
    }

    [Fact]
    public void Clones_and_rewinds()
    {
        var g = Shared("json");
        var m = g.CreateMatcher();
        Assert.True(m.TryAccept("{\"a\": ["));
        var saved = m.Clone();
        Assert.True(m.TryAccept("1]}"));
        Assert.True(m.IsComplete);
        Assert.False(saved.IsComplete);
        Assert.True(saved.TryAccept("2, 3]}"));
        m.CopyFrom(saved);
        Assert.True(m.IsComplete);
        Assert.Equal("The source matcher follows a different grammar. (Parameter 'source')",
            Assert.Throws<ArgumentException>(() => m.CopyFrom(Shared("json").CreateMatcher())).Message);
    }

    [Fact]
    public void Follows_recursion_and_ambiguity()
    {
        var nested = Grammar.FromGbnf("root ::= \"(\" root \")\" | \"\"");
        Assert.True(Matches(nested, new string('(', 300) + new string(')', 300)));
        Assert.False(Matches(nested, "(()"));
        var ambiguous = Grammar.FromGbnf("root ::= (\"a\" | \"aa\" | \"a\" \"a\" \"a\")* \"b\"");
        Assert.True(Matches(ambiguous, new string('a', 200) + "b"));
    }

    [Fact]
    public void Too_many_parse_stacks_is_a_clear_error_not_a_blow_up()
    {
        // After n a's, 3 * 2^n stacks: every sequence of n closers, each under the root's three alternatives.
        var m = Grammar.FromGbnf("root ::= \"a\" root \"b\" | \"a\" root \"c\" | \"\"").CreateMatcher();
        Assert.True(m.TryAccept("aaaaaaaa"));
        var e = Assert.Throws<InvalidOperationException>(() => m.TryAccept("a"));
        Assert.Equal("The grammar matcher exceeded its limits (1024 parse stacks, stacks 4096 deep, 2097152 stack entries written per character): the grammar is too ambiguous or the text nests too deeply.", e.Message);
        Assert.True(m.TryAccept("b"));
    }

    [Fact]
    public void Too_deep_nesting_is_a_clear_error()
    {
        var m = Grammar.FromGbnf("root ::= \"(\" root \")\" | \"\"").CreateMatcher();
        Assert.True(m.TryAccept(new string('(', 4000)));
        Assert.Throws<InvalidOperationException>(() => m.TryAccept(new string('(', 200)));
        Assert.True(m.TryAccept(new string(')', 4000)));
        Assert.True(m.IsComplete);
    }

    [Fact]
    public void Too_much_work_for_one_character_is_a_clear_error()
    {
        // At depth d, "a" opens 1000 alternatives above the whole stack: 1000 stacks of depth d written out at once.
        string alternatives = string.Join(" | ", Enumerable.Range(0, 1000).Select(i => $"\"b{i}\""));
        var m = Grammar.FromGbnf($"root ::= \"(\" root \")\" | \"a\" alt\nalt ::= {alternatives}").CreateMatcher();
        Assert.True(m.TryAccept(new string('(', 1000) + "a"));
        m.Reset();
        Assert.True(m.TryAccept(new string('(', 2200)));
        var e = Assert.Throws<InvalidOperationException>(() => m.TryAccept("a"));
        Assert.StartsWith("The grammar matcher exceeded its limits", e.Message);
        Assert.True(m.TryAccept("("));
    }

    [Fact]
    public void Token_checks_need_a_vocabulary()
    {
        var m = Grammar.FromGbnf("root ::= \"a\"").CreateMatcher();
        Assert.Null(m.Vocabulary);
        Assert.Equal("This matcher has no vocabulary: create it with Grammar.CreateMatcher(vocabulary) to check tokens.",
            Assert.Throws<InvalidOperationException>(() => m.Allows(0)).Message);
        Assert.Throws<InvalidOperationException>(() => m.Mask(new float[4]));
    }
}

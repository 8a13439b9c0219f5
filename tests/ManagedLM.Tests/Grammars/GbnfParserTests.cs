using ManagedLM.Grammars;

namespace ManagedLM.Tests.Grammars;

public class GbnfParserTests
{
    [Theory]
    [InlineData("root ::= \"ab\"", "root ::= [a] [b]\n")]
    [InlineData("root ::= [a-cx]", "root ::= [a-cx]\n")]
    [InlineData("root ::= [^\\x00-`b-\\U0010FFFF]", "root ::= [a]\n")]
    [InlineData("root ::= [^a]", "root ::= [\\x00-`b-\\U0010FFFF]\n")]
    [InlineData("root ::= .", "root ::= .\n")]
    [InlineData("root ::= \"a\" | \"b\" |", "root ::= [a] | [b] |\n")]
    [InlineData("root ::= (\"a\" | \"b\") \"c\"", "root ::= root_1 [c]\nroot_1 ::= [a] | [b]\n")]
    [InlineData("root ::= \"x\"?", "root ::= root_1\nroot_1 ::= [x] |\n")]
    [InlineData("root ::= \"x\"*", "root ::= root_1\nroot_1 ::= [x] root_1 |\n")]
    [InlineData("root ::= \"x\"+", "root ::= [x] root_1\nroot_1 ::= [x] root_1 |\n")]
    [InlineData("root ::= \"x\"{3}", "root ::= [x] [x] [x]\n")]
    [InlineData("root ::= \"x\"{0}", "root ::=\n")]
    [InlineData("root ::= \"x\"{2,}", "root ::= [x] [x] root_1\nroot_1 ::= [x] root_1 |\n")]
    [InlineData("root ::= \"x\"{2,4}", "root ::= [x] [x] root_2\nroot_1 ::= [x] |\nroot_2 ::= [x] root_1 |\n")]
    [InlineData("root ::= \"ab\"{ 0 , 1 }", "root ::= root_1\nroot_1 ::= [a] [b] |\n")]
    [InlineData("root ::= (\"a\" (\"b\")*)", "root ::= root_1\nroot_1 ::= [a] root_1_2\nroot_1_1 ::= [b]\nroot_1_2 ::= root_1_1 root_1_2 |\n")]
    public void Lowers_every_construct_as_llama_cpp_does(string gbnf, string lowered)
    {
        Assert.Equal(lowered, Grammar.FromGbnf(gbnf).ToString());
    }

    [Fact]
    public void Reads_escapes_in_literals_and_classes()
    {
        var g = Grammar.FromGbnf("""root ::= "\n\t\r\\\"\[\]\x41\u00e9\U0001F600" [\]\x30-\x39] [\x5E]""");
        Assert.Equal("root ::= [\\n] [\\t] [\\r] [\\\\] [\"] [\\[] [\\]] [A] [é] [😀] [0-9\\]] [\\x5E]\n", g.ToString());
    }

    [Fact]
    public void Reads_unicode_literally_and_joins_surrogate_pairs()
    {
        var g = Grammar.FromGbnf("root ::= [ぁ-ゟ] \"😀\"");
        Assert.Equal("root ::= [ぁ-ゟ] [😀]\n", g.ToString());
    }

    [Fact]
    public void Skips_comments_and_continues_rules_over_lines_inside_parentheses_and_after_bars()
    {
        var g = Grammar.FromGbnf("""
            # leading comment
            root ::= (      # comment inside
              "a"
              | "b" ) |
              "c" # trailing

            other ::= "d"
            """);
        Assert.Equal("root ::= root_1 | [c]\nroot_1 ::= [a] | [b]\nother ::= [d]\n", g.ToString());
    }

    [Fact]
    public void Skips_a_byte_order_mark()
    {
        Assert.Equal("root ::= [a]\n", Grammar.FromGbnf("\uFEFFroot ::= \"a\"\r\n").ToString());
    }

    [Fact]
    public void Allows_forward_and_recursive_references_and_another_root()
    {
        var g = Grammar.FromGbnf("start ::= item (\",\" item)*\nitem ::= \"[\" start? \"]\" | [0-9]", root: "start");
        Assert.Equal("start", g.RootRule);
        var m = g.CreateMatcher();
        Assert.True(m.TryAccept("[1,[2,[]]],3"));
        Assert.True(m.IsComplete);
    }

    [Fact]
    public void Parses_every_grammar_of_llama_cpp()
    {
        foreach (string file in Directory.EnumerateFiles(Path.Combine(TestData.ModelsDir, "grammars"), "*.gbnf").Order(StringComparer.Ordinal))
        {
            var g = Grammar.FromGbnf(File.ReadAllText(file));
            Assert.Equal("root", g.RootRule);
            Assert.True(g.RuleCount > 1, file);
        }
    }

    [Theory]
    [InlineData("root ::= foo", "Undefined rule 'foo'", 1, 10)]
    [InlineData("root ::= \"abc", "Unterminated string literal", 1, 10)]
    [InlineData("root ::= [abc", "Unterminated character class", 1, 10)]
    [InlineData("root ::= []", "Empty character class []", 1, 10)]
    [InlineData("root ::= [z-a]", "Character range z-a is reversed", 1, 11)]
    [InlineData("root ::= \"a\"{3,2}", "Bad repetition bounds {3,2}: the maximum is below the minimum", 1, 13)]
    [InlineData("root ::= \"a\"{}", "Expected a number in the repetition, found '}'", 1, 14)]
    [InlineData("root ::= \"a\"{2;}", "Expected ',' or '}' in the repetition, found ';'", 1, 15)]
    [InlineData("root ::= \"a\"{2,3", "Expected '}' to close the repetition, found the end of the grammar", 1, 17)]
    [InlineData("root ::= \"a\"{1,100001}", "Repetition bound 100001 is larger than 100000", 1, 13)]
    [InlineData("root ::= *", "'*' has nothing before it to repeat", 1, 10)]
    [InlineData("root ::= \"\"+", "'+' has nothing before it to repeat", 1, 12)]
    [InlineData("root = \"a\"", "Expected '::=' after rule name 'root', found '='", 1, 6)]
    [InlineData("::= \"a\"", "Expected a rule name, found ':'", 1, 1)]
    [InlineData("root ::= \"a\" )", "Expected the end of the line after rule 'root', found ')'", 1, 14)]
    [InlineData("root ::= (\"a\"\n  \"b\" ]", "Expected ')' to close the '(' at line 1, column 10, found ']'", 2, 7)]
    [InlineData("root ::= \"\\q\"", "Unknown escape '\\q'", 1, 11)]
    [InlineData("root ::= \"\\x4\"", "Escape '\\x4' needs 2 hex digits", 1, 11)]
    [InlineData("root ::= \"\\U00110000\"", "Escape '\\U00110000' is beyond U+10FFFF", 1, 11)]
    [InlineData("root ::= \"\\uD800\"", "Escape '\\uD800' is a surrogate, not a character", 1, 11)]
    [InlineData("root ::= <[12]>", "Token references (<[id]>, !<[id]>) are not supported: a grammar matches text", 1, 10)]
    [InlineData("root ::= \"a\"\n\nroot ::= \"b\"", "Rule 'root' is defined twice (first at line 1, column 1)", 3, 1)]
    [InlineData("root ::= expr\nexpr ::= expr \"+\" term | term\nterm ::= [0-9]", "Rule 'expr' is left-recursive: it can reach itself without matching a character", 2, 1)]
    [InlineData("root ::= a root \"x\" | \"y\"\na ::= \"z\"?", "Rule 'root' is left-recursive: it can reach itself without matching a character", 1, 1)]
    [InlineData("root ::= (\"a\"?)*", "Rule 'root' is left-recursive: it can reach itself without matching a character", 1, 1)]
    public void Names_the_problem_line_and_column(string gbnf, string problem, int line, int column)
    {
        var e = Assert.Throws<GrammarException>(() => Grammar.FromGbnf(gbnf));
        Assert.Equal(problem, e.Problem);
        Assert.Equal(line, e.Line);
        Assert.Equal(column, e.Column);
        Assert.Equal($"{problem} (line {line}, column {column})", e.Message);
        Assert.IsAssignableFrom<FormatException>(e);
    }

    [Fact]
    public void A_missing_root_is_an_error_without_a_place()
    {
        var e = Assert.Throws<GrammarException>(() => Grammar.FromGbnf("item ::= \"a\"\n"));
        Assert.Equal("The grammar has no rule 'root' (the root rule).", e.Message);
        Assert.Null(e.Line);
        Assert.Equal("The grammar has no rule 'start' (the root rule).",
            Assert.Throws<GrammarException>(() => Grammar.FromGbnf("root ::= \"a\"", root: "start")).Message);
    }

    [Fact]
    public void Bounds_nesting_without_overflowing_the_stack()
    {
        var e = Assert.Throws<GrammarException>(() => Grammar.FromGbnf("root ::= " + new string('(', 100_000) + "\"a\""));
        Assert.Equal("Parentheses nest deeper than 64", e.Problem);
        Assert.Equal(74, e.Column);
        var ok = Grammar.FromGbnf("root ::= " + new string('(', 64) + "\"a\"" + new string(')', 64));
        Assert.True(ok.CreateMatcher().TryAccept("a"));
    }

    [Fact]
    public void Bounds_the_size_of_the_expanded_grammar()
    {
        var e = Assert.Throws<GrammarException>(() => Grammar.FromGbnf("root ::= \"abcdefghijk\"{100000}"));
        Assert.Equal("The grammar expands to more than 1048576 elements (repetitions are copied out)", e.Problem);
        Assert.Equal((1, 23), (e.Line, e.Column));
        // Repeated groups are references to one rule: nesting them grows the grammar by the sum of the bounds, not the product.
        var nested = Grammar.FromGbnf("root ::= (((\"a\"{1000}){1000}){1000})");
        Assert.Equal(4, nested.RuleCount);
    }

    [Fact]
    public void Long_rule_chains_parse_check_and_match_without_recursion()
    {
        const int n = 20_000;
        var text = string.Join('\n', Enumerable.Range(0, n).Select(i => $"r{i} ::= r{i + 1}")) + $"\nr{n} ::= \"x\"";
        var g = Grammar.FromGbnf(text, root: "r0");
        var m = g.CreateMatcher();
        Assert.True(m.TryAccept("x"));
        Assert.True(m.IsComplete);
        var cyclic = text.Replace($"r{n} ::= \"x\"", $"r{n} ::= r0 \"x\"");
        Assert.Equal("Rule 'r0' is left-recursive: it can reach itself without matching a character",
            Assert.Throws<GrammarException>(() => Grammar.FromGbnf(cyclic, root: "r0")).Problem);
    }
}

using ManagedLM.Grammars;

namespace ManagedLM.Tests.Grammars;

public class JsonSchemaPatternTests
{
    static string Schema(string pattern) =>
        "{\"type\":\"string\",\"pattern\":" + System.Text.Json.JsonSerializer.Serialize(pattern) + "}";

    public static TheoryData<string, string[], string[]> Patterns => new()
    {
        { "^[a-z]+$", ["a", "xyz"], ["", "A", "ab1"] },
        { "^\\d{3}-\\d{4}$", ["555-1234"], ["5551234", "55-1234", "555-12345"] },
        { "^(cat|dog)s?$", ["cat", "dogs"], ["cats!", "bird", ""] },
        { "^a{2,3}b{2,}c{1}$", ["aabbc", "aaabbbbc"], ["abbc", "aaaabbc", "aabc"] },
        { "^[^0-9\\s]*$", ["abc", "", "é!"], ["a1", "a b"] },
        { "^\\w+@\\w+\\.com$", ["me@site.com"], ["me@site.org", "@site.com"] },
        { "^[A-Z][a-z]*( [A-Z][a-z]*)*$", ["Ann", "Ann Lee"], ["ann", "Ann  Lee", "Ann "] },
        { "^.$", ["a", "\\\"", "\\\\", "é"], ["", "ab", "\\n"] },
        { "^\\.\\*\\[x\\]$", [".*[x]"], ["a*[x]"] },
        { "^a\"b\\\\c$", ["a\\\"b\\\\c"], ["a\"b"] },
        { "ab", ["ab", "xaby", "xxab"], ["a", "ba"] },
        { "^ab", ["ab", "abz"], ["zab"] },
        { "ab$", ["ab", "zab"], ["abz"] },
        { "^(?:x|y)(?<tail>z)?$", ["x", "yz"], ["z", "xzz"] },
        { "^[\\x41-\\x43\\u00e9]+$", ["ABC", "é", "Aé"], ["D", "e"] },
        { "^(a|)b$", ["ab", "b"], ["aab"] },
        { "^[-+]?[0-9]+(\\.[0-9]+)?$", ["-1.5", "+2", "30"], ["1.", ".5", "--1"] },
        { "^\\t\\n$", ["\\t\\n"], ["\\t"] },
        { "^x+?y{1,2}?$", ["xy", "xxyy"], ["y", "xyyy"] },
        { "^a{0}b$", ["b"], ["ab"] },
        { "^$", [""], ["a"] },
        { "^[\\]\\\\-]+$", ["]", "\\\\-]", "-"], ["a", ""] },
        { "^\\S{2}$", ["ab", "é!"], ["a b", "abc"] },
        { "^[^\\d]$", ["a", "\\\""], ["5", ""] },
        { "^\\u0041\\x42\\/$", ["AB/"], ["AB\\\\/"] },
        { "^(a|b|)c{0,2}$", ["", "a", "bcc", "cc"], ["abc", "ccc"] },
        { "^x$|^$", ["x", ""], ["xx"] },
    };

    [Theory]
    [MemberData(nameof(Patterns))]
    public void Pattern_grammar_matches_what_the_regex_matches(string pattern, string[] valid, string[] invalid)
    {
        string Quoted(string contents) => "\"" + contents + "\"";
        JsonSchemaAssert.GrammarMatches(Schema(pattern), valid.Select(Quoted), invalid.Select(Quoted), seed: 99);
    }

    [Theory]
    [InlineData("^(a)\\1$", "backreferences")]
    [InlineData("^(?=a)a$", "lookaround")]
    [InlineData("^(?<!a)b$", "lookaround")]
    [InlineData("\\bword\\b", "word boundary")]
    [InlineData("^a$b", "anchor '$' inside the pattern")]
    [InlineData("a^b", "anchor '^' inside the pattern")]
    [InlineData("^\\p{L}+$", "Unicode property")]
    [InlineData("^(a", "missing ')'")]
    [InlineData("^[a-", "missing ']'")]
    [InlineData("^[z-a]$", "range out of order")]
    [InlineData("^*a$", "nothing to repeat")]
    [InlineData("^a**$", "nested quantifier")]
    [InlineData("^a{5000}$", "repetition count above 4096")]
    [InlineData("^a{3,2}$", "n < m")]
    [InlineData("^\\q$", "unknown escape")]
    [InlineData("^[]a$", "character class matches no character")]
    public void Non_regular_or_malformed_patterns_are_errors_naming_the_problem(string pattern, string message)
    {
        var error = Assert.Throws<JsonSchemaException>(() => JsonSchemaGrammar.ToGbnf(Schema(pattern)));
        Assert.Equal("#/pattern", error.Path);
        Assert.Contains(message, error.Message);
        Assert.Contains(pattern, error.Message);
    }

    [Fact]
    public void Pattern_with_length_bounds_is_an_error_not_a_silent_drop()
    {
        var error = Assert.Throws<JsonSchemaException>(() =>
            JsonSchemaGrammar.ToGbnf("""{"type":"string","pattern":"^a+$","maxLength":3}"""));
        Assert.Contains("pattern together with minLength, maxLength or format", error.Message);
    }
}

using System.Globalization;
using ManagedLM.Grammars;

namespace ManagedLM.Tests.Grammars;

public class JsonSchemaNumberRangeTests
{
    static JsonSchemaGbnfRecognizer Grammar(string schema) => new(JsonSchemaGrammar.ToGbnf(schema));

    static string Bound(string keyword, long? value) => value is { } v ? $",\"{keyword}\":{v}" : "";

    public static TheoryData<long?, long?> IntegerRanges => new()
    {
        { 0, null }, { null, 0 }, { 1, null }, { -1, null }, { null, -1 }, { 5, 5 }, { 0, 0 }, { -7, -7 },
        { 0, 9 }, { 0, 10 }, { 1, 99 }, { 10, 99 }, { 10, 100 }, { 11, 98 }, { 7, 1000 }, { 123, 987 },
        { 19, 210 }, { 99, 1001 }, { 100, 199 }, { 109, 190 }, { -9, 9 }, { -10, 10 }, { -123, 45 },
        { -1000, -999 }, { -1100, -101 }, { -1, 0 }, { -99, -10 }, { 250, 1150 }, { -1199, 1199 }, { 1001, null },
        { null, -1001 }, { 555, 565 }, { -565, -555 }, { 990, 1010 }, { 3, 1100 },
    };

    public static TheoryData<long?, long?> RandomIntegerRanges()
    {
        var random = new Random(15);
        var data = new TheoryData<long?, long?>();
        for (int i = 0; i < 25; i++)
        {
            long a = random.Next(-1300, 1301), b = random.Next(-1300, 1301);
            data.Add(Math.Min(a, b), Math.Max(a, b));
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(IntegerRanges))]
    [MemberData(nameof(RandomIntegerRanges))]
    public void Integer_bounds_admit_exactly_the_integers_in_range(long? min, long? max)
    {
        var grammar = Grammar($"{{\"type\":\"integer\"{Bound("minimum", min)}{Bound("maximum", max)}}}");
        for (long n = -1200; n <= 1200; n++)
        {
            bool inRange = (min is null || n >= min) && (max is null || n <= max);
            Assert.True(inRange == grammar.Accepts(n.ToString(CultureInfo.InvariantCulture)), $"{n} in [{min}, {max}]: expected {inRange}");
        }
    }

    [Theory]
    [InlineData(0, 10)]
    [InlineData(-5, 5)]
    [InlineData(-100, -3)]
    public void Exclusive_integer_bounds_leave_out_the_bounds(long low, long high)
    {
        var grammar = Grammar($"{{\"type\":\"integer\",\"exclusiveMinimum\":{low},\"exclusiveMaximum\":{high}}}");
        for (long n = -150; n <= 150; n++)
            Assert.Equal(n > low && n < high, grammar.Accepts(n.ToString(CultureInfo.InvariantCulture)));
    }

    [Fact]
    public void Draft4_boolean_exclusive_bounds_and_fractional_bounds_round_inward()
    {
        var draft4 = Grammar("""{"type":"integer","minimum":3,"exclusiveMinimum":true,"maximum":8,"exclusiveMaximum":true}""");
        var fractional = Grammar("""{"type":"integer","minimum":2.5,"maximum":7.5}""");
        for (int n = -2; n <= 12; n++)
        {
            Assert.Equal(n is > 3 and < 8, draft4.Accepts(n.ToString(CultureInfo.InvariantCulture)));
            Assert.Equal(n is >= 3 and <= 7, fractional.Accepts(n.ToString(CultureInfo.InvariantCulture)));
        }
    }

    [Theory]
    [InlineData("-0")]
    [InlineData("007")]
    [InlineData("+5")]
    [InlineData("5.0")]
    [InlineData("1e2")]
    [InlineData("")]
    public void Bounded_integers_are_canonical_numerals(string numeral)
    {
        Assert.False(Grammar("""{"type":"integer","minimum":-10,"maximum":200}""").Accepts(numeral));
    }

    [Fact]
    public void Large_bounds_are_exact_at_their_edges()
    {
        var grammar = Grammar("""{"type":"integer","minimum":-123456789012,"maximum":987654321098765}""");
        foreach (long edge in new[] { -123456789012L, 987654321098765L })
            for (long delta = -1001; delta <= 1001; delta += 7)
            {
                long n = edge + delta;
                Assert.Equal(n >= -123456789012L && n <= 987654321098765L, grammar.Accepts(n.ToString(CultureInfo.InvariantCulture)));
            }
        Assert.True(grammar.Accepts("0"));
        Assert.False(grammar.Accepts("9876543210987650"));
    }

    [Fact]
    public void Unbounded_side_stops_at_sixteen_digits()
    {
        var grammar = Grammar("""{"type":"integer","minimum":0}""");
        Assert.True(grammar.Accepts("9999999999999999"));
        Assert.False(grammar.Accepts("10000000000000000"));
    }

    public static TheoryData<string, string?, string?> DecimalRanges => new()
    {
        { "minimum/maximum", "0", "1" },
        { "minimum/maximum", "-2.5", "3.75" },
        { "exclusiveMinimum/exclusiveMaximum", "-2.5", "3.75" },
        { "minimum/exclusiveMaximum", "0.25", "0.75" },
        { "exclusiveMinimum/maximum", "0.25", "0.3" },
        { "minimum/maximum", "-0.05", "-0.01" },
        { "exclusiveMinimum/exclusiveMaximum", "-1", "0" },
        { "minimum/maximum", "1.5", "1.5" },
        { "minimum/maximum", "-9.99", "9.99" },
        { "minimum/", "0", null },
        { "exclusiveMinimum/", "0", null },
        { "/maximum", null, "-3.3" },
        { "/exclusiveMaximum", null, "2" },
        { "minimum/maximum", "0.125", "7.875" },
    };

    [Theory]
    [MemberData(nameof(DecimalRanges))]
    public void Number_bounds_admit_exactly_the_numbers_in_range(string keywords, string? low, string? high)
    {
        var names = keywords.Split('/');
        var schema = "{\"type\":\"number\"" + (low is null ? "" : $",\"{names[0]}\":{low}") + (high is null ? "" : $",\"{names[1]}\":{high}") + "}";
        var grammar = Grammar(schema);
        decimal? lo = low is null ? null : decimal.Parse(low, CultureInfo.InvariantCulture);
        decimal? hi = high is null ? null : decimal.Parse(high, CultureInfo.InvariantCulture);
        bool loInclusive = names[0] == "minimum", hiInclusive = names[1] == "maximum";
        for (int k = -1200; k <= 1200; k++)
        {
            foreach (var numeral in Numerals(k))
            {
                decimal x = decimal.Parse(numeral, CultureInfo.InvariantCulture);
                bool inRange = (lo is not { } l || (loInclusive ? x >= l : x > l)) && (hi is not { } h || (hiInclusive ? x <= h : x < h));
                Assert.True(inRange == grammar.Accepts(numeral), $"{numeral} for {schema}: expected {inRange}");
            }
        }
    }

    /// <summary>Spellings of k/100 and k/1000 with and without trailing digits.</summary>
    static IEnumerable<string> Numerals(int k)
    {
        decimal hundredths = k / 100m;
        yield return hundredths.ToString("0.00", CultureInfo.InvariantCulture);
        yield return (k / 1000m).ToString("0.000", CultureInfo.InvariantCulture);
        yield return (k / 1000m + 0.0001m * Math.Sign(k)).ToString("0.0000", CultureInfo.InvariantCulture);
        if (k % 100 == 0) yield return (k / 100).ToString(CultureInfo.InvariantCulture);
        if (k % 10 == 0) yield return (k / 10m).ToString("0.0", CultureInfo.InvariantCulture);
    }

    [Fact]
    public void Bounded_numbers_reject_exponents_and_negative_zero_outside_range()
    {
        var grammar = Grammar("""{"type":"number","minimum":0.5,"maximum":100}""");
        Assert.True(grammar.Accepts("100"));
        Assert.True(grammar.Accepts("100.000"));
        Assert.False(grammar.Accepts("100.0001"));
        Assert.False(grammar.Accepts("1e1"));
        Assert.False(grammar.Accepts("0.4999999999999999"));
        Assert.True(grammar.Accepts("0.5000000000000001"));
        Assert.False(Grammar("""{"type":"number","exclusiveMinimum":0}""").Accepts("0.0000000000000000"));
    }

    [Fact]
    public void Bounds_beyond_the_digit_limit_on_the_open_side_leave_that_side_at_the_limit()
    {
        var number = Grammar("""{"type":"number","maximum":1e400,"minimum":-1.5e30}""");
        foreach (var numeral in new[] { "0", "-3.5", "9999999999999999.5", "-9999999999999999" })
            Assert.True(number.Accepts(numeral), numeral);
        Assert.False(number.Accepts("1e5"));
        var integer = Grammar("""{"type":"integer","minimum":-1e400,"maximum":3}""");
        Assert.True(integer.Accepts("-9999999999999999"));
        Assert.True(integer.Accepts("3"));
        Assert.False(integer.Accepts("4"));
    }

    [Theory]
    [InlineData("""{"type":"integer","minimum":5,"maximum":4}""", "#", "no integer lies between")]
    [InlineData("""{"type":"integer","minimum":4.2,"maximum":4.8}""", "#", "no integer lies between")]
    [InlineData("""{"type":"number","exclusiveMinimum":1,"exclusiveMaximum":1}""", "#", "no number lies between")]
    [InlineData("""{"type":"integer","minimum":1e20}""", "#/minimum", "beyond the 16-digit integers")]
    [InlineData("""{"type":"number","maximum":-1e17}""", "#/maximum", "beyond the 16-digit numbers")]
    [InlineData("""{"type":"number","minimum":"3"}""", "#/minimum", "must be a number")]
    [InlineData("""{"type":"number","minimum":1e-30}""", "#/minimum", "1e-30 has more precision than the 28 significant digits supported")]
    [InlineData("""{"type":"integer","maximum":0.10000000000000000000000000000001}""", "#/maximum", "more precision than the 28 significant digits")]
    [InlineData("""{"type":"integer","exclusiveMinimum":true}""", "#/exclusiveMinimum", "true without minimum")]
    [InlineData("""{"type":"number","multipleOf":0.5}""", "#/multipleOf", "keyword 'multipleOf' is not supported")]
    public void Unsatisfiable_or_unsupported_bounds_are_errors_naming_them(string schema, string path, string message)
    {
        var error = Assert.Throws<JsonSchemaException>(() => JsonSchemaGrammar.ToGbnf(schema));
        Assert.Equal(path, error.Path);
        Assert.Contains(message, error.Message);
    }
}

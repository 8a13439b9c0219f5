using System.Buffers;
using System.Globalization;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using ManagedLM.Grammars;

namespace ManagedLM.Tests.Grammars;

/// <summary>
/// Random grammars, strings drawn from them and mutations of those strings, judged by the matcher and by an
/// independent recognizer over the grammar's syntax tree (sets of positions, no parse stacks, no lowering).
/// </summary>
public class GrammarPropertyTests
{
    private abstract record Node;
    private sealed record Literal(int[] CodePoints) : Node;
    private sealed record CharClass((int Lo, int Hi)[] Ranges, bool Negated) : Node;
    private sealed record AnyChar : Node;
    private sealed record RuleRef(int Rule) : Node;
    private sealed record Sequence(Node[] Items) : Node;
    private sealed record Choice(Node[] Options) : Node;
    private sealed record Repeat(Node Item, int Min, int Max) : Node;

    private static readonly int[] Alphabet = ['a', 'b', 'c', '"', '\\', '\n', '-', ']', 0xE9, 0x4E2D, 0x1F600];

    [Fact]
    public void Strings_of_random_grammars_are_accepted_and_mutations_are_judged_as_a_backtracking_recognizer_does()
    {
        // 200 fixed seeds: the same grammars on every run. A grammar so ambiguous that the matcher refuses it within its
        // limits (a clear InvalidOperationException, never a wrong answer) is set aside; few are.
        int refused = 0;
        for (int seed = 0; seed < 200; seed++)
        {
            var rng = new Random(seed);
            var rules = RandomRules(rng);
            string gbnf = Render(rules);
            var grammar = Grammar.FromGbnf(gbnf);
            GrammarMatcher matcher;
            try
            {
                matcher = grammar.CreateMatcher();
            }
            catch (InvalidOperationException e) when (e.Message.Contains("exceeded its limits", StringComparison.Ordinal))
            {
                refused++;
                continue;
            }
            for (int sample = 0; sample < 4; sample++)
            {
                var text = new List<int>();
                Generate(rules, rules[0], rng, text);
                byte[] bytes = Utf8(text);
                Assert.True(Recognizes(rules, text.ToArray()), gbnf);
                matcher.Reset();
                foreach (byte b in bytes)
                    Assert.True(matcher.TryAccept([b]), $"{gbnf}\nrejected a byte of {Show(text)}");
                Assert.True(matcher.IsComplete, $"{gbnf}\nnot complete after {Show(text)}");
                for (int mutation = 0; mutation < 12; mutation++)
                {
                    byte[] mutated = Mutate(bytes, rng);
                    matcher.Reset();
                    bool accepted = matcher.TryAccept(mutated) && matcher.IsComplete;
                    bool expected = Decode(mutated) is { } codePoints && Recognizes(rules, codePoints);
                    Assert.True(expected == accepted, $"{gbnf}\n{Convert.ToHexString(mutated)}: recognizer {expected}, matcher {accepted}");
                }
            }
        }
        Assert.True(refused < 10, $"{refused} of 200 random grammars refused as too ambiguous");
    }

    private static readonly string[] ValidFragments =
        [" x", " \"ab\"", " [a-z]", " [^\\n]", " .", " (x | \"y\")", " ( \"é\"", " )", "*", "+", "?", "{2}", "{1,3}", " |", " #c\n"];

    private static readonly string[] NoiseFragments =
    [
        "root", " ::= ", "root-2", "\n", "(", ")", "{", "}", ",", "0", "99999999", "\"", "\\", "\\x4", "\\u00e9",
        "\\U00110000", "\\q", "[", "]", "^", "-", "é", "\uD800", "<[1]>", "\r\n",
    ];

    [Fact]
    public void Any_text_is_a_grammar_or_a_grammar_exception_and_matching_it_fails_only_at_the_limits()
    {
        string[] fragments = [.. Enumerable.Repeat(ValidFragments, 4).SelectMany(f => f), .. NoiseFragments];
        var gen = Gen.ArrayOf(Gen.Elements(fragments)).Select(f => string.Concat(f));
        int parsed = 0, rejected = 0;
        Prop.ForAll(gen.ToArbitrary(), text =>
        {
            Grammar grammar;
            try
            {
                grammar = Grammar.FromGbnf("x ::= \"x\" | [a-z]\nroot ::= " + text);
            }
            catch (GrammarException e)
            {
                Assert.NotNull(e.Line);
                rejected++;
                return;
            }
            parsed++;
            var m = grammar.CreateMatcher();
            foreach (string input in new[] { "x", "ab", "é", "xxxxxxxxxx", text })
            {
                m.Reset();
                try
                {
                    m.TryAccept(input);
                }
                catch (InvalidOperationException e)
                {
                    Assert.StartsWith("The grammar matcher exceeded its limits", e.Message);
                }
            }
        }).Check(ManagedLM.Tests.Kernels.KernelGen.Fixed.WithMaxTest(1000));
        Assert.True(parsed > 50 && rejected > 50, $"{parsed} parsed, {rejected} rejected");
    }

    private static Node[] RandomRules(Random rng)
    {
        var rules = new Node[rng.Next(1, 4)];
        for (int r = rules.Length - 1; r >= 0; r--)
            rules[r] = RandomNode(rng, rules, r, 0);
        return rules;
    }

    // References only point to later rules: the recognizer needs no recursion guard.
    private static Node RandomNode(Random rng, Node[] rules, int rule, int depth)
    {
        int kind = rng.Next(depth >= 3 ? 4 : 7);
        switch (kind)
        {
            case 0:
                return new Literal(Enumerable.Range(0, rng.Next(1, 4)).Select(_ => Alphabet[rng.Next(Alphabet.Length)]).ToArray());
            case 1:
                var ranges = Enumerable.Range(0, rng.Next(1, 3)).Select(_ =>
                {
                    int a = Alphabet[rng.Next(Alphabet.Length)], b = Alphabet[rng.Next(Alphabet.Length)];
                    return (Math.Min(a, b), Math.Max(a, b));
                }).ToArray();
                return new CharClass(ranges, rng.Next(4) == 0);
            case 2:
                return rng.Next(3) == 0 ? new AnyChar() : new Literal([Alphabet[rng.Next(Alphabet.Length)]]);
            case 3:
                return rule + 1 < rules.Length ? new RuleRef(rng.Next(rule + 1, rules.Length)) : new Literal(['a']);
            case 4:
                return new Sequence(Enumerable.Range(0, rng.Next(2, 4)).Select(_ => RandomNode(rng, rules, rule, depth + 1)).ToArray());
            case 5:
                return new Choice(Enumerable.Range(0, rng.Next(2, 4)).Select(_ => RandomNode(rng, rules, rule, depth + 1)).ToArray());
            default:
                var item = RandomNode(rng, rules, rule, depth + 1);
                int min = rng.Next(3);
                // An unbounded repetition of something that can be empty is left recursion (rejected, as in llama.cpp).
                int max = rng.Next(3) == 0 && !Nullable(rules, item) ? -1 : min + rng.Next(3);
                return new Repeat(item, min, max);
        }
    }

    private static bool Nullable(Node[] rules, Node node) => node switch
    {
        RuleRef r => Nullable(rules, rules[r.Rule]),
        Sequence s => s.Items.All(i => Nullable(rules, i)),
        Choice c => c.Options.Any(o => Nullable(rules, o)),
        Repeat r => r.Min == 0 || Nullable(rules, r.Item),
        _ => false,
    };

    private static string Render(Node[] rules) =>
        string.Concat(rules.Select((n, i) => $"{(i == 0 ? "root" : $"r{i}")} ::= {Render(n)}\n"));

    private static string Render(Node node) => node switch
    {
        Literal l => "\"" + string.Concat(l.CodePoints.Select(c => c switch
        {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            _ => char.ConvertFromUtf32(c),
        })) + "\"",
        CharClass c => "[" + (c.Negated ? "^" : "") + string.Concat(c.Ranges.Select(r => Hex(r.Lo) + "-" + Hex(r.Hi))) + "]",
        AnyChar => ".",
        RuleRef r => $"r{r.Rule}",
        Sequence s => "(" + string.Join(" ", s.Items.Select(Render)) + ")",
        Choice c => "(" + string.Join(" | ", c.Options.Select(Render)) + ")",
        Repeat r => "(" + Render(r.Item) + ")" + (r.Min, r.Max) switch
        {
            (0, 1) => "?",
            (0, -1) => "*",
            (1, -1) => "+",
            (_, -1) => $"{{{r.Min},}}",
            _ when r.Min == r.Max => $"{{{r.Min}}}",
            _ => $"{{{r.Min},{r.Max}}}",
        },
        _ => throw new ArgumentOutOfRangeException(nameof(node)),
    };

    private static string Hex(int c) => "\\U" + c.ToString("X8", CultureInfo.InvariantCulture);

    private static void Generate(Node[] rules, Node node, Random rng, List<int> text)
    {
        switch (node)
        {
            case Literal l:
                text.AddRange(l.CodePoints);
                break;
            case CharClass c when !c.Negated:
                var range = c.Ranges[rng.Next(c.Ranges.Length)];
                int cp;
                do cp = rng.Next(range.Lo, range.Hi + 1); while (cp is >= 0xD800 and <= 0xDFFF);
                text.Add(cp);
                break;
            case CharClass c:
                var outside = Alphabet.Append(0x01).Append(0x3042).Append(0x10FFFF).Where(a => !c.Ranges.Any(r => r.Lo <= a && a <= r.Hi)).ToArray();
                text.Add(outside[rng.Next(outside.Length)]);
                break;
            case AnyChar:
                text.Add(Alphabet[rng.Next(Alphabet.Length)]);
                break;
            case RuleRef r:
                Generate(rules, rules[r.Rule], rng, text);
                break;
            case Sequence s:
                foreach (var item in s.Items)
                    Generate(rules, item, rng, text);
                break;
            case Choice c:
                Generate(rules, c.Options[rng.Next(c.Options.Length)], rng, text);
                break;
            case Repeat r:
                int count = rng.Next(r.Min, (r.Max < 0 ? r.Min + 3 : r.Max) + 1);
                for (int i = 0; i < count; i++)
                    Generate(rules, r.Item, rng, text);
                break;
        }
    }

    private static bool Recognizes(Node[] rules, int[] text) => Ends(rules, rules[0], text, [0]).Contains(text.Length);

    /// <summary>Every position where <paramref name="node"/> can end when it starts at one of <paramref name="starts"/>.</summary>
    private static HashSet<int> Ends(Node[] rules, Node node, int[] text, HashSet<int> starts)
    {
        switch (node)
        {
            case Literal l:
                return starts.Where(s => text.AsSpan(s).StartsWith(l.CodePoints)).Select(s => s + l.CodePoints.Length).ToHashSet();
            case CharClass c:
                return starts.Where(s => s < text.Length && c.Ranges.Any(r => r.Lo <= text[s] && text[s] <= r.Hi) != c.Negated).Select(s => s + 1).ToHashSet();
            case AnyChar:
                return starts.Where(s => s < text.Length).Select(s => s + 1).ToHashSet();
            case RuleRef r:
                return Ends(rules, rules[r.Rule], text, starts);
            case Sequence s:
                return s.Items.Aggregate(starts, (at, item) => Ends(rules, item, text, at));
            case Choice c:
                return c.Options.SelectMany(o => Ends(rules, o, text, starts)).ToHashSet();
            case Repeat r:
                var current = starts;
                for (int i = 0; i < r.Min; i++)
                    current = Ends(rules, r.Item, text, current);
                var all = new HashSet<int>(current);
                for (int i = r.Min; r.Max < 0 || i < r.Max; i++)
                {
                    current = Ends(rules, r.Item, text, current);
                    current.ExceptWith(all);
                    if (current.Count == 0)
                        break;
                    all.UnionWith(current);
                }
                return all;
            default:
                throw new ArgumentOutOfRangeException(nameof(node));
        }
    }

    private static byte[] Mutate(byte[] bytes, Random rng)
    {
        var list = bytes.ToList();
        byte[] pool = Utf8(Alphabet).Concat(new byte[] { 0x80, 0xBF, 0xC3, 0xFF, (byte)rng.Next(256) }).ToArray();
        int at = rng.Next(list.Count + 1);
        switch (rng.Next(3))
        {
            case 0 when at < list.Count:
                list[at] = pool[rng.Next(pool.Length)];
                break;
            case 1 when at < list.Count:
                list.RemoveAt(at);
                break;
            default:
                list.Insert(at, pool[rng.Next(pool.Length)]);
                break;
        }
        return [.. list];
    }

    private static byte[] Utf8(IEnumerable<int> codePoints) =>
        Encoding.UTF8.GetBytes(string.Concat(codePoints.Select(char.ConvertFromUtf32)));

    /// <summary>The code points of valid UTF-8, or null.</summary>
    private static int[]? Decode(byte[] bytes)
    {
        var result = new List<int>();
        var span = bytes.AsSpan();
        while (!span.IsEmpty)
        {
            if (Rune.DecodeFromUtf8(span, out var rune, out int consumed) != OperationStatus.Done)
                return null;
            result.Add(rune.Value);
            span = span[consumed..];
        }
        return [.. result];
    }

    private static string Show(List<int> text) => string.Concat(text.Select(char.ConvertFromUtf32));
}

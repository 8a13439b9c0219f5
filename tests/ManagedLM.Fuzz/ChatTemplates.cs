using System.Text;
using ManagedLM.Gguf;

namespace ManagedLM.Fuzz;

/// <summary>Chat templates that a model file may carry: the issue's deep reproductions, broken ones, damaged real ones.</summary>
internal static class ChatTemplates
{
    private const string Key = "tokenizer.chat_template";

    private static readonly string[] Pieces =
    [
        "{%", "%}", "{{", "}}", "{#", "#}", "(", ")", "[", "]", "{", "}", "|", ".", ",", "'", "\"", " not ", " and ", "~", "+", "*",
        "{% endif %}", "{% endfor %}", "{% if true %}", "{% for m in messages %}", "{{ messages }}", "{% set x = 1 %}", "\n", "-",
    ];

    /// <summary>Sets the image's template to a deep, broken or damaged one; returns what it did.</summary>
    public static string Mutate(GgufImage image, IReadOnlyList<string> realTemplates, FuzzRandom rng)
    {
        var (template, what) = rng.Next(3) switch
        {
            0 => Deep(rng),
            1 => Broken(rng),
            _ => Damaged(rng.Pick(realTemplates), rng),
        };
        image.Set(Key, GgufValue.Of(template));
        return $"{Key}: {what} ({template.Length} chars)";
    }

    // The reproductions of issue 13 (deep nesting that overflowed the stack while parsing or rendering), at several depths.
    private static (string, string) Deep(FuzzRandom rng)
    {
        int depth = rng.Pick([200, 1000, 5000, 20000, 50000]);
        string Repeat(string s, int n) => new StringBuilder(s.Length * n).Insert(0, s, n).ToString();
        return rng.Next(10) switch
        {
            0 => ("{{ " + Repeat("(", depth) + "1" + Repeat(")", depth) + " }}", $"{depth} nested parentheses"),
            1 => (Repeat("{% if true %}", depth) + "x" + Repeat("{% endif %}", depth), $"{depth} nested ifs"),
            2 => ("{{ " + Repeat("[", depth) + "1" + Repeat("]", depth) + " }}", $"{depth} nested lists"),
            3 => ("{{ " + Repeat("{'a':", depth) + "1" + Repeat("}", depth) + " }}", $"{depth} nested dicts"),
            4 => ("{{ " + Repeat("x|f(", depth) + "1" + Repeat(")", depth) + " }}", $"{depth} nested filter calls"),
            5 => ("{{ " + Repeat("not ", depth * 2) + "1 }}", $"{depth * 2} nots"),
            6 => (Repeat("{% for m in messages %}", depth) + "x" + Repeat("{% endfor %}", depth), $"{depth} nested loops"),
            7 => ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "unbounded macro recursion"),
            8 => ("{{ " + Repeat("-", depth) + "1 }}", $"{depth} unary minuses"),
            _ => ("{{ 1" + Repeat(" + 1", depth) + " }}", $"a sum of {depth} terms"),
        };
    }

    private static (string, string) Broken(FuzzRandom rng) => rng.Next(14) switch
    {
        0 => ("{{ messages[0]['content'] ", "an unterminated expression"),
        1 => ("{% if true %}x", "a missing endif"),
        2 => ("{% endfor %}", "a stray endfor"),
        3 => ("{{ 'a' | no_such_filter }}", "an unknown filter"),
        4 => ("{{ raise_exception('boom') }}", "raise_exception"),
        5 => ("{{ messages[100]['content'] }}", "an index past the conversation"),
        6 => ("{{ 1 / 0 }}", "a division by zero"),
        7 => ("{% for i in range(1000000000) %}{{ i }}{% endfor %}", "a billion-step loop"),
        8 => ("{{ 'a' * 1000000000 }}", "a gigabyte string"),
        9 => ("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}", "a string doubled 64 times"),
        10 => ("\0{{\0}}\uFFFF\uD800", "control characters and a lone surrogate"),
        11 => ("{% for m in messages %}{{ m.role }}{% endfor %}{{ x.y.z() }}", "an undefined call"),
        12 => ("{{ messages | tojson(indent=1000000000) }}", "a huge indent"),
        _ => ("{% set x = [1] %}{% for i in range(40) %}{% set x = x + x %}{% endfor %}{{ x | length }}", "a list doubled 40 times"),
    };

    // A real template with a few random edits: cut, deleted or duplicated spans, inserted Jinja pieces.
    private static (string, string) Damaged(string template, FuzzRandom rng)
    {
        var s = new StringBuilder(template);
        var edits = new List<string>();
        int count = rng.Next(1, 6);
        for (int i = 0; i < count && s.Length > 0; i++)
        {
            int at = rng.Next(s.Length);
            switch (rng.Next(4))
            {
                case 0:
                    s.Length = at;
                    edits.Add($"cut at {at}");
                    break;
                case 1:
                    int n = Math.Min(rng.Next(1, 40), s.Length - at);
                    s.Remove(at, n);
                    edits.Add($"deleted {n} at {at}");
                    break;
                case 2:
                    int m = Math.Min(rng.Next(1, 200), s.Length - at);
                    s.Insert(at, s.ToString(at, m));
                    edits.Add($"duplicated {m} at {at}");
                    break;
                default:
                    string piece = rng.Pick(Pieces);
                    s.Insert(at, piece);
                    edits.Add($"inserted \"{piece.ReplaceLineEndings("\\n")}\" at {at}");
                    break;
            }
        }
        return (s.ToString(), $"a real template with {string.Join(", ", edits)}");
    }
}

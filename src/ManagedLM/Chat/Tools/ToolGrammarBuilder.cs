using System.Text;
using ManagedLM.Grammars;

namespace ManagedLM.Chat.Tools;

/// <summary>Collects the GBNF rules of a tool-call grammar: the tools' argument schemas, embedded under their own rule names, and the format's rules.</summary>
internal sealed class ToolGrammarBuilder
{
    readonly StringBuilder _rules = new();
    readonly HashSet<string> _names = new(StringComparer.Ordinal);
    int _embedded;

    public ToolGrammarBuilder() => Add("ws", "[ \\t\\n]{0,8}");

    /// <summary>Adds rule <paramref name="name"/> (once); returns the name.</summary>
    public string Add(string name, string body)
    {
        if (_names.Add(name)) _rules.Append(name).Append(" ::= ").Append(body).Append('\n');
        return name;
    }

    /// <summary>The rule matching a JSON value valid against the JSON Schema <paramref name="schemaJson"/>.</summary>
    /// <exception cref="JsonSchemaException">The schema is invalid or unsupported.</exception>
    public string Schema(string schemaJson) => Embed(JsonSchemaGrammar.ToGbnf(schemaJson));

    /// <summary>The root rule of the GBNF grammar <paramref name="gbnf"/> (root rule <c>root</c>), its rules embedded under their own names.</summary>
    public string Embed(string gbnf)
    {
        string prefix = $"s{_embedded++}-";
        _rules.Append(Prefixed(gbnf, prefix));
        return prefix + "root";
    }

    /// <summary>A rule matching any text that does not contain <paramref name="marker"/> (then <paramref name="marker"/> may follow).</summary>
    public string TextWithout(string marker)
    {
        string name = $"not{_embedded++}";
        // State k: the text so far ends with marker[..k] and nowhere contains marker; a right-linear rule per state.
        var distinct = marker.Distinct().ToArray();
        for (int k = 0; k < marker.Length; k++)
        {
            var alternatives = new List<string> { "\"\"" };
            foreach (char c in distinct)
            {
                int next = Next(marker, k, c);
                if (next < marker.Length) alternatives.Add($"{GbnfText.Literal(c.ToString())} {name}-{next}");
            }
            alternatives.Add($"[^{Escaped(distinct)}] {name}-0");
            Add($"{name}-{k}", string.Join(" | ", alternatives));
        }
        return name + "-0";
    }

    static string Escaped(char[] chars)
    {
        var sb = new StringBuilder();
        foreach (char c in chars) sb.Append(c < 0x80 && char.IsAsciiLetterOrDigit(c) ? c.ToString() : $"\\u{(int)c:X4}");
        return sb.ToString();
    }

    // KMP transition: the longest prefix of marker that is a suffix of marker[..k] + c.
    static int Next(string marker, int k, char c)
    {
        string text = marker[..k] + c;
        for (int length = Math.Min(text.Length, marker.Length); length > 0; length--)
        {
            if (text.AsSpan(text.Length - length).SequenceEqual(marker.AsSpan(0, length))) return length;
        }
        return 0;
    }

    public string Build(string rootBody) => "root ::= " + rootBody + "\n" + _rules;

    /// <summary><paramref name="gbnf"/> with every rule name prefixed (literals, classes and repetition counts left alone).</summary>
    internal static string Prefixed(string gbnf, string prefix)
    {
        var sb = new StringBuilder(gbnf.Length * 2);
        for (int i = 0; i < gbnf.Length;)
        {
            char c = gbnf[i];
            if (c is '"' or '[')
            {
                char close = c == '"' ? '"' : ']';
                int j = i + 1;
                while (j < gbnf.Length && gbnf[j] != close) j += gbnf[j] == '\\' ? 2 : 1;
                sb.Append(gbnf, i, Math.Min(j + 1, gbnf.Length) - i);
                i = j + 1;
            }
            else if (c == '{')
            {
                int j = gbnf.IndexOf('}', i);
                sb.Append(gbnf, i, j + 1 - i);
                i = j + 1;
            }
            else if (c == '#')
            {
                int j = gbnf.IndexOf('\n', i);
                if (j < 0) j = gbnf.Length;
                i = j;
            }
            else if (char.IsAsciiLetterOrDigit(c) || c == '-')
            {
                int j = i;
                while (j < gbnf.Length && (char.IsAsciiLetterOrDigit(gbnf[j]) || gbnf[j] == '-')) j++;
                sb.Append(prefix).Append(gbnf, i, j - i);
                i = j;
            }
            else
            {
                sb.Append(c);
                i++;
            }
        }
        return sb.ToString();
    }
}

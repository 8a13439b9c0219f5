using System.Collections.Frozen;
using System.Collections.Immutable;

namespace ManagedLM.Grammars;

/// <summary>
/// The fixed rules schemas build on: bounded whitespace, JSON values, and the string formats. Values are written
/// compactly enough to stay finite: at most 16 integer digits, 16 fraction digits and 20 spaces of indentation.
/// </summary>
internal static class JsonSchemaPrimitives
{
    const string Hex = "[0-9a-fA-F]";

    static readonly ImmutableArray<string> Formats = ["date", "time", "date-time", "uuid", "email", "hostname", "ipv4"];

    static readonly FrozenDictionary<string, (string Body, ImmutableArray<string> Dependencies)> Rules = BuildRules();

    static FrozenDictionary<string, (string, ImmutableArray<string>)> BuildRules()
    {
        var rules = new Dictionary<string, (string, ImmutableArray<string>)>(StringComparer.Ordinal)
        {
            ["space"] = ("| \" \" | \"\\n\"{1,2} [ \\t]{0,20}", []),
            ["boolean"] = ("(\"true\" | \"false\") space", ["space"]),
            ["null"] = ("\"null\" space", ["space"]),
            // A JSON string character: raw, or escaped; \u escapes name no surrogate, so every string is valid Unicode.
            ["char"] = (GbnfText.RawCharClassExcept([]) +
                " | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" ([0-9a-cA-CeEfF] " + Hex + "{3} | [dD] [0-7] " + Hex + "{2}))", []),
            ["raw-char"] = (GbnfText.RawCharClassExcept([]), []),
            ["string"] = ("\"\\\"\" char* \"\\\"\" space", ["char", "space"]),
            ["integral-part"] = ("[0] | [1-9] [0-9]{0,15}", []),
            ["decimal-part"] = ("[0-9]{1,16}", []),
            ["integer"] = ("(\"-\"? integral-part) space", ["integral-part", "space"]),
            ["number"] = ("(\"-\"? integral-part) (\".\" decimal-part)? ([eE] [-+]? integral-part)? space", ["integral-part", "decimal-part", "space"]),
            ["value"] = ("object | array | string | number | boolean | null", ["object", "array", "string", "number", "boolean", "null"]),
            ["object"] = ("\"{\" space ( string \":\" space value ( \",\" space string \":\" space value )* )? \"}\" space", ["string", "value", "space"]),
            ["array"] = ("\"[\" space ( value ( \",\" space value )* )? \"]\" space", ["value", "space"]),
            // Years 0001-9999 and days valid in every year (no February 29).
            ["date"] = ("( [0-9]{3} [1-9] | [0-9]{2} [1-9] \"0\" | [0-9] [1-9] \"00\" | [1-9] \"000\" ) \"-\" ( ( \"0\" [13578] | \"1\" [02] ) \"-\" ( \"0\" [1-9] | [12] [0-9] | \"3\" [01] )" +
                " | ( \"0\" [469] | \"11\" ) \"-\" ( \"0\" [1-9] | [12] [0-9] | \"30\" ) | \"02-\" ( \"0\" [1-9] | \"1\" [0-9] | \"2\" [0-8] ) )", []),
            ["time"] = ("( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] \":\" [0-5] [0-9] ( \".\" [0-9]{1,9} )?" +
                " ( \"Z\" | [+-] ( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] )", []),
            ["date-time"] = ("date \"T\" time", ["date", "time"]),
            ["uuid"] = (Hex + "{8} \"-\" " + Hex + "{4} \"-\" " + Hex + "{4} \"-\" " + Hex + "{4} \"-\" " + Hex + "{12}", []),
            // Dot-atom local part and a domain of at least two labels, each letters/digits with inner hyphens.
            ["email"] = ("email-atom ( \".\" email-atom )* \"@\" hostname-label ( \".\" hostname-label )+", ["email-atom", "hostname-label"]),
            ["email-atom"] = ("[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+", []),
            // Labels of at most 62 characters, at most four of them: within the 253 characters a host name may have.
            ["hostname-label"] = ("[a-zA-Z0-9] ( [a-zA-Z0-9-]{0,60} [a-zA-Z0-9] )?", []),
            ["hostname"] = ("hostname-label ( \".\" hostname-label ){0,3}", ["hostname-label"]),
            ["ipv4"] = ("ipv4-octet \".\" ipv4-octet \".\" ipv4-octet \".\" ipv4-octet", ["ipv4-octet"]),
            ["ipv4-octet"] = ("\"25\" [0-5] | \"2\" [0-4] [0-9] | \"1\" [0-9] [0-9] | [1-9] [0-9] | [0-9]", []),
        };
        foreach (var format in Formats) rules[format + "-string"] = ($"\"\\\"\" {format} \"\\\"\" space", [format, "space"]);
        return rules.ToFrozenDictionary(StringComparer.Ordinal);
    }

    public static bool IsPrimitive(string name) => Rules.ContainsKey(name);

    public static bool IsFormat(string format) => Formats.Contains(format);

    public static string Body(string name) => Rules[name].Body;

    /// <summary>The rule and every rule it needs, dependencies first.</summary>
    public static IEnumerable<string> Dependencies(string name)
    {
        var ordered = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        void Add(string rule)
        {
            if (!seen.Add(rule)) return;
            foreach (var dependency in Rules[rule].Dependencies) Add(dependency);
            ordered.Add(rule);
        }
        Add(name);
        return ordered;
    }
}

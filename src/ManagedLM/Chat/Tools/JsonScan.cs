using System.Text;
using System.Text.Json;

namespace ManagedLM.Chat.Tools;

/// <summary>Finds where JSON values in model output end, tolerating text that stops mid-value.</summary>
internal static class JsonScan
{
    /// <summary>The value ended in the text is invalid.</summary>
    public const int Invalid = -2;
    /// <summary>The text ends before the value does.</summary>
    public const int Incomplete = -1;

    const int MaxDepth = 128;

    public static int SkipWhitespace(string s, int i)
    {
        while (i < s.Length && s[i] is ' ' or '\t' or '\n' or '\r') i++;
        return i;
    }

    /// <summary>
    /// The end of the string literal starting at <paramref name="i"/> (a '"'), or <see cref="Incomplete"/>.
    /// </summary>
    public static int StringEnd(string s, int i)
    {
        for (int j = i + 1; j < s.Length; j++)
        {
            if (s[j] == '\\') j++;
            else if (s[j] == '"') return j + 1;
        }
        return Incomplete;
    }

    /// <summary>
    /// The end of the JSON value at <paramref name="i"/>: an object, array, string, number or literal; <see cref="Invalid"/>
    /// when it cannot be one (checked in full by <see cref="IsValid"/>), <see cref="Incomplete"/> when the text stops first.
    /// </summary>
    public static int ValueEnd(string s, int i)
    {
        if (i >= s.Length) return Incomplete;
        char c = s[i];
        if (c == '"') return StringEnd(s, i);
        if (c is not ('{' or '['))
        {
            int j = i;
            while (j < s.Length && (char.IsAsciiLetterOrDigit(s[j]) || s[j] is '-' or '+' or '.')) j++;
            if (j == i) return Invalid;
            return j == s.Length ? Incomplete : j;
        }
        Span<char> open = stackalloc char[MaxDepth];
        int depth = 0;
        for (int j = i; j < s.Length; j++)
        {
            switch (s[j])
            {
                case '"':
                    j = StringEnd(s, j);
                    if (j < 0) return Incomplete;
                    j--;
                    break;
                case '{' or '[':
                    if (depth == MaxDepth) return Invalid;
                    open[depth++] = s[j];
                    break;
                case '}' or ']':
                    if (open[--depth] != (s[j] == '}' ? '{' : '[')) return Invalid;
                    if (depth == 0) return j + 1;
                    break;
            }
        }
        return Incomplete;
    }

    /// <summary>Whether s[start..end] is one JSON value.</summary>
    public static bool IsValid(string s, int start, int end)
    {
        try
        {
            var reader = new Utf8JsonReader(Encoding.UTF8.GetBytes(s, start, end - start), new JsonReaderOptions { MaxDepth = MaxDepth + 1 });
            reader.Read();
            reader.Skip();
            return !reader.Read();
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>s[start..end] without the whitespace outside strings; of a prefix of a value, a prefix of the value's compact form.</summary>
    public static string Compact(string s, int start, int end)
    {
        var sb = new StringBuilder(end - start);
        bool inString = false;
        for (int j = start; j < end; j++)
        {
            char c = s[j];
            if (inString)
            {
                sb.Append(c);
                if (c == '\\' && j + 1 < end) sb.Append(s[++j]);
                else if (c == '"') inString = false;
            }
            else if (c is not (' ' or '\t' or '\n' or '\r'))
            {
                sb.Append(c);
                inString = c == '"';
            }
        }
        return sb.ToString();
    }

    /// <summary>The decoded string literal s[start..end], or null when it is not one.</summary>
    public static string? DecodeString(string s, int start, int end)
    {
        try
        {
            return JsonSerializer.Deserialize<string>(s.AsSpan(start, end - start));
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

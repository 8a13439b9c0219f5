namespace ManagedLM.Tokenization;

/// <summary>A run of input text (<see cref="Token"/> = -1) or one special token found in it.</summary>
internal readonly record struct TextFragment(int Token, int Start, int Length);

/// <summary>
/// llama.cpp's tokenizer_st_partition: each special token, longest first, is cut out of the text
/// fragments that remain, so special tokens never straddle one another. Control and unknown tokens
/// count only when parsing special tokens; user-defined tokens always do. Tokens marked lstrip/rstrip
/// swallow the ASCII whitespace beside them.
/// </summary>
internal static class SpecialTokenPartition
{
    public static List<TextFragment> Split(TokenizerVocabulary vocabulary, string text, bool parseSpecial)
    {
        var fragments = new List<TextFragment>();
        if (text.Length == 0)
            return fragments;
        fragments.Add(new TextFragment(-1, 0, text.Length));
        var next = new List<TextFragment>();
        foreach (int id in vocabulary.SpecialTokensByLength)
        {
            var attr = vocabulary.Attributes[id];
            if (!parseSpecial && (attr & (TokenAttributes.Control | TokenAttributes.Unknown)) != 0)
                continue;
            string special = vocabulary.Texts[id];
            if (!text.Contains(special, StringComparison.Ordinal))
                continue;

            next.Clear();
            foreach (var fragment in fragments)
            {
                if (fragment.Token >= 0)
                {
                    next.Add(fragment);
                    continue;
                }
                int start = fragment.Start, length = fragment.Length;
                while (length > 0)
                {
                    int found = text.AsSpan(start, length).IndexOf(special, StringComparison.Ordinal);
                    if (found < 0)
                    {
                        next.Add(fragment with { Start = start, Length = length });
                        break;
                    }
                    int leftLength = found;
                    if ((attr & TokenAttributes.LStrip) != 0)
                    {
                        while (leftLength > 0 && IsSpace(text[start + leftLength - 1]))
                            leftLength--;
                    }
                    if (leftLength > 0)
                        next.Add(new TextFragment(-1, start, leftLength));
                    next.Add(new TextFragment(id, start + found, special.Length));

                    int rightStart = start + found + special.Length;
                    int rightLength = start + length - rightStart;
                    if ((attr & TokenAttributes.RStrip) != 0)
                    {
                        while (rightLength > 0 && IsSpace(text[rightStart]))
                        {
                            rightStart++;
                            rightLength--;
                        }
                    }
                    start = rightStart;
                    length = rightLength;
                }
            }
            (fragments, next) = (next, fragments);
        }
        return fragments;
    }

    // C isspace in the "C" locale.
    private static bool IsSpace(char c) => c is ' ' or '\t' or '\n' or '\v' or '\f' or '\r';
}

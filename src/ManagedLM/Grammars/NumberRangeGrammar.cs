using System.Globalization;

namespace ManagedLM.Grammars;

/// <summary>
/// GBNF expressions for the decimal numerals of a numeric range, digit by digit, so that a bound is enforced exactly.
/// Numerals are canonical (no leading zeros, no "-0", no exponent) with at most <see cref="MaxIntegerDigits"/> integer
/// digits and <see cref="MaxFractionDigits"/> fraction digits, which keeps every generated number finite.
/// </summary>
internal static class NumberRangeGrammar
{
    public const int MaxIntegerDigits = 16;
    public const int MaxFractionDigits = 16;
    /// <summary>The largest magnitude of an integer part: sixteen nines.</summary>
    public const long MaxMagnitude = 9_999_999_999_999_999;

    /// <summary>Canonical integers n with <paramref name="min"/> ≤ n ≤ <paramref name="max"/> (both within ±<see cref="MaxMagnitude"/>); null when none.</summary>
    public static string? Integers(long min, long max)
    {
        if (min > max) return null;
        var alternatives = new List<string>();
        if (max >= 0) alternatives.Add(Unsigned(Math.Max(min, 0), max));
        if (min < 0) alternatives.Add("\"-\" " + Group(Unsigned(max < 0 ? -max : 1, -min)));
        return string.Join(" | ", alternatives);
    }

    /// <summary>
    /// Numerals x (optional sign, integer part, optional fraction) with lo ≤ x ≤ hi, each bound optional and inclusive or
    /// exclusive; null when no numeral qualifies. Bounds must lie within ±(<see cref="MaxMagnitude"/> + 1).
    /// </summary>
    public static string? Decimals(decimal? lo, bool loInclusive, decimal? hi, bool hiInclusive)
    {
        var alternatives = new List<string>();
        // x >= 0: the lower bound is at least 0.
        bool nonNegativeEmpty = hi is { } h && (h < 0 || (h == 0 && !hiInclusive));
        if (!nonNegativeEmpty)
        {
            var part = lo is { } l && l >= 0
                ? NonNegative(l, loInclusive, hi, hiInclusive)
                : NonNegative(0, true, hi, hiInclusive);
            if (part is not null) alternatives.Add(part);
        }
        // x < 0, written as "-" and its magnitude, which lies in (max(0, -hi), -lo].
        bool negativeEmpty = lo is { } lb && lb >= 0;
        if (!negativeEmpty)
        {
            var part = hi is { } hb && hb < 0
                ? NonNegative(-hb, hiInclusive, -lo, loInclusive)
                : NonNegative(0, false, -lo, loInclusive);
            if (part is not null) alternatives.Add("\"-\" " + Group(part));
        }
        return alternatives.Count == 0 ? null : string.Join(" | ", alternatives);
    }

    /// <summary>Numerals x ≥ 0 with lo ≤ x ≤ hi (hi null: up to the integer-digit limit).</summary>
    static string? NonNegative(decimal lo, bool loInclusive, decimal? hi, bool hiInclusive)
    {
        if (hi is { } h && (lo > h || (lo == h && !(loInclusive && hiInclusive)))) return null;
        var (loInt, loFraction) = Split(lo);
        if (hi is not { } hv || hv >= MaxMagnitude + 1m)
        {
            // No upper bound below the digit limit: every integer part above the lower one takes any fraction.
            var above = new List<string>();
            var atLowest = FractionPart(loFraction, loInclusive, null, true);
            if (atLowest is not null) above.Add(Sequence(Quote(loInt), atLowest));
            if (loInt < MaxMagnitude) above.Add(Sequence(Group(Unsigned(loInt + 1, MaxMagnitude)), FractionPart(null, true, null, true)!));
            return above.Count == 0 ? null : string.Join(" | ", above);
        }
        var (hiInt, hiFraction) = Split(hv);

        if (loInt == hiInt)
        {
            var fraction = FractionPart(loFraction, loInclusive, hiFraction, hiInclusive);
            return fraction is null ? null : Sequence(Quote(loInt), fraction);
        }
        var alternatives = new List<string>();
        var atLow = FractionPart(loFraction, loInclusive, null, true);
        if (atLow is not null) alternatives.Add(Sequence(Quote(loInt), atLow));
        if (loInt + 1 <= hiInt - 1)
            alternatives.Add(Sequence(Group(Unsigned(loInt + 1, hiInt - 1)), FractionPart(null, true, null, true)!));
        var atHigh = FractionPart(null, true, hiFraction, hiInclusive);
        if (atHigh is not null) alternatives.Add(Sequence(Quote(hiInt), atHigh));
        return alternatives.Count == 0 ? null : string.Join(" | ", alternatives);
    }

    /// <summary>
    /// What may follow an integer part: nothing (value exactly the integer) and/or "." and 1..16 digits, the fraction
    /// bounded below/above by the digit strings given (null: unbounded; "" : zero).
    /// </summary>
    static string? FractionPart(string? lo, bool loInclusive, string? hi, bool hiInclusive)
    {
        bool bareAllowed = (lo is null || (lo.Length == 0 && loInclusive)) && (hi is null || hi.Length > 0 || hiInclusive);
        var digits = Fraction(lo, loInclusive, hi, hiInclusive, MaxFractionDigits, 1);
        if (digits is null) return bareAllowed ? "" : null;
        var dotted = Sequence("\".\"", digits);
        return bareAllowed ? "(" + dotted + ")?" : dotted;
    }

    /// <summary>
    /// Digit strings F of length <paramref name="minLength"/>..<paramref name="maxLength"/> with 0.lo ≤ 0.F ≤ 0.hi
    /// (strict where not inclusive); null when none.
    /// </summary>
    static string? Fraction(string? lo, bool loInclusive, string? hi, bool hiInclusive, int maxLength, int minLength)
    {
        if (lo is { Length: 0 } && loInclusive) lo = null;
        bool emptyAllowed = minLength == 0 && lo is null && (hi is null || hi.Length > 0 || hiInclusive);
        if (maxLength == 0) return emptyAllowed ? "" : null;
        if (lo is null && hi is null) return Repeat("[0-9]", minLength, maxLength);
        // Above zero: some digit is not 0; one flat alternative per count of leading zeros.
        if (lo is { Length: 0 } && hi is null)
        {
            var nonZero = Enumerable.Range(0, maxLength).Select(zeros =>
                Sequence(zeros == 0 ? "" : "\"" + new string('0', zeros) + "\"", Sequence("[1-9]", Repeat("[0-9]", 0, maxLength - 1 - zeros))));
            return "(" + string.Join(" | ", nonZero) + ")";
        }
        // At most zero: zeros only.
        if (lo is null && hi is { Length: 0 } && hiInclusive) return Repeat("\"0\"", minLength, maxLength);

        int loDigit = lo is null ? -1 : lo.Length > 0 ? lo[0] - '0' : 0;
        int hiDigit = hi is null ? 10 : hi.Length > 0 ? hi[0] - '0' : 0;
        string? loRest = lo is null ? null : lo.Length > 0 ? lo[1..] : "";
        string? hiRest = hi is null ? null : hi.Length > 0 ? hi[1..] : "";
        var alternatives = new List<string>();
        if (loDigit >= 0 && loDigit == hiDigit)
            AddDigit(alternatives, loDigit, Fraction(loRest, loInclusive, hiRest, hiInclusive, maxLength - 1, 0));
        else
        {
            if (loDigit >= 0 && loDigit < hiDigit)
                AddDigit(alternatives, loDigit, Fraction(loRest, loInclusive, null, true, maxLength - 1, 0));
            if (loDigit + 1 <= hiDigit - 1)
                alternatives.Add(Sequence(DigitClass(loDigit + 1, hiDigit - 1), Repeat("[0-9]", 0, maxLength - 1)));
            if (hiDigit <= 9 && hiDigit > loDigit)
                AddDigit(alternatives, hiDigit, Fraction(null, true, hiRest, hiInclusive, maxLength - 1, 0));
        }
        if (alternatives.Count == 0) return emptyAllowed ? "" : null;
        var choice = string.Join(" | ", alternatives);
        return emptyAllowed ? "(" + choice + ")?" : alternatives.Count == 1 ? choice : "(" + choice + ")";
    }

    static void AddDigit(List<string> alternatives, int digit, string? tail)
    {
        if (tail is not null) alternatives.Add(Sequence(Quote(digit), tail));
    }

    /// <summary>Canonical numerals of the integers in [a, b], 0 ≤ a ≤ b.</summary>
    static string Unsigned(long a, long b)
    {
        var alternatives = new List<string>();
        if (a == 0)
        {
            alternatives.Add("\"0\"");
            if (b == 0) return alternatives[0];
            a = 1;
        }
        int aDigits = DigitCount(a), bDigits = DigitCount(b);
        if (aDigits == bDigits) alternatives.Add(SameLength(Text(a), Text(b)));
        else
        {
            int firstFull = aDigits, lastFull = bDigits;
            if (a != Pow10(aDigits - 1))
            {
                alternatives.Add(SameLength(Text(a), new string('9', aDigits)));
                firstFull++;
            }
            bool bFull = b == Pow10(bDigits) - 1;
            if (!bFull) lastFull--;
            if (firstFull <= lastFull) alternatives.Add(Sequence("[1-9]", Repeat("[0-9]", firstFull - 1, lastFull - 1)));
            if (!bFull) alternatives.Add(SameLength(Text(Pow10(bDigits - 1)), Text(b)));
        }
        return string.Join(" | ", alternatives);
    }

    /// <summary>Digit strings s with a ≤ s ≤ b, all three of the same length (leading zeros allowed).</summary>
    static string SameLength(string a, string b)
    {
        if (a == b) return a.Length == 0 ? "" : "\"" + a + "\"";
        int common = 0;
        while (a[common] == b[common]) common++;
        string prefix = common > 0 ? "\"" + a[..common] + "\"" : "";
        int rest = a.Length - common - 1;
        int aDigit = a[common] - '0', bDigit = b[common] - '0';
        string aTail = a[(common + 1)..], bTail = b[(common + 1)..];
        bool aTailLowest = aTail.All(c => c == '0'), bTailHighest = bTail.All(c => c == '9');
        var alternatives = new List<string>();
        if (!aTailLowest) alternatives.Add(Sequence(Quote(aDigit), SameLength(aTail, new string('9', rest))));
        int fromDigit = aTailLowest ? aDigit : aDigit + 1, toDigit = bTailHighest ? bDigit : bDigit - 1;
        if (fromDigit <= toDigit) alternatives.Add(Sequence(DigitClass(fromDigit, toDigit), Repeat("[0-9]", rest, rest)));
        if (!bTailHighest) alternatives.Add(Sequence(Quote(bDigit), SameLength(new string('0', rest), bTail)));
        var choice = alternatives.Count == 1 ? alternatives[0] : "(" + string.Join(" | ", alternatives) + ")";
        return Sequence(prefix, choice);
    }

    static (long Integer, string Fraction) Split(decimal value)
    {
        decimal integer = decimal.Truncate(value);
        string fraction = (value - integer).ToString(CultureInfo.InvariantCulture);
        int dot = fraction.IndexOf('.');
        fraction = dot < 0 ? "" : fraction[(dot + 1)..].TrimEnd('0');
        return ((long)integer, fraction);
    }

    static string DigitClass(int from, int to) =>
        from == to ? Quote(from) : from == 0 && to == 9 ? "[0-9]" : $"[{from}-{to}]";

    static string Repeat(string item, int min, int max) => (min, max) switch
    {
        (0, 0) => "",
        (1, 1) => item,
        (0, 1) => item + "?",
        _ when min == max => $"{item}{{{min}}}",
        _ => $"{item}{{{min},{max}}}",
    };

    static string Sequence(string first, string second) =>
        first.Length == 0 ? second : second.Length == 0 ? first : first + " " + second;

    static string Group(string expression) => expression.Contains('|') ? "(" + expression + ")" : expression;

    static string Quote(long value) => "\"" + Text(value) + "\"";

    static string Text(long value) => value.ToString(CultureInfo.InvariantCulture);

    static int DigitCount(long value) => Text(value).Length;

    static long Pow10(int exponent)
    {
        long result = 1;
        for (int i = 0; i < exponent; i++) result *= 10;
        return result;
    }
}

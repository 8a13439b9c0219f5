using System.Collections.Immutable;
using System.Globalization;
using System.Text;

namespace ManagedLM.Chat;

/// <summary>C's <c>strftime</c> in the C locale, for the <c>strftime_now(format)</c> chat templates call.</summary>
public static class Strftime
{
    private static readonly ImmutableArray<string> Days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
    private static readonly ImmutableArray<string> Months =
        ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

    /// <summary>Formats <paramref name="time"/> (taken as UTC) with C's conversion specifiers.</summary>
    public static string Format(string format, DateTime time)
    {
        ArgumentNullException.ThrowIfNull(format);
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 == format.Length)
            {
                sb.Append(format[i]);
                continue;
            }
            char c = format[++i];
            switch (c)
            {
                case 'a': sb.Append(Days[(int)time.DayOfWeek][..3]); break;
                case 'A': sb.Append(Days[(int)time.DayOfWeek]); break;
                case 'b': case 'h': sb.Append(Months[time.Month - 1][..3]); break;
                case 'B': sb.Append(Months[time.Month - 1]); break;
                case 'c': sb.Append(Format("%a %b %e %H:%M:%S %Y", time)); break;
                case 'C': sb.Append((time.Year / 100).ToString("00", inv)); break;
                case 'd': sb.Append(time.Day.ToString("00", inv)); break;
                case 'D': sb.Append(Format("%m/%d/%y", time)); break;
                case 'e': sb.Append(time.Day.ToString(inv).PadLeft(2)); break;
                case 'F': sb.Append(Format("%Y-%m-%d", time)); break;
                case 'H': sb.Append(time.Hour.ToString("00", inv)); break;
                case 'I': sb.Append(((time.Hour + 11) % 12 + 1).ToString("00", inv)); break;
                case 'j': sb.Append(time.DayOfYear.ToString("000", inv)); break;
                case 'm': sb.Append(time.Month.ToString("00", inv)); break;
                case 'M': sb.Append(time.Minute.ToString("00", inv)); break;
                case 'n': sb.Append('\n'); break;
                case 'p': sb.Append(time.Hour < 12 ? "AM" : "PM"); break;
                case 'R': sb.Append(Format("%H:%M", time)); break;
                case 'S': sb.Append(time.Second.ToString("00", inv)); break;
                case 't': sb.Append('\t'); break;
                case 'T': sb.Append(Format("%H:%M:%S", time)); break;
                case 'u': sb.Append(time.DayOfWeek == DayOfWeek.Sunday ? 7 : (int)time.DayOfWeek); break;
                case 'w': sb.Append((int)time.DayOfWeek); break;
                case 'y': sb.Append((time.Year % 100).ToString("00", inv)); break;
                case 'Y': sb.Append(time.Year.ToString(inv)); break;
                case 'z': sb.Append("+0000"); break;
                case 'Z': sb.Append("UTC"); break;
                case '%': sb.Append('%'); break;
                default: sb.Append('%').Append(c); break;
            }
        }
        return sb.ToString();
    }
}

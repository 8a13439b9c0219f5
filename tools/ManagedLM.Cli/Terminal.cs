using Spectre.Console;
using Spectre.Console.Rendering;

namespace ManagedLM.Cli;

/// <summary>
/// Spectre.Console over a command's writers. On a terminal: colour, the terminal's width, live displays. Redirected (a
/// file, a pipe, a test's StringWriter): plain text without ANSI codes, at least <see cref="RedirectedWidth"/> columns
/// and as wide as a table needs, so that no row is wrapped and every line can be grepped.
/// </summary>
internal static class Terminal
{
    /// <summary>Width of redirected output when the content is narrower.</summary>
    public const int RedirectedWidth = 120;

    // Width a redirected table is measured in: wider than any row.
    private const int Unbounded = 100_000;

    /// <summary>True when <paramref name="writer"/> is the process's stdout or stderr and that stream is a terminal.</summary>
    public static bool IsInteractive(TextWriter writer) =>
        ReferenceEquals(writer, Console.Out) ? !Console.IsOutputRedirected
        : ReferenceEquals(writer, Console.Error) && !Console.IsErrorRedirected;

    /// <summary>A Spectre console writing to <paramref name="writer"/>, with ANSI and colour only on a terminal.</summary>
    public static IAnsiConsole For(TextWriter writer, int width = RedirectedWidth)
    {
        bool interactive = IsInteractive(writer);
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(writer),
            Ansi = interactive ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = interactive ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = interactive ? InteractionSupport.Detect : InteractionSupport.No,
        });
        if (!interactive)
            console.Profile.Width = width;
        return console;
    }

    /// <summary>
    /// Writes <paramref name="renderable"/>: as Spectre lays it out on a terminal; redirected, unwrapped and without
    /// trailing spaces.
    /// </summary>
    public static void Write(TextWriter writer, IRenderable renderable)
    {
        if (IsInteractive(writer))
        {
            For(writer).Write(renderable);
            return;
        }
        var probe = For(TextWriter.Null);
        int natural = renderable.Measure(new RenderOptions(probe.Profile.Capabilities, new Size(Unbounded, Unbounded)), Unbounded).Max;
        var text = new StringWriter();
        For(text, Math.Max(RedirectedWidth, natural)).Write(renderable);
        foreach (string line in text.ToString().TrimEnd().Split('\n'))
            writer.WriteLine(line.TrimEnd());
    }

    /// <summary>A table laid out for the writer: rounded borders on a terminal; redirected, columns two spaces apart and no borders.</summary>
    public static Table Table(TextWriter writer, params TableColumn[] columns)
    {
        var table = new Table();
        if (IsInteractive(writer))
            table.Border(TableBorder.Rounded);
        else
        {
            table.Border(TableBorder.None);
            foreach (var column in columns.SkipLast(1))
                column.Padding(0, 0, 2, 0);
        }
        foreach (var column in columns)
            table.AddColumn(column);
        return table;
    }

    /// <summary>A table cell of plain text (no markup parsing).</summary>
    public static Text Cell(string text) => new(text);

    /// <summary>A right-aligned column, for numbers.</summary>
    public static TableColumn Number(string header) => new TableColumn(header).RightAligned();
}

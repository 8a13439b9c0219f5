using Spectre.Console;

namespace ManagedLM.Cli.Commands;

/// <summary>A column of a bench table: header, width of its markdown form, and whether text is left-aligned (numbers are right-aligned).</summary>
internal sealed record BenchColumn(string Header, int Width, bool Left = false);

/// <summary>Reports one result: its JSON line (for --json) and its table cells.</summary>
internal delegate void BenchReport(string jsonLine, string[] cells);

/// <summary>
/// The results table of a bench mode. On a terminal, a Spectre table that grows as results come in; redirected,
/// llama-bench's markdown table, a row printed as each result comes; with --json, no table (the mode prints JSON lines,
/// each naming the kernel level). A table ends with the line naming the kernel paths that ran (<see cref="Kernels.CpuFeatures.Description"/>).
/// </summary>
internal static class BenchTable
{
    /// <summary>Runs <paramref name="measure"/>, printing each result it reports as it comes: a JSON line, or a table row.</summary>
    public static void Run(TextWriter output, bool json, IReadOnlyList<BenchColumn> columns, Action<BenchReport> measure)
    {
        if (json)
        {
            measure((line, _) =>
            {
                output.WriteLine(line);
                output.Flush();
            });
        }
        else if (Terminal.IsInteractive(output))
        {
            var table = new Table().Border(TableBorder.Rounded);
            foreach (var c in columns)
                table.AddColumn(c.Left ? new TableColumn(c.Header) : Terminal.Number(c.Header));
            Terminal.For(output).Live(table).Start(context => measure((_, cells) =>
            {
                table.AddRow(cells.Select(Terminal.Cell).ToArray());
                context.Refresh();
            }));
        }
        else
        {
            output.WriteLine(MarkdownRow(columns, columns.Select(c => c.Header).ToArray()));
            output.WriteLine(MarkdownRow(columns, columns.Select(c => new string('-', c.Width)).ToArray()));
            measure((_, cells) =>
            {
                output.WriteLine(MarkdownRow(columns, cells));
                output.Flush();
            });
        }
        if (!json)
            output.WriteLine(Kernels.CpuFeatures.Description);
    }

    private static string MarkdownRow(IReadOnlyList<BenchColumn> columns, string[] cells) =>
        "| " + string.Join(" | ", columns.Select((c, i) => c.Left ? cells[i].PadRight(c.Width) : cells[i].PadLeft(c.Width))) + " |";
}

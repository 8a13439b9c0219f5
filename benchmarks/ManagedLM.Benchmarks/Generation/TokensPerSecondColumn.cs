using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace ManagedLM.Benchmarks.Generation;

/// <summary>Tokens each operation produces in total (over all sequences), for <see cref="TokensPerSecondColumn"/>.</summary>
public interface ITokensPerOperation
{
    double TokensPerOperation(BenchmarkCase benchmarkCase);
}

/// <summary>Aggregate tokens/s from the mean time of one operation.</summary>
public sealed class TokensPerSecondColumn : IColumn
{
    public string Id => nameof(TokensPerSecondColumn);
    public string ColumnName => "tokens/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "Tokens produced per operation (all sequences) / mean time";

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase)
    {
        var stats = summary[benchmarkCase]?.ResultStatistics;
        if (stats is null || Activator.CreateInstance(benchmarkCase.Descriptor.Type) is not ITokensPerOperation source)
            return "-";
        return (source.TokensPerOperation(benchmarkCase) * 1e9 / stats.Mean).ToString("F1");
    }

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;
}

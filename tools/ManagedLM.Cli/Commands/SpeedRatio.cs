namespace ManagedLM.Cli.Commands;

/// <summary>
/// Our speed over a peer's: the ratio of the mean tokens/s, and the standard deviation of the ratios of the repetitions
/// (each of ours paired with the peer's run right after it, so that both met the same load on the machine).
/// </summary>
internal readonly record struct SpeedRatio(double Value, double Stddev)
{
    public static SpeedRatio Of(double[] ours, double[] peer) =>
        peer.Length == 0 ? default : new(ours.Average() / peer.Average(), BenchCommand.StdDev(ours.Zip(peer, (a, b) => a / b).ToArray()));

    /// <summary>"0.54 ± 0.03".</summary>
    public override string ToString() => $"{Value:F2} ± {Stddev:F2}";
}

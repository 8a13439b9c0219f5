using ManagedLM.Batching;

namespace ManagedLM.Tests.Batching;

public class BatchEngineMetricsFormatTests
{
    [Fact]
    public void ToString_is_one_line_of_requests_steps_and_tokens()
    {
        var metrics = new BatchEngineMetrics(2, 1, 9, 6, 1, 0, 120, 45, 10, 210, TimeSpan.FromSeconds(0.25), [60, 40, 20, 0, 0, 0, 0, 0])
        {
            MeanBatchSize = 1.75,
        };
        Assert.Equal("Active=2, Queued=1; requests: 9 admitted, 6 completed, 1 cancelled, 0 rejected; 120 steps (mean batch 1.8); "
            + "prompt 45 tokens (shared 10), generated 210 tokens, 840.0 tokens/s", metrics.ToString());
    }
}

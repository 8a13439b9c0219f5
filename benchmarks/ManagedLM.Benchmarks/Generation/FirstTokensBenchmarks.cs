using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using ManagedLM.Generation;
using ManagedLM.Model;
using ManagedLM.Quantization;
using ManagedLM.Sampling;

namespace ManagedLM.Benchmarks.Generation;

/// <summary>
/// The first <see cref="Tokens"/> decode steps of a fresh process with default runtime settings (tiered compilation on, as
/// in any app that references the library), against the same steps once warm. "Cold" launches a new process per
/// measurement and times its first call: the JIT and whatever runs unoptimized are in it. Compare the two rows' tokens/s.
/// </summary>
[Config(typeof(Config))]
public class FirstTokensBenchmarks : ITokensPerOperation
{
    private const int Tokens = 64;

    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddJob(Job.Default.WithStrategy(RunStrategy.ColdStart).WithLaunchCount(5).WithIterationCount(1).WithId("cold"));
            AddJob(Job.ShortRun.WithId("warm"));
            AddColumn(new TokensPerSecondColumn());
        }
    }

    [Params("stories110m")]
    public string Preset { get; set; } = "stories110m";

    [Params(LlamaFileType.Q8_0)]
    public LlamaFileType Type { get; set; }

    private TransformerModel _model = null!;
    private Generator _generator = null!;

    [GlobalSetup]
    public void Setup()
    {
        _model = TransformerModel.Load(BenchmarkModels.Get(Preset, Type));
        _generator = _model.CreateGenerator(new GeneratorOptions { ContextLength = Tokens, Sampling = SamplingOptions.Greedy });
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _generator.Dispose();
        _model.Dispose();
    }

    public double TokensPerOperation(BenchmarkCase benchmarkCase) => 1;

    /// <summary><see cref="Tokens"/> decode steps from an empty cache.</summary>
    [Benchmark(OperationsPerInvoke = Tokens)]
    public void Decode()
    {
        _generator.Reset();
        int vocab = _model.Config.VocabSize;
        for (int t = 0; t < Tokens; t++)
            _generator.Step(t * 104729 % vocab);
    }
}

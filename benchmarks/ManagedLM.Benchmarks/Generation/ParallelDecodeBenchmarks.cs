using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;
using ManagedLM.Generation;
using ManagedLM.Model;
using ManagedLM.Quantization;
using ManagedLM.Sampling;

namespace ManagedLM.Benchmarks.Generation;

/// <summary>
/// N independent generators on one shared model, each decoding <see cref="Tokens"/> tokens on its own thread
/// (one matmul thread each). Aggregate tokens/s = N · Tokens / mean time; compare each N with N = 1 of the
/// same run (decode is memory-bound, so N generators on N cores share the memory bandwidth).
/// </summary>
[Config(typeof(Config))]
public class ParallelDecodeBenchmarks : ITokensPerOperation
{
    private sealed class Config : ManualConfig
    {
        public Config() => AddColumn(new TokensPerSecondColumn());
    }

    private const int Tokens = 32;

    [Params("stories110m")]
    public string Preset { get; set; } = "stories110m";

    [Params(1, 2, 4)]
    public int Generators { get; set; }

    private TransformerModel _model = null!;
    private Generator[] _generators = [];

    [GlobalSetup]
    public void Setup()
    {
        _model = TransformerModel.Load(BenchmarkModels.Get(Preset, LlamaFileType.Q4_0));
        var options = new GeneratorOptions { ContextLength = Tokens, Sampling = SamplingOptions.Greedy };
        _generators = Enumerable.Range(0, Generators).Select(_ => _model.CreateGenerator(options)).ToArray();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var g in _generators)
            g.Dispose();
        _model.Dispose();
    }

    // Mean is per decode step (OperationsPerInvoke): each step yields one token per generator.
    public double TokensPerOperation(BenchmarkCase benchmarkCase) => (int)benchmarkCase.Parameters["Generators"];

    /// <summary>Every generator decodes <see cref="Tokens"/> tokens from an empty cache, all at once.</summary>
    [Benchmark(OperationsPerInvoke = Tokens)]
    public void DecodeAll()
    {
        var threads = new Thread[_generators.Length];
        for (int i = 0; i < threads.Length; i++)
        {
            var g = _generators[i];
            int seed = i;
            threads[i] = new Thread(() =>
            {
                g.Reset();
                int vocab = g.Model.Config.VocabSize;
                for (int t = 0; t < Tokens; t++)
                    g.Step((seed * 7919 + t * 104729) % vocab);
            });
            threads[i].Start();
        }
        foreach (var t in threads)
            t.Join();
    }
}

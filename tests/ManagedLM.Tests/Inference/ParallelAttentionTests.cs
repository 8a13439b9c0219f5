using ManagedLM.Generation;
using ManagedLM.Inference;
using ManagedLM.Model;
using ManagedLM.Quantization;
using ManagedLM.Sampling;
using ManagedLM.Synthesis;
using ManagedLM.Tests.Synthesis;

namespace ManagedLM.Tests.Generation;

/// <summary>
/// Attention split over threads in (run of positions, KV head, run of query heads) items gives the logits of one thread,
/// at a context long enough for the split to happen, for GQA groups that fill one register tile, need two, or leave one
/// short, and for tiles that take several positions of a prompt chunk; for every KV cache type.
/// </summary>
public class ParallelAttentionTests
{
    public static TheoryData<int, int, int> Shapes => new()
    {
        { 16, 2, 32 },  // group 8 (TinyLlama's), one tile per KV head
        { 14, 2, 64 },  // group 7 (Qwen2.5-0.5B's)
        { 12, 1, 16 },  // group 12: two tiles
        { 6, 6, 48 },   // no grouping: eight positions per item
        { 8, 4, 32 },   // group 2: four positions of two heads per item
    };

    private static TransformerModel Model(int heads, int kvHeads, int headDim) =>
        TransformerModel.Load(ModelSynthesizerTests.Synthesize(ModelSynthesizerTests.FixtureSpec("llama") with
        {
            BlockCount = 2, HeadCount = heads, HeadCountKv = kvHeads, HeadDim = headDim, ContextLength = 1024,
        }, "attention", 5, LlamaFileType.Q8_0));

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Threads_and_chunks_do_not_change_the_logits(int heads, int kvHeads, int headDim)
    {
        using var model = Model(heads, kvHeads, headDim);
        int[] prompt = Enumerable.Range(0, 600).Select(i => (i * 37 + 11) % model.Config.VocabSize).ToArray();
        foreach (var cache in new[] { KvCacheType.F16, KvCacheType.F32, KvCacheType.Q8_0, KvCacheType.Q4_0 })
        {
            if (cache is KvCacheType.Q8_0 or KvCacheType.Q4_0 && kvHeads * headDim % 32 != 0)
            {
                // A quantized cache quantizes rows in blocks of 32: this shape's rows (16 values) cannot be.
                Assert.Throws<ArgumentException>(() => model.CreateGenerator(new GeneratorOptions { KvCacheType = cache }));
                continue;
            }
            float[]? expected = null, next = null;
            foreach (int threads in new[] { 1, 2, 3 })
            {
                using var g = model.CreateGenerator(new GeneratorOptions
                {
                    Threads = threads, BatchSize = 40 + threads, KvCacheType = cache, Sampling = SamplingOptions.Greedy,
                });
                float[] logits = g.Prefill(prompt).ToArray();
                float[] step = g.Step(3).ToArray();
                expected ??= logits;
                next ??= step;
                Assert.Equal(expected, logits);
                Assert.Equal(next, step);
            }
        }
    }
}

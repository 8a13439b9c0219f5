using System.Runtime.CompilerServices;
using ManagedLM.Kernels;
using ManagedLM.Model;

namespace ManagedLM.Inference;

/// <summary>
/// Runs a model's kernels once before its first generator or embedder, so that a request's first tokens run optimized
/// code rather than paying for the JIT: a prompt of up to 8 tokens (the batched kernels), one step (the single-row ones),
/// and, for each cache type its generators use, the decode attention tiles of spans up to 144 positions; an encoder's
/// pass over a sequence of up to 8 tokens.
/// </summary>
internal static class ModelWarmUp
{
    // Per model: the forward pass once, and the decode attention once per cache type generators of it use.
    private sealed class Runs(TransformerModel model)
    {
        public readonly Lazy<bool> Forward = new(() => { Run(model); return true; });
        public readonly Lazy<bool>[] Attention = Enum.GetValues<KvCacheType>()
            .Select(type => new Lazy<bool>(() => { ModelWarmUp.Attention(model.Config, type); return true; })).ToArray();
    }

    [ThreadSafeStatic("a ConditionalWeakTable (thread-safe) of per-model Lazy runs: each warm-up runs once, and it changes no result")]
    private static readonly ConditionalWeakTable<TransformerModel, Runs> Warmed = new();

    /// <summary>
    /// Warms <paramref name="model"/> once, if its options ask for it, and its decode attention over a cache of
    /// <paramref name="cacheType"/> once (an encoder has no cache); later and concurrent callers wait for the one run.
    /// </summary>
    public static void Ensure(TransformerModel model, KvCacheType cacheType)
    {
        if (!model.WarmsUp)
            return;
        var runs = Warmed.GetValue(model, m => new Runs(m));
        _ = runs.Forward.Value;
        if (!model.Config.Family.Encoder)
            _ = runs.Attention[(int)cacheType].Value;
    }

    private static void Run(TransformerModel model)
    {
        var c = model.Config;
        if (c.Family.Encoder)
        {
            RunEncoder(model);
            return;
        }
        int context = Math.Min(16, model.MaxContextLength), prompt = Math.Clamp(context - 1, 1, 8);
        var state = new ForwardState(c, pool: null, rows: prompt);
        var cache = new KvCache(KvCacheType.F16, c.BlockCount, new KvBlockLayout(c.KvHeadCount, c.HeadDim), context, context);
        for (int i = 0; i < prompt; i++)
            state.Rows[i] = new ForwardRow(cache, i % c.VocabSize, i, Logits: i == prompt - 1);
        Transformer.Forward(model, state, prompt);
        if (prompt < context)
        {
            state.Rows[0] = new ForwardRow(cache, 0, prompt, Logits: true);
            Transformer.Forward(model, state, 1);
        }
    }

    // An encoder: one sequence of up to 8 tokens.
    private static void RunEncoder(TransformerModel model)
    {
        int n = Math.Min(8, EncoderState.MaxSequenceLength(model));
        var state = new EncoderState(model.Config, pool: null);
        state.EnsureCapacity(n, 1);
        for (int i = 0; i < n; i++)
            state.Tokens[i] = i % model.Config.VocabSize;
        state.Starts[0] = 0;
        state.Starts[1] = n;
        Encoder.Forward(model, state, 1);
    }

    // Decode attention past the prompt's positions takes wider register tiles (a lane group more per 16 positions, up
    // to eight): each is compiled here, on a one-layer cache, rather than during the first request's tokens.
    private static void Attention(ModelConfig c, KvCacheType type)
    {
        int group = c.HeadCount / c.KvHeadCount, runs = (group + ParallelAttention.MaxItemHeads - 1) / ParallelAttention.MaxItemHeads;
        int heads = (group + runs - 1) / runs, length = 9 * KvBlockLayout.BlockLength;
        var cache = new KvCache(type, 1, new KvBlockLayout(c.KvHeadCount, c.HeadDim), length, length);
        float[] queries = new float[heads * c.HeadDim], output = new float[queries.Length];
        float[] scratch = new float[Kernels.Attention.ScratchLength(heads, length, c.HeadDim) + cache.DequantizeScratchLength];
        for (int blocks = 1; blocks <= 9; blocks++)
            cache.Attend(0, blocks * KvBlockLayout.BlockLength, 1, queries.Length, queries, heads, 0, 1f, scratch, output);
    }
}

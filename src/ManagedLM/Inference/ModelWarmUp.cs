using System.Runtime.CompilerServices;
using ManagedLM.Kernels;
using ManagedLM.Model;

namespace ManagedLM.Inference;

/// <summary>
/// Runs a model's kernels once before its first generator, so that a request's first tokens run optimized code rather
/// than paying for the JIT: a prompt of up to 8 tokens (the batched kernels), one step (the single-row ones), and the
/// decode attention tiles of spans up to 144 positions.
/// </summary>
internal static class ModelWarmUp
{
    private static readonly ConditionalWeakTable<TransformerModel, Lazy<bool>> Warmed = new();

    /// <summary>Warms <paramref name="model"/> once, if its options ask for it; later and concurrent callers wait for the one run.</summary>
    public static void Ensure(TransformerModel model)
    {
        if (model.WarmsUp)
            _ = Warmed.GetValue(model, m => new Lazy<bool>(() => { Run(m); return true; })).Value;
    }

    private static void Run(TransformerModel model)
    {
        var c = model.Config;
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
        Attention(c);
    }

    // Decode attention past the prompt's positions takes wider register tiles (a lane group more per 16 positions, up
    // to eight): each is compiled here, on a one-layer cache, rather than during the first request's tokens.
    private static void Attention(ModelConfig c)
    {
        int group = c.HeadCount / c.KvHeadCount, runs = (group + ParallelAttention.MaxItemHeads - 1) / ParallelAttention.MaxItemHeads;
        int heads = (group + runs - 1) / runs, length = 9 * KvBlockLayout.BlockLength;
        var cache = new KvCache(KvCacheType.F16, 1, new KvBlockLayout(1, c.HeadDim), length, length);
        float[] queries = new float[heads * c.HeadDim], output = new float[queries.Length];
        float[] scratch = new float[Kernels.Attention.ScratchLength(heads, length, c.HeadDim)];
        for (int blocks = 1; blocks <= 9; blocks++)
            cache.Attend(0, blocks * KvBlockLayout.BlockLength, 1, queries.Length, queries, heads, 0, 1f, scratch, output);
    }
}

using System.Runtime.CompilerServices;
using ManagedLM.Kernels;
using ManagedLM.Model;

namespace ManagedLM.Inference;

/// <summary>
/// The feed-forward of a mixture-of-experts block, as llama.cpp computes it: router logits, softmax, the
/// <see cref="ModelConfig.ExpertUsedCount"/> most probable experts (ties to the lower index), their probabilities
/// renormalized to sum to 1 where the family does, and the weighted sum of those experts' feed-forwards in rank order.
/// Rows routed to the same expert share one pass over its weights. A shared expert (Qwen2 MoE) runs on every row and
/// adds its output times sigmoid(gate · x). A row's result is the same whichever rows it runs
/// with: each expert's products are per row, and a row's sum runs over its own ranks.
/// Scratch grows with the batch; a decode step allocates nothing.
/// </summary>
internal sealed class ExpertFeedForward
{
    private float[] _router = [];   // [rows × n_expert] logits, then probabilities
    private int[] _chosen = [];     // [rows × n_used] expert of each rank
    private float[] _weight = [];   // [rows × n_used] its weight
    private float[] _gathered = []; // [rows × n_embd] the normalized rows routed to one expert (each row at most once)
    private int[] _members = [];    // [rows] which (row, rank) pairs the gathered rows are: row · n_used + rank
    private float[] _outputs = [];  // [rows × n_used × n_embd] expert outputs, by (row, rank)
    private float[] _combined = []; // [rows × n_embd] the weighted sum, while the shared expert runs

    /// <summary>Projected[r] = Σ over row r's ranks of weight · expert(Normed[r]).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Run(ForwardState s, LayerWeights layer, int rowCount, ModelConfig c)
    {
        int experts = c.ExpertCount, used = c.ExpertUsedCount, embd = c.EmbeddingLength;
        EnsureCapacity(rowCount, experts, used, embd);
        s.Input.Set(s.Normed, embd, rowCount, embd);
        Transformer.Project(s, layer.Router!, _router, experts, default);
        for (int r = 0; r < rowCount; r++)
            Route(_router.AsSpan(r * experts, experts), _chosen.AsSpan(r * used, used), _weight.AsSpan(r * used, used), c.Family.NormalizeExpertWeights, c.ExpertWeightsScale);

        for (int e = 0; e < experts; e++)
        {
            int n = 0;
            for (int pair = 0; pair < rowCount * used; pair++)
            {
                if (_chosen[pair] != e)
                    continue;
                s.Normed.AsSpan(pair / used * embd, embd).CopyTo(_gathered.AsSpan(n * embd, embd));
                _members[n++] = pair;
            }
            if (n == 0)
                continue;
            var expert = layer.Experts[e];
            s.Input.Set(_gathered, embd, n, embd);
            Transformer.FeedForward(s, expert.Gate, expert.Up, expert.Down, n, c.Family.Gate, inputSet: true);
            for (int i = 0; i < n; i++)
                s.Projected.AsSpan(i * embd, embd).CopyTo(_outputs.AsSpan(_members[i] * embd, embd));
        }

        // out = E₀·w₀, then out += Eₖ·wₖ rank by rank: ggml's mul and chain of adds.
        var combined = layer.SharedExpert is null ? s.Projected : _combined;
        for (int r = 0; r < rowCount; r++)
        {
            var o = combined.AsSpan(r * embd, embd);
            for (int k = 0; k < used; k++)
            {
                var e = _outputs.AsSpan((r * used + k) * embd, embd);
                float wk = _weight[r * used + k];
                for (int i = 0; i < embd; i++)
                    o[i] = k == 0 ? e[i] * wk : o[i] + e[i] * wk;
            }
        }
        if (layer.SharedExpert is { } shared)
        {
            Transformer.FeedForward(s, shared.Gate, shared.Up, shared.Down, rowCount, c.Family.Gate);
            var gate = layer.SharedExpertGate.Span;
            for (int r = 0; r < rowCount; r++)
            {
                float g = Dot.F32(gate, s.Normed.AsSpan(r * embd, embd));
                float sigmoid = 1f / (1f + MathF.Exp(-g));
                var o = s.Projected.AsSpan(r * embd, embd);
                var moe = _combined.AsSpan(r * embd, embd);
                for (int i = 0; i < embd; i++)
                    o[i] = moe[i] + o[i] * sigmoid;
            }
        }
    }

    // Router logits → softmax → the top experts by probability, and their weights.
    private static void Route(Span<float> logits, Span<int> chosen, Span<float> weight, bool normalize, float scale)
    {
        Softmax.InPlace(logits);
        for (int k = 0; k < chosen.Length; k++)
        {
            int best = -1;
            for (int e = 0; e < logits.Length; e++)
            {
                if (chosen[..k].Contains(e))
                    continue;
                if (best < 0 || logits[e] > logits[best])
                    best = e;
            }
            chosen[k] = best;
            weight[k] = logits[best];
        }
        if (normalize)
        {
            float sum = 0;
            foreach (float v in weight)
                sum += v;
            sum = MathF.Max(sum, 6.103515625e-5f); // as llama.cpp: clamped to the smallest normal F16
            for (int k = 0; k < weight.Length; k++)
                weight[k] /= sum;
        }
        if (scale != 1)
        {
            for (int k = 0; k < weight.Length; k++)
                weight[k] *= scale;
        }
    }

    private void EnsureCapacity(int rows, int experts, int used, int embd)
    {
        if (_chosen.Length >= rows * used)
            return;
        _router = new float[rows * experts];
        _chosen = new int[rows * used];
        _weight = new float[rows * used];
        _gathered = new float[rows * embd];
        _members = new int[rows];
        _outputs = new float[rows * used * embd];
        _combined = new float[rows * embd];
    }
}

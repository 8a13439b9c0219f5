using System.Numerics.Tensors;
using ManagedLM.Generation;
using ManagedLM.Kernels;

namespace ManagedLM.Model;

/// <summary>The forward pass of a decoder-only transformer (llama / qwen2 / qwen3), one position at a time.</summary>
internal static class Transformer
{
    /// <summary>
    /// Runs token <paramref name="token"/> at <paramref name="position"/>: appends its keys and values to
    /// <paramref name="cache"/> and, when <paramref name="computeLogits"/>, leaves the next-token logits in s.Logits.
    /// </summary>
    public static void Forward(TransformerModel model, ForwardState s, KvCache cache, int token, int position, bool computeLogits)
    {
        var c = model.Config;
        var w = model.Weights;
        w.TokenEmbedding.DequantizeRow(token, s.X);
        Rope.Angles(position, c.RopePositionScale, model.RopeInverseFrequencies, s.RopeCos, s.RopeSin);
        float attentionScale = 1.0f / MathF.Sqrt(c.HeadDim);

        for (int l = 0; l < c.BlockCount; l++)
        {
            var layer = w.Layers[l];

            // Attention: Q, K, V from the normalized stream; K and V go to the cache.
            RmsNorm.Apply(s.X, layer.AttentionNorm.Span, c.RmsNormEps, s.Normed);
            s.Input.Set(s.Normed, c.EmbeddingLength);
            Project(s, layer.Query, s.Query, layer.QueryBias);
            Project(s, layer.Key, s.Key, layer.KeyBias);
            Project(s, layer.Value, s.Value, layer.ValueBias);
            if (!layer.QueryNorm.IsEmpty)
                RmsNorm.ApplyPerHead(s.Query, layer.QueryNorm.Span, c.RmsNormEps);
            if (!layer.KeyNorm.IsEmpty)
                RmsNorm.ApplyPerHead(s.Key, layer.KeyNorm.Span, c.RmsNormEps);
            Rope.Apply(s.Query, c.HeadDim, s.RopeCos, s.RopeSin, c.RopeLayout);
            Rope.Apply(s.Key, c.HeadDim, s.RopeCos, s.RopeSin, c.RopeLayout);
            cache.Write(l, position, s.Key, s.Value);
            cache.Attend(l, position + 1, s.Query, c.HeadCount, c.KvHeadCount, c.HeadDim, attentionScale,
                s.Scores, s.AttentionScratch, s.Attended);
            s.Input.Set(s.Attended, c.QueryLength);
            Project(s, layer.Output, s.Projected, default);
            TensorPrimitives.Add(s.X, s.Projected, s.X);

            // Feed-forward: SwiGLU.
            RmsNorm.Apply(s.X, layer.FeedForwardNorm.Span, c.RmsNormEps, s.Normed);
            s.Input.Set(s.Normed, c.EmbeddingLength);
            Project(s, layer.Gate, s.Gate, default);
            Project(s, layer.Up, s.Up, default);
            SwiGlu.Apply(s.Gate, s.Up, s.Gate);
            s.Input.Set(s.Gate, c.FeedForwardLength);
            Project(s, layer.Down, s.Projected, default);
            TensorPrimitives.Add(s.X, s.Projected, s.X);
        }

        if (!computeLogits)
            return;
        RmsNorm.Apply(s.X, w.OutputNorm.Span, c.RmsNormEps, s.Normed);
        s.Input.Set(s.Normed, c.EmbeddingLength);
        Project(s, w.Output, s.Logits, default);
    }

    // y = W·input (+ bias, unless empty).
    private static void Project(ForwardState s, WeightMatrix w, float[] y, ReadOnlyMemory<float> bias)
    {
        s.MatVec.Run(w, s.Input, y);
        if (!bias.IsEmpty)
            TensorPrimitives.Add(y.AsSpan(0, w.Rows), bias.Span, y.AsSpan(0, w.Rows));
    }
}

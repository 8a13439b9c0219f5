using System.Runtime.CompilerServices;
using ManagedLM.Model;
using ManagedLM.Kernels;

namespace ManagedLM.Inference;

/// <summary>
/// The forward pass of a decoder-only transformer (llama / qwen2 / qwen3) over a batch of rows: the tokens of a
/// prompt chunk, or one token of each of several sequences, or a mix. Matmuls read each weight once for all rows;
/// attention is per row, over that row's own cache up to its position. A row's result does not depend on the other
/// rows: every product and every attention equals what the row would get alone, bit for bit.
/// </summary>
internal static class Transformer
{
    /// <summary>
    /// Runs rows s.Rows[0 .. rowCount): appends each row's keys and values to its cache at its position, and leaves
    /// the logits of the rows that want them in s.Logits, in row order (s.LogitRows lists them). Returns how many.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int Forward(TransformerModel model, ForwardState s, int rowCount)
    {
        var c = model.Config;
        var w = model.Weights;
        int embd = c.EmbeddingLength, qLength = c.QueryLength, kvLength = c.KvLength, ff = c.FeedForwardLength;
        int half = c.RopeDimensions / 2;
        float attentionScale = 1.0f / MathF.Sqrt(c.HeadDim);
        var rows = s.Rows.AsSpan(0, rowCount);

        for (int r = 0; r < rowCount; r++)
        {
            w.TokenEmbedding.DequantizeRow(rows[r].Token, s.X.AsSpan(r * embd, embd));
            Rope.Angles(rows[r].Position, c.RopePositionScale, model.RopeInverseFrequencies,
                s.RopeCos.AsSpan(r * half, half), s.RopeSin.AsSpan(r * half, half));
        }

        for (int l = 0; l < c.BlockCount; l++)
        {
            var layer = w.Layers[l];

            // Attention: Q, K, V from the normalized stream; K and V go to each row's cache.
            NormRows(s.X, s.Normed, embd, rowCount, layer.AttentionNorm.Span, c.RmsNormEps);
            s.Input.Set(s.Normed, embd, rowCount, embd);
            Project(s, layer.Query, s.Query, qLength, layer.QueryBias);
            Project(s, layer.Key, s.Key, kvLength, layer.KeyBias);
            Project(s, layer.Value, s.Value, kvLength, layer.ValueBias);
            for (int r = 0; r < rowCount; r++)
            {
                var q = s.Query.AsSpan(r * qLength, qLength);
                var k = s.Key.AsSpan(r * kvLength, kvLength);
                if (!layer.QueryNorm.IsEmpty)
                    RmsNorm.ApplyPerHead(q, layer.QueryNorm.Span, c.RmsNormEps);
                if (!layer.KeyNorm.IsEmpty)
                    RmsNorm.ApplyPerHead(k, layer.KeyNorm.Span, c.RmsNormEps);
                var cos = s.RopeCos.AsSpan(r * half, half);
                var sin = s.RopeSin.AsSpan(r * half, half);
                Rope.Apply(q, c.HeadDim, cos, sin, c.RopeLayout);
                Rope.Apply(k, c.HeadDim, cos, sin, c.RopeLayout);
                rows[r].Cache.Write(l, rows[r].Position, k, s.Value.AsSpan(r * kvLength, kvLength));
            }
            s.Attention.Run(c, s, l, rowCount, attentionScale);
            s.Input.Set(s.Attended, qLength, rowCount, qLength);
            Project(s, layer.Output, s.Projected, embd, default);
            Add.InPlace(s.X.AsSpan(0, rowCount * embd), s.Projected.AsSpan(0, rowCount * embd));

            // Feed-forward: SwiGLU.
            NormRows(s.X, s.Normed, embd, rowCount, layer.FeedForwardNorm.Span, c.RmsNormEps);
            s.Input.Set(s.Normed, embd, rowCount, embd);
            Project(s, layer.Gate, s.Gate, ff, default);
            Project(s, layer.Up, s.Up, ff, default);
            for (int r = 0; r < rowCount; r++) // per row: a row's vector/scalar split must not depend on its neighbours
                SwiGlu.Apply(s.Gate.AsSpan(r * ff, ff), s.Up.AsSpan(r * ff, ff), s.Gate.AsSpan(r * ff, ff));
            s.Input.Set(s.Gate, ff, rowCount, ff);
            Project(s, layer.Down, s.Projected, embd, default);
            Add.InPlace(s.X.AsSpan(0, rowCount * embd), s.Projected.AsSpan(0, rowCount * embd));
        }

        // Logits of the rows that want them, compacted: row k of Normed and Logits is the k-th such row.
        int logitRows = 0;
        for (int r = 0; r < rowCount; r++)
        {
            if (!rows[r].Logits)
                continue;
            RmsNorm.Apply(s.X.AsSpan(r * embd, embd), w.OutputNorm.Span, c.RmsNormEps, s.Normed.AsSpan(logitRows * embd, embd));
            s.LogitRows[logitRows++] = r;
        }
        if (logitRows == 0)
            return 0;
        s.Input.Set(s.Normed, embd, logitRows, embd);
        Project(s, w.Output, s.Logits, c.VocabSize, default);
        return logitRows;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void NormRows(float[] x, float[] dst, int width, int rows, ReadOnlySpan<float> weight, float eps)
    {
        for (int r = 0; r < rows; r++)
            RmsNorm.Apply(x.AsSpan(r * width, width), weight, eps, dst.AsSpan(r * width, width));
    }

    // y[r] = W·input[r] (+ bias, unless empty) for every input row; rows of y are `width` apart.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Project(ForwardState s, WeightMatrix w, float[] y, int width, ReadOnlyMemory<float> bias)
    {
        s.MatMul.Run(w, s.Input, y, width);
        if (bias.IsEmpty)
            return;
        for (int r = 0; r < s.Input.Rows; r++)
            Add.InPlace(y.AsSpan(r * width, w.Rows), bias.Span);
    }
}

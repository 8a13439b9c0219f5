using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using ManagedLM.Kernels;
using ManagedLM.Model;

namespace ManagedLM.Inference;

/// <summary>
/// The forward pass of a decoder-only transformer over a batch of rows: the tokens of a prompt chunk, or one token of
/// each of several sequences, or a mix. One pass for every family: what differs (<see cref="ModelArchitecture"/>, the
/// config's multipliers, caps and windows, the tensors a layer has) is data it reads, so a step that a model lacks is
/// a no-op here. Matmuls read each weight once for all rows; attention is per row, over that row's own cache up to its
/// position. A row's result does not depend on the other rows: every product and every attention equals what the row
/// would get alone, bit for bit.
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
        int logitRows = Hidden(model, s, rowCount);
        if (logitRows == 0)
            return 0;
        var c = model.Config;
        s.Input.Set(s.Normed, c.EmbeddingLength, logitRows, c.EmbeddingLength);
        Project(s, model.Weights.Output, s.Logits, c.VocabSize, default);
        var logits = s.Logits.AsSpan(0, logitRows * c.VocabSize);
        if (c.LogitScale != 1)
            Scale(logits, 1f / c.LogitScale);
        if (c.FinalLogitSoftCap > 0)
            SoftCap(logits, c.FinalLogitSoftCap);
        return logitRows;
    }

    /// <summary>
    /// Runs rows s.Rows[0 .. rowCount) through every block as <see cref="Forward"/> does, and leaves the final-norm hidden
    /// states of the rows that want logits in s.Normed, in row order (s.LogitRows lists them): what the output projection
    /// reads, and a decoder's embeddings. Returns how many.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int Hidden(TransformerModel model, ForwardState s, int rowCount)
    {
        var c = model.Config;
        var w = model.Weights;
        int embd = c.EmbeddingLength, qLength = c.QueryLength, kvLength = c.KvLength;
        var rows = s.Rows.AsSpan(0, rowCount);

        for (int r = 0; r < rowCount; r++)
        {
            var x = s.X.AsSpan(r * embd, embd);
            w.TokenEmbedding.DequantizeRow(rows[r].Token, x);
            Scale(x, c.EmbeddingScale);
        }
        RopeAngles(model, s, rows);
        Admit(rows);

        for (int l = 0; l < c.BlockCount; l++)
        {
            var layer = w.Layers[l];

            // Attention: Q, K, V from the normalized stream; K and V go to each row's cache.
            NormRows(s.X, s.Normed, embd, rowCount, layer.AttentionNorm.Span, c.RmsNormEps);
            s.Input.Set(s.Normed, embd, rowCount, embd);
            Project(s, layer.Query, s.Query, qLength, layer.QueryBias);
            Project(s, layer.Key, s.Key, kvLength, layer.KeyBias);
            Project(s, layer.Value, s.Value, kvLength, layer.ValueBias);
            int variant = model.Rope.VariantOf(l), half = c.RopeDimensions / 2;
            for (int r = 0; r < rowCount; r++)
            {
                var q = s.Query.AsSpan(r * qLength, qLength);
                var k = s.Key.AsSpan(r * kvLength, kvLength);
                if (!layer.QueryNorm.IsEmpty)
                    RmsNorm.ApplyPerHead(q, layer.QueryNorm.Span, c.RmsNormEps);
                if (!layer.KeyNorm.IsEmpty)
                    RmsNorm.ApplyPerHead(k, layer.KeyNorm.Span, c.RmsNormEps);
                int at = (variant * rowCount + r) * half;
                var cos = s.RopeCos.AsSpan(at, half);
                var sin = s.RopeSin.AsSpan(at, half);
                Rope.Apply(q, c.HeadDim, cos, sin, c.RopeLayout);
                Rope.Apply(k, c.HeadDim, cos, sin, c.RopeLayout);
                if (c.Family.ScalesQueries)
                    Scale(q, c.AttentionScale);
                rows[r].Cache.Write(l, rows[r].Position, k, s.Value.AsSpan(r * kvLength, kvLength));
            }
            s.Attention.Run(c, s, l, rowCount, c.Family.ScalesQueries ? 1f : c.AttentionScale, c.ScoreShape(l));
            s.Input.Set(s.Attended, qLength, rowCount, qLength);
            Project(s, layer.Output, s.Projected, embd, default);
            Residual(s, rowCount, embd, layer.PostAttentionNorm.Span, c);

            // Feed-forward: a gated FFN, or the experts the router picks for each row.
            NormRows(s.X, s.Normed, embd, rowCount, layer.FeedForwardNorm.Span, c.RmsNormEps);
            if (layer.Experts.IsEmpty)
                FeedForward(s, layer.Gate!, layer.Up!, layer.Down!, rowCount, c.Family.Gate);
            else
                s.Experts.Run(s, layer, rowCount, c);
            Residual(s, rowCount, embd, layer.PostFeedForwardNorm.Span, c);
        }

        // The final norm of the rows that want logits, compacted: row k of Normed (and of Logits) is the k-th such row.
        int logitRows = 0;
        for (int r = 0; r < rowCount; r++)
        {
            if (!rows[r].Logits)
                continue;
            RmsNorm.Apply(s.X.AsSpan(r * embd, embd), w.OutputNorm.Span, c.RmsNormEps, s.Normed.AsSpan(logitRows * embd, embd));
            s.LogitRows[logitRows++] = r;
        }
        return logitRows;
    }

    /// <summary>
    /// Projected ← gate(Gate·Normed) ⊙ Up·Normed, then ·Down, for every row (SwiGLU or GeGLU). Also an expert's
    /// feed-forward, on the rows routed to it: s.Input must then hold those rows (<see cref="ExpertFeedForward"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void FeedForward(ForwardState s, WeightMatrix gate, WeightMatrix up, WeightMatrix down, int rowCount, FeedForwardGate kind,
        bool inputSet = false)
    {
        int ff = gate.Rows, embd = down.Rows;
        if (!inputSet)
            s.Input.Set(s.Normed, embd, rowCount, embd);
        Project(s, gate, s.Gate, ff, default);
        Project(s, up, s.Up, ff, default);
        for (int r = 0; r < rowCount; r++) // per row: a row's vector/scalar split must not depend on its neighbours
        {
            var g = s.Gate.AsSpan(r * ff, ff);
            if (kind == FeedForwardGate.GeluTanh)
                GeGlu.Apply(g, s.Up.AsSpan(r * ff, ff), g);
            else
                SwiGlu.Apply(g, s.Up.AsSpan(r * ff, ff), g);
        }
        s.Input.Set(s.Gate, ff, rowCount, ff);
        Project(s, down, s.Projected, embd, default);
    }

    // X += post-norm(Projected) · residual scale, each step only where the model has it.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Residual(ForwardState s, int rowCount, int embd, ReadOnlySpan<float> postNorm, ModelConfig c)
    {
        if (!postNorm.IsEmpty)
            NormRows(s.Projected, s.Projected, embd, rowCount, postNorm, c.RmsNormEps);
        var projected = s.Projected.AsSpan(0, rowCount * embd);
        Scale(projected, c.ResidualScale);
        Add.InPlace(s.X.AsSpan(0, rowCount * embd), projected);
    }

    // Each sequence's cache makes room for the positions its rows write (sliding layers drop what no window sees any more).
    // A sequence's rows are consecutive in a pass.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Admit(ReadOnlySpan<ForwardRow> rows)
    {
        for (int r = 0, end; r < rows.Length; r = end)
        {
            for (end = r + 1; end < rows.Length && rows[end].Cache == rows[r].Cache; end++) { }
            rows[r].Cache.Admit(rows[r].Position, rows[end - 1].Position);
        }
    }

    // cos/sin of each row's position for each RoPE variant: [variants × rows × rope_dims/2].
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RopeAngles(TransformerModel model, ForwardState s, ReadOnlySpan<ForwardRow> rows)
    {
        int half = model.Config.RopeDimensions / 2;
        for (int v = 0; v < model.Rope.Variants; v++)
        {
            for (int r = 0; r < rows.Length; r++)
            {
                int at = (v * rows.Length + r) * half;
                Rope.Angles(rows[r].Position, model.Rope.For(v, rows[r].Cache.MaxLength), s.RopeCos.AsSpan(at, half), s.RopeSin.AsSpan(at, half));
            }
        }
    }

    private static void Scale(Span<float> x, float a)
    {
        if (a != 1)
            TensorPrimitives.Multiply(x, a, x);
    }

    private static void SoftCap(Span<float> x, float cap)
    {
        for (int i = 0; i < x.Length; i++)
            x[i] = ScoreShape.Capped(x[i], cap);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void NormRows(float[] x, float[] dst, int width, int rows, ReadOnlySpan<float> weight, float eps)
    {
        for (int r = 0; r < rows; r++)
            RmsNorm.Apply(x.AsSpan(r * width, width), weight, eps, dst.AsSpan(r * width, width));
    }

    // y[r] = W·input[r] (+ bias, unless empty) for every input row; rows of y are `width` apart.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Project(ForwardState s, WeightMatrix w, float[] y, int width, ReadOnlyMemory<float> bias)
    {
        s.MatMul.Run(w, s.Input, y, width);
        if (bias.IsEmpty)
            return;
        for (int r = 0; r < s.Input.Rows; r++)
            Add.InPlace(y.AsSpan(r * width, w.Rows), bias.Span);
    }
}

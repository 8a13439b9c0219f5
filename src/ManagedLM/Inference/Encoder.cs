using System.Runtime.CompilerServices;
using ManagedLM.Kernels;
using ManagedLM.Model;

namespace ManagedLM.Inference;

/// <summary>
/// The forward pass of an encoder (<see cref="ModelArchitecture.Encoder"/>: BERT) over whole sequences packed into one
/// batch of rows, as llama.cpp computes it: x = token_embd[id] + token_types[0] + position_embd[p], LayerNorm; per block
/// q, k, v (+ biases), attention over the row's own sequence, the output projection (+ bias), x = LayerNorm(x + that);
/// f = down·gelu(up·x + b) + b, x = LayerNorm(x + f). Nothing is cached: a sequence is evaluated whole. The matmuls read
/// each weight once for all rows of all sequences; a row's result does not depend on the other rows, so a sequence's
/// hidden states are the same bits alone or packed with others.
/// </summary>
internal static class Encoder
{
    /// <summary>
    /// Runs the <paramref name="sequences"/> sequences whose tokens are e.Tokens and bounds e.Starts (positions from 0 in
    /// each), leaving the final hidden states in e.Forward.X, row r at r · n_embd.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Forward(TransformerModel model, EncoderState e, int sequences)
    {
        var c = model.Config;
        var w = model.Weights;
        var s = e.Forward;
        int embd = c.EmbeddingLength, qLength = c.QueryLength, kvLength = c.KvLength, rows = e.Starts[sequences];
        e.Arrange(sequences);

        for (int r = 0; r < rows; r++)
        {
            var x = s.X.AsSpan(r * embd, embd);
            w.TokenEmbedding.DequantizeRow(e.Tokens[r], x);
            if (!w.TokenType.IsEmpty)
                Add.InPlace(x, w.TokenType.Span);
            if (w.PositionEmbedding is { } positions)
            {
                var p = s.Normed.AsSpan(r * embd, embd);
                positions.DequantizeRow(r - e.Starts[e.SequenceOf[r]], p);
                Add.InPlace(x, p);
            }
        }
        Norm(s.X, embd, rows, w.EmbeddingNorm.Span, w.EmbeddingNormBias.Span, c.RmsNormEps);

        for (int l = 0; l < c.BlockCount; l++)
        {
            var layer = w.Layers[l];
            s.Input.Set(s.X, embd, rows, embd);
            Transformer.Project(s, layer.Query, s.Query, qLength, layer.QueryBias);
            Transformer.Project(s, layer.Key, s.Key, kvLength, layer.KeyBias);
            Transformer.Project(s, layer.Value, s.Value, kvLength, layer.ValueBias);
            e.Attention.Run(c, e, rows, sequences);
            s.Input.Set(s.Attended, qLength, rows, qLength);
            Transformer.Project(s, layer.Output, s.Projected, embd, layer.OutputBias);
            Residual(s, rows, embd, layer.AttentionNorm.Span, layer.AttentionNormBias.Span, c.RmsNormEps);

            FeedForward(s, layer, rows, c.Family.Gate);
            Residual(s, rows, embd, layer.FeedForwardNorm.Span, layer.FeedForwardNormBias.Span, c.RmsNormEps);
        }
    }

    // Projected ← down·gelu(up·X + b) + b, or down·(act(gate·X) ⊙ (up·X + b)) + b where the block has a gate.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FeedForward(ForwardState s, LayerWeights layer, int rows, FeedForwardGate kind)
    {
        var up = layer.Up!;
        int ff = up.Rows, embd = up.Columns;
        s.Input.Set(s.X, embd, rows, embd);
        Transformer.Project(s, up, s.Up, ff, layer.UpBias);
        if (layer.Gate is { } gate)
            Transformer.Project(s, gate, s.Gate, ff, default);
        for (int r = 0; r < rows; r++)
        {
            var u = s.Up.AsSpan(r * ff, ff);
            if (layer.Gate is null)
                GeGlu.Gelu(u, u);
            else if (kind == FeedForwardGate.GeluTanh)
                GeGlu.Apply(s.Gate.AsSpan(r * ff, ff), u, u);
            else
                SwiGlu.Apply(s.Gate.AsSpan(r * ff, ff), u, u);
        }
        s.Input.Set(s.Up, ff, rows, ff);
        Transformer.Project(s, layer.Down!, s.Projected, embd, layer.DownBias);
    }

    // X = LayerNorm(X + Projected).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Residual(ForwardState s, int rows, int embd, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, float eps)
    {
        Add.InPlace(s.X.AsSpan(0, rows * embd), s.Projected);
        Norm(s.X, embd, rows, weight, bias, eps);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Norm(float[] x, int embd, int rows, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, float eps)
    {
        if (weight.IsEmpty)
            return;
        for (int r = 0; r < rows; r++)
        {
            var row = x.AsSpan(r * embd, embd);
            LayerNorm.Apply(row, weight, bias, eps, row);
        }
    }
}

using System.Numerics.Tensors;

namespace ManagedLM.Kernels;

/// <summary>Scaled dot-product attention of one query position over a sequence's cached keys and values.</summary>
public static class Attention
{
    /// <summary>
    /// Grouped-query attention for one position.
    /// q: [heads × headDim]; keys, values: [length × kvHeads·headDim] (row t = position t);
    /// scores: scratch of at least length; output: [heads × headDim].
    /// Query head h reads KV head h / (heads / kvHeads).
    /// </summary>
    public static void Decode(
        ReadOnlySpan<float> q, ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int length,
        int heads, int kvHeads, int headDim, float scale, Span<float> scores, Span<float> output)
    {
        int kvDim = kvHeads * headDim;
        int group = heads / kvHeads;
        if (heads % kvHeads != 0 || q.Length < heads * headDim || output.Length < heads * headDim
            || keys.Length < length * kvDim || values.Length < length * kvDim || scores.Length < length)
            throw new ArgumentException("Attention buffers do not match the head geometry.");
        var s = scores[..length];
        for (int h = 0; h < heads; h++)
        {
            var qh = q.Slice(h * headDim, headDim);
            int kvOffset = h / group * headDim;
            for (int t = 0; t < length; t++)
                s[t] = Dot.F32Core(qh, keys.Slice(t * kvDim + kvOffset, headDim)) * scale;
            Softmax.InPlace(s);
            var oh = output.Slice(h * headDim, headDim);
            oh.Clear();
            for (int t = 0; t < length; t++)
                TensorPrimitives.MultiplyAdd(values.Slice(t * kvDim + kvOffset, headDim), s[t], oh, oh);
        }
    }
}

using System.Numerics.Tensors;

namespace ManagedLM.Kernels;

/// <summary>Scaled dot-product attention of one query position over a sequence's cached keys and values.</summary>
public static class Attention
{
    /// <summary>
    /// Grouped-query attention for one position over an F32 cache.
    /// q: [heads × headDim]; keys, values: [length × kvHeads·headDim] (row t = position t);
    /// scores: scratch of at least length; output: [heads × headDim].
    /// Query head h reads KV head h / (heads / kvHeads).
    /// </summary>
    public static void Decode(
        ReadOnlySpan<float> q, ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int length,
        int heads, int kvHeads, int headDim, float scale, Span<float> scores, Span<float> output)
    {
        Check(q.Length, keys.Length, values.Length, length, heads, kvHeads, headDim, scores.Length, output.Length);
        int group = heads / kvHeads;
        for (int h = 0; h < heads; h++)
            DecodeHead(q.Slice(h * headDim, headDim), keys, values, length, kvHeads * headDim, h / group * headDim, scale, scores,
                output.Slice(h * headDim, headDim));
    }

    /// <summary>
    /// Attention over an F16 cache, rounding as llama.cpp does with an F16 KV cache: the query is
    /// rounded to F16 for Q·Kᵀ and the softmax weights to F16 for ·V (sums stay F32).
    /// Shapes as the F32 overload; scratch: at least 2·headDim.
    /// </summary>
    public static void Decode(
        ReadOnlySpan<float> q, ReadOnlySpan<ushort> keys, ReadOnlySpan<ushort> values, int length,
        int heads, int kvHeads, int headDim, float scale, Span<float> scores, Span<float> scratch, Span<float> output)
    {
        Check(q.Length, keys.Length, values.Length, length, heads, kvHeads, headDim, scores.Length, output.Length);
        if (scratch.Length < 2 * headDim)
            throw new ArgumentException($"Attention scratch needs {2 * headDim} floats.", nameof(scratch));
        int group = heads / kvHeads;
        for (int h = 0; h < heads; h++)
            DecodeHead(q.Slice(h * headDim, headDim), keys, values, length, kvHeads * headDim, h / group * headDim, scale, scores, scratch,
                output.Slice(h * headDim, headDim));
    }

    /// <summary>
    /// One query head over an F32 cache. qh, output: [headDim]; keys, values: [length × kvDim], the head's
    /// columns at <paramref name="kvOffset"/>; scores: scratch of at least length.
    /// </summary>
    public static void DecodeHead(ReadOnlySpan<float> qh, ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int length,
        int kvDim, int kvOffset, float scale, Span<float> scores, Span<float> output)
    {
        int headDim = qh.Length;
        var s = scores[..length];
        for (int t = 0; t < length; t++)
            s[t] = Dot.F32Core(qh, keys.Slice(t * kvDim + kvOffset, headDim)) * scale;
        Softmax.InPlace(s);
        var oh = output[..headDim];
        oh.Clear();
        for (int t = 0; t < length; t++)
            TensorPrimitives.MultiplyAdd(values.Slice(t * kvDim + kvOffset, headDim), s[t], oh, oh);
    }

    /// <summary>One query head over an F16 cache (see the F16 <see cref="Decode(ReadOnlySpan{float}, ReadOnlySpan{ushort}, ReadOnlySpan{ushort}, int, int, int, int, float, Span{float}, Span{float}, Span{float})"/>); scratch: at least 2·headDim.</summary>
    public static void DecodeHead(ReadOnlySpan<float> qh, ReadOnlySpan<ushort> keys, ReadOnlySpan<ushort> values, int length,
        int kvDim, int kvOffset, float scale, Span<float> scores, Span<float> scratch, Span<float> output)
    {
        int headDim = qh.Length;
        var s = scores[..length];
        var q16 = scratch[..headDim];
        var vt = scratch.Slice(headDim, headDim);
        RoundToHalf(qh, q16);
        for (int t = 0; t < length; t++)
            s[t] = Float16.Dot(keys.Slice(t * kvDim + kvOffset, headDim), q16) * scale;
        Softmax.InPlace(s);
        RoundToHalf(s, s);
        var oh = output[..headDim];
        oh.Clear();
        for (int t = 0; t < length; t++)
        {
            Float16.ToSingle(values.Slice(t * kvDim + kvOffset, headDim), vt);
            TensorPrimitives.MultiplyAdd(vt, s[t], oh, oh);
        }
    }

    // dst = the F16 value nearest to each src value, as F32 (dst may alias src).
    private static void RoundToHalf(ReadOnlySpan<float> src, Span<float> dst)
    {
        for (int i = 0; i < src.Length; i++)
            dst[i] = Float16.ToSingle(Float16.FromSingle(src[i]));
    }

    private static void Check(int q, int keys, int values, int length, int heads, int kvHeads, int headDim, int scores, int output)
    {
        int kvDim = kvHeads * headDim;
        if (kvHeads <= 0 || heads % kvHeads != 0 || q < heads * headDim || output < heads * headDim
            || keys < length * kvDim || values < length * kvDim || scores < length)
            throw new ArgumentException("Attention buffers do not match the head geometry.");
    }
}

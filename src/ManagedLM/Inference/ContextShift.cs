using System.Buffers;
using System.Runtime.CompilerServices;
using ManagedLM.Kernels;
using ManagedLM.Model;

namespace ManagedLM.Inference;

/// <summary>
/// llama.cpp's K-shift (<c>seq_rm</c> then <c>seq_add</c> with −discard): drops cached positions [keep, keep + discard)
/// and moves [keep + discard, length) down to [keep, length − discard). Keys are stored after RoPE, a rotation by an angle
/// linear in the position, so a moved key is rotated by the angles of −discard (cos and sin without the YaRN/longrope
/// magnitude, which the stored key already carries): the key it would have had at its new position. Values move as they
/// are. Works through <see cref="KvCache.ReadRow"/> and <see cref="KvCache.Write"/>, so it serves every cache type.
/// </summary>
internal static class ContextShift
{
    /// <summary>Shifts <paramref name="cache"/> (<paramref name="length"/> positions cached) of a sequence of <paramref name="model"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // rare, but its first call should not run the loops unoptimized
    public static void Apply(TransformerModel model, KvCache cache, int keep, int discard, int length)
    {
        if (keep < 0 || discard < 1 || keep + discard > length || length > cache.Capacity)
            throw new ArgumentOutOfRangeException(nameof(discard), $"Cannot discard [{keep}, {keep + discard}) of {length} cached positions.");
        var c = model.Config;
        int half = c.RopeDimensions / 2, row = cache.RowLength, moved = length - keep - discard;
        if (moved == 0)
            return;

        // cos/sin of −discard per RoPE variant: [variants × half].
        int variants = model.Rope.Variants;
        var cos = new float[variants * half];
        var sin = new float[variants * half];
        for (int v = 0; v < variants; v++)
            Rope.Angles(-discard, model.Rope.For(v, cache.MaxLength), 1f, cos.AsSpan(v * half, half), sin.AsSpan(v * half, half));

        // A layer's moved rows are all read before any is written: a cache that maps positions onto fewer slots
        // (a ring for a sliding window) must not see a row overwritten before it is read.
        float[] keys = ArrayPool<float>.Shared.Rent(moved * row), values = ArrayPool<float>.Shared.Rent(moved * row);
        try
        {
            for (int l = 0; l < cache.LayerCount; l++)
            {
                int v = model.Rope.VariantOf(l);
                for (int i = 0; i < moved; i++)
                    cache.ReadRow(l, keep + discard + i, keys.AsSpan(i * row, row), values.AsSpan(i * row, row));
                cache.PrepareShift(l, length - discard);
                for (int i = 0; i < moved; i++)
                {
                    var k = keys.AsSpan(i * row, row);
                    Rope.Apply(k, c.HeadDim, cos.AsSpan(v * half, half), sin.AsSpan(v * half, half), c.RopeLayout);
                    cache.Write(l, keep + i, k, values.AsSpan(i * row, row));
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(keys);
            ArrayPool<float>.Shared.Return(values);
        }
    }
}

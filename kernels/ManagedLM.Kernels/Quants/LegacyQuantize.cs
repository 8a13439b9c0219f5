namespace ManagedLM.Kernels.Quants;

/// <summary>Pieces of ggml's reference quantizers shared by the legacy block types.</summary>
internal static class LegacyQuantize
{
    /// <summary>(the value of largest magnitude, first one on ties) / <paramref name="divisor"/>: the d of Q4_0 (−8) and Q5_0 (−16).</summary>
    public static float SymmetricScale(ReadOnlySpan<float> x, float divisor)
    {
        float amax = 0, max = 0;
        foreach (float v in x)
        {
            if (amax < MathF.Abs(v))
            {
                amax = MathF.Abs(v);
                max = v;
            }
        }
        return max / divisor;
    }

    /// <summary>The minimum and maximum of <paramref name="x"/>, as Q4_1 and Q5_1 find them.</summary>
    public static (float Min, float Max) Range(ReadOnlySpan<float> x)
    {
        float min = float.MaxValue, max = -float.MaxValue;
        foreach (float v in x)
        {
            if (v < min) min = v;
            if (v > max) max = v;
        }
        return (min, max);
    }

    public static void CheckLengths(int values, int blocks)
    {
        if (values != blocks * LegacyDot.BlockSize)
            throw new ArgumentException($"{blocks} blocks hold {blocks * LegacyDot.BlockSize} values; got {values}.");
    }

    /// <summary>Stores 5-bit quants of elements j and j+16: low four bits into <paramref name="qs"/>, fifth bits into bits j and j+16 of <paramref name="qh"/>.</summary>
    public static void Pack5(ref byte qs, ref uint qh, int j, int q0, int q1)
    {
        qs = (byte)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
        qh |= (uint)((q0 & 0x10) >> 4) << j;
        qh |= (uint)((q1 & 0x10) >> 4) << (j + 16);
    }
}

using System.Runtime.CompilerServices;

namespace ManagedLM.Kernels;

/// <summary>How RoPE pairs the dimensions of a head.</summary>
public enum RopeLayout
{
    /// <summary>Adjacent pairs (2i, 2i+1): Llama.</summary>
    Normal,
    /// <summary>Split halves (i, i + d/2): GPT-NeoX, Qwen.</summary>
    NeoX,
}

/// <summary>Rotary position embedding.</summary>
public static class Rope
{
    /// <summary>
    /// Inverse frequencies θᵢ = base^(−2i/rotDims) / factorᵢ for the rotDims/2 pairs (factors: Llama-3
    /// <c>rope_freqs</c>, or empty).
    /// </summary>
    public static float[] InverseFrequencies(int rotDims, float freqBase, ReadOnlySpan<float> freqFactors)
    {
        if (rotDims <= 0 || rotDims % 2 != 0)
            throw new ArgumentOutOfRangeException(nameof(rotDims), rotDims, "RoPE dimensions must be a positive even number.");
        if (!freqFactors.IsEmpty && freqFactors.Length != rotDims / 2)
            throw new ArgumentException($"Expected {rotDims / 2} frequency factors, got {freqFactors.Length}.", nameof(freqFactors));
        var inv = new float[rotDims / 2];
        for (int i = 0; i < inv.Length; i++)
        {
            double theta = Math.Pow(freqBase, -2.0 * i / rotDims);
            if (!freqFactors.IsEmpty)
                theta /= freqFactors[i];
            inv[i] = (float)theta;
        }
        return inv;
    }

    /// <summary>cos/sin of the rotation angles at <paramref name="position"/> (scaled linearly by <paramref name="positionScale"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Angles(int position, float positionScale, ReadOnlySpan<float> inverseFrequencies, Span<float> cos, Span<float> sin)
    {
        double p = position * (double)positionScale;
        for (int i = 0; i < inverseFrequencies.Length; i++)
        {
            (double s, double c) = Math.SinCos(p * inverseFrequencies[i]);
            cos[i] = (float)c;
            sin[i] = (float)s;
        }
    }

    /// <summary>cos/sin of the rotation angles at <paramref name="position"/> for <paramref name="f"/>'s pairs, times its magnitude.</summary>
    public static void Angles(int position, RopeFrequencies f, Span<float> cos, Span<float> sin) => Angles(position, f, f.Magnitude, cos, sin);

    /// <summary>
    /// cos/sin of <paramref name="f"/>'s angles at <paramref name="position"/> (negative: a rotation back, as a context
    /// shift's) times <paramref name="magnitude"/> (1 for a pure rotation).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Angles(int position, RopeFrequencies f, float magnitude, Span<float> cos, Span<float> sin)
    {
        var inverse = f.InverseValues;
        var scale = f.PositionScaleValues;
        float m = magnitude;
        for (int i = 0; i < inverse.Length; i++)
        {
            (double s, double c) = Math.SinCos(position * scale[i] * inverse[i]);
            cos[i] = (float)c * m;
            sin[i] = (float)s * m;
        }
    }

    /// <summary>
    /// Rotates the first 2·cos.Length dimensions of each head of <paramref name="x"/> ([heads × headDim]) in place.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Apply(Span<float> x, int headDim, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, RopeLayout layout)
    {
        int half = cos.Length;
        if (2 * half > headDim || x.Length % headDim != 0)
            throw new ArgumentException($"RoPE over {2 * half} dims does not fit heads of {headDim} in a vector of {x.Length}.");
        for (int h = 0; h < x.Length; h += headDim)
        {
            var head = x.Slice(h, headDim);
            if (layout == RopeLayout.Normal)
            {
                for (int i = 0; i < half; i++)
                {
                    float a = head[2 * i], b = head[2 * i + 1];
                    head[2 * i] = a * cos[i] - b * sin[i];
                    head[2 * i + 1] = a * sin[i] + b * cos[i];
                }
            }
            else
            {
                for (int i = 0; i < half; i++)
                {
                    float a = head[i], b = head[i + half];
                    head[i] = a * cos[i] - b * sin[i];
                    head[i + half] = a * sin[i] + b * cos[i];
                }
            }
        }
    }
}

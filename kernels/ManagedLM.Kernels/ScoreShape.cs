using System.Runtime.CompilerServices;

namespace ManagedLM.Kernels;

/// <summary>
/// What a layer does to its attention scores before the softmax, beyond scaling: a soft cap (s ← cap · tanh(s / cap),
/// Gemma 2) and a sliding window (a query at position p sees the keys of positions p − window + 1 … p). The default
/// does neither.
/// </summary>
/// <param name="SoftCap">The cap; 0 for none.</param>
/// <param name="Window">Positions a query sees, itself included; 0 for all of them.</param>
public readonly record struct ScoreShape(float SoftCap = 0, int Window = 0)
{
    /// <summary>s capped as llama.cpp does it: scaled by 1/cap, tanh, scaled by cap; s itself when there is no cap.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Cap(float s) => SoftCap > 0 ? Capped(s, SoftCap) : s;

    /// <summary>cap · tanh(s / cap) as llama.cpp computes a soft cap (scale by 1/cap, tanh, scale by cap): attention scores, Gemma 2's logits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Capped(float s, float cap) => MathF.Tanh(s * (1f / cap)) * cap;

    /// <summary>The first of <paramref name="length"/> positions (0 … length − 1, the query at the last) that the query sees.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int FirstSeen(int length) => Window > 0 && length > Window ? length - Window : 0;
}

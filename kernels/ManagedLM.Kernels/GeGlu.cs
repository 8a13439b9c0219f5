using System.Runtime.CompilerServices;

namespace ManagedLM.Kernels;

/// <summary>
/// The GELU-gated feed-forward of Gemma: dst = gelu(gate) · up (and BERT's ungated dst = gelu(x)), gelu the tanh approximation
/// 0.5·g·(1 + tanh(√(2/π)·g·(1 + 0.044715·g²))) as llama.cpp's CPU backend computes it: looked up in a table of F16
/// results by the F16 rounding of g, with g ≤ −10 giving 0 and g ≥ 10 giving g.
/// </summary>
public static class GeGlu
{
    private const float CoefA = 0.044715f;
    private const float SqrtTwoOverPi = 0.79788456080286535587989211986876f;

    // gelu of every F16 value, rounded to F16 and widened: [65536].
    [ThreadSafeStatic("filled once in the static constructor, never written after")]
    private static readonly float[] Table = BuildTable();

    /// <summary><paramref name="dst"/> may alias <paramref name="gate"/> or <paramref name="up"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Apply(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> dst)
    {
        if (up.Length != gate.Length || dst.Length != gate.Length)
            throw new ArgumentException($"GeGLU lengths differ: gate {gate.Length}, up {up.Length}, dst {dst.Length}.");
        var table = Table;
        for (int i = 0; i < gate.Length; i++)
            dst[i] = Gelu(gate[i], table) * up[i];
    }

    /// <summary>dst = gelu(x), element by element (an ungated feed-forward); <paramref name="dst"/> may alias <paramref name="x"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Gelu(ReadOnlySpan<float> x, Span<float> dst)
    {
        if (dst.Length != x.Length)
            throw new ArgumentException($"GELU lengths differ: x {x.Length}, dst {dst.Length}.");
        var table = Table;
        for (int i = 0; i < x.Length; i++)
            dst[i] = Gelu(x[i], table);
    }

    /// <summary>gelu(g) of one value, the table's way.</summary>
    public static float Gelu(float g) => Gelu(g, Table);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Gelu(float g, float[] table) =>
        g <= -10f ? 0f : g >= 10f ? g : table[Float16.FromSingle(g)];

    /// <summary>The formula in single precision (what the table holds before its F16 rounding).</summary>
    internal static float Reference(float g) => 0.5f * g * (1.0f + MathF.Tanh(SqrtTwoOverPi * g * (1.0f + CoefA * g * g)));

    private static float[] BuildTable()
    {
        var t = new float[65536];
        for (int h = 0; h < t.Length; h++)
            t[h] = Float16.ToSingle(Float16.FromSingle(Reference(Float16.ToSingle((ushort)h))));
        return t;
    }
}

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ManagedLM.Kernels;

/// <summary>The SwiGLU gate of a feed-forward block: dst = silu(gate) · up, silu(g) = g / (1 + e^−g).</summary>
public static class SwiGlu
{
    /// <summary><paramref name="dst"/> may alias <paramref name="gate"/> or <paramref name="up"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Apply(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> dst)
    {
        if (up.Length != gate.Length || dst.Length != gate.Length)
            throw new ArgumentException($"SwiGLU lengths differ: gate {gate.Length}, up {up.Length}, dst {dst.Length}.");
        int i = 0;
        if (CpuFeatures.Vector256)
        {
            ref float g = ref MemoryMarshal.GetReference(gate);
            ref float u = ref MemoryMarshal.GetReference(up);
            ref float d = ref MemoryMarshal.GetReference(dst);
            for (; i + 8 <= gate.Length; i += 8)
            {
                var gv = Vector256.LoadUnsafe(ref g, (nuint)i);
                var silu = gv / (Vector256<float>.One + Vector256.Exp(-gv));
                (silu * Vector256.LoadUnsafe(ref u, (nuint)i)).StoreUnsafe(ref d, (nuint)i);
            }
        }
        for (; i < gate.Length; i++)
            dst[i] = Reference(gate[i], up[i]);
    }

    /// <summary>Scalar reference of one element.</summary>
    internal static float Reference(float gate, float up) => gate / (1.0f + MathF.Exp(-gate)) * up;
}

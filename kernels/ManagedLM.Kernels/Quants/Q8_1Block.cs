using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ManagedLM.Kernels.Quants;

/// <summary>
/// ggml <c>block_q8_1</c> (36 bytes, 32 values): value j = D·Qs[j], with S = D·ΣQs stored beside.
/// The activation form that Q4_1 and Q5_1 weights are dotted with (S carries their offset term).
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct Q8_1Block : IQuantizableBlock<Q8_1Block>
{
    /// <summary>Scale, F16 bits.</summary>
    public ushort D;

    /// <summary>D·ΣQs, F16 bits.</summary>
    public ushort S;

    /// <summary>Quants in element order.</summary>
    public SBytes32 Qs;

    public static GgmlType Type => GgmlType.Q8_1;
    public static int BlockSize => 32;
    public static GgmlType DotType => GgmlType.Q8_1;

    public static void Dequantize(ReadOnlySpan<Q8_1Block> blocks, Span<float> dst)
    {
        if (dst.Length != blocks.Length * 32)
            throw new ArgumentException($"{blocks.Length} blocks hold {blocks.Length * 32} values; the destination has {dst.Length}.", nameof(dst));
        for (int b = 0; b < blocks.Length; b++)
        {
            float d = Float16.ToSingle(blocks[b].D);
            for (int j = 0; j < 32; j++)
                dst[b * 32 + j] = blocks[b].Qs[j] * d;
        }
    }

    /// <summary>Σ d_w·d_a·Σq_w·q_a against Q8_1 activation blocks (scalar; ggml has no Q8_1 weights, this exists for completeness).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot(ReadOnlySpan<Q8_1Block> blocks, ReadOnlySpan<byte> activation)
    {
        LegacyDot.CheckActivation(blocks.Length, activation.Length, LegacyDot.Q8_1Bytes);
        ReadOnlySpan<Q8_1Block> a = MemoryMarshal.Cast<byte, Q8_1Block>(activation);
        float sum = 0;
        for (int b = 0; b < blocks.Length; b++)
        {
            int sumi = 0;
            for (int j = 0; j < 32; j++)
                sumi += blocks[b].Qs[j] * a[b].Qs[j];
            sum += sumi * (Float16.ToSingle(blocks[b].D) * Float16.ToSingle(a[b].D));
        }
        return sum;
    }

    /// <summary>As <c>quantize_row_q8_1_ref</c>: the Q8_0 quants plus S = F16(Σq·d). Vectorized; finite inputs.</summary>
    public static void Quantize(ReadOnlySpan<float> src, Span<Q8_1Block> dst) => Quantize(src, dst, reference: false);

    /// <summary>A matmul's activations as llama.cpp's CPU backend quantizes them on x86 (<see cref="Q8Quantizer.ActivationBlock"/>).</summary>
    public static void QuantizeActivation(ReadOnlySpan<float> src, Span<Q8_1Block> dst)
    {
        LegacyQuantize.CheckLengths(src.Length, dst.Length);
        for (int b = 0; b < dst.Length; b++)
        {
            ref Q8_1Block y = ref dst[b];
            int sum = Q8Quantizer.ActivationBlock(in src[b * 32], ref y.Qs[0], out float d, sum: true);
            y.D = Float16.FromSingle(d);
            y.S = Float16.FromSingle(sum * d);
        }
    }

    /// <summary>Scalar reference for <see cref="Quantize(ReadOnlySpan{float}, Span{Q8_1Block})"/>.</summary>
    internal static void QuantizeReference(ReadOnlySpan<float> src, Span<Q8_1Block> dst) => Quantize(src, dst, reference: true);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Quantize(ReadOnlySpan<float> src, Span<Q8_1Block> dst, bool reference)
    {
        LegacyQuantize.CheckLengths(src.Length, dst.Length);
        for (int b = 0; b < dst.Length; b++)
        {
            ref Q8_1Block y = ref dst[b];
            float d;
            int sum = reference
                ? Q8Quantizer.BlockReference(in src[b * 32], ref y.Qs[0], out d)
                : Q8Quantizer.Block(in src[b * 32], ref y.Qs[0], out d, sum: true);
            y.D = Float16.FromSingle(d);
            y.S = Float16.FromSingle(sum * d);
        }
    }
}

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ManagedLM.Kernels.Quants;

/// <summary>
/// ggml <c>block_q8_0</c> (34 bytes, 32 values): value j = D·Qs[j]. Also the activation form that
/// Q4_0, Q5_0, Q8_0 and IQ4_NL weights are dotted with.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct Q8_0Block : IQuantizableBlock<Q8_0Block>, ISignedQuantBlock<Q8_0Block>
{
    /// <summary>Scale, F16 bits.</summary>
    public ushort D;

    /// <summary>Quants in element order.</summary>
    public SBytes32 Qs;

    public static GgmlType Type => GgmlType.Q8_0;
    public static int BlockSize => 32;
    public static GgmlType DotType => GgmlType.Q8_0;

    public static void Dequantize(ReadOnlySpan<Q8_0Block> blocks, Span<float> dst) => LegacyDot.DequantizeSigned(blocks, dst);

    public static float Dot(ReadOnlySpan<Q8_0Block> blocks, ReadOnlySpan<byte> activation) => LegacyDot.Signed(blocks, activation);

    static unsafe void IQuantBlock<Q8_0Block>.MultiplyRows(byte* rows, long rowBytes, int rowCount, int blocksPerRow,
        byte* activations, int activationStride, int count, float* y, int yStride) =>
        SignedBlockRows.MultiplyRows<Q8_0Block>(rows, rowBytes, rowCount, blocksPerRow, activations, activationStride, count, y, yStride);

    /// <summary>As <c>quantize_row_q8_0_ref</c>: d = max|x|/127, q = roundf(x/d). Vectorized; finite inputs.</summary>
    public static void Quantize(ReadOnlySpan<float> src, Span<Q8_0Block> dst) => Quantize(src, dst, reference: false);

    /// <summary>A matmul's activations as llama.cpp's CPU backend quantizes them on x86 (<see cref="Q8Quantizer.ActivationBlock"/>).</summary>
    public static void QuantizeActivation(ReadOnlySpan<float> src, Span<Q8_0Block> dst)
    {
        LegacyQuantize.CheckLengths(src.Length, dst.Length);
        for (int b = 0; b < dst.Length; b++)
        {
            ref Q8_0Block y = ref dst[b];
            Q8Quantizer.ActivationBlock(in src[b * 32], ref y.Qs[0], out float d, sum: false);
            y.D = Float16.FromSingle(d);
        }
    }

    /// <summary>Scalar reference for <see cref="Quantize(ReadOnlySpan{float}, Span{Q8_0Block})"/>.</summary>
    internal static void QuantizeReference(ReadOnlySpan<float> src, Span<Q8_0Block> dst) => Quantize(src, dst, reference: true);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Quantize(ReadOnlySpan<float> src, Span<Q8_0Block> dst, bool reference)
    {
        LegacyQuantize.CheckLengths(src.Length, dst.Length);
        for (int b = 0; b < dst.Length; b++)
        {
            ref Q8_0Block y = ref dst[b];
            float d;
            if (reference)
                Q8Quantizer.BlockReference(in src[b * 32], ref y.Qs[0], out d);
            else
                Q8Quantizer.Block(in src[b * 32], ref y.Qs[0], out d, sum: false);
            y.D = Float16.FromSingle(d);
        }
    }

    static float ISignedQuantBlock<Q8_0Block>.Scale(ref readonly Q8_0Block block) => Float16.ToSingleLookup(block.D);

    static void ISignedQuantBlock<Q8_0Block>.Quants(ref readonly Q8_0Block block, Span<sbyte> q) => ((ReadOnlySpan<sbyte>)block.Qs).CopyTo(q);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<sbyte> ISignedQuantBlock<Q8_0Block>.Quants256(ref readonly Q8_0Block block) => Vector256.LoadUnsafe(in block.Qs[0]);

    static int ISignedQuantBlock<Q8_0Block>.Offset => 128;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<byte> ISignedQuantBlock<Q8_0Block>.UnsignedQuants256(ref readonly Q8_0Block block) =>
        Vector256.LoadUnsafe(in block.Qs[0]).AsByte() ^ Vector256.Create((byte)0x80);
}

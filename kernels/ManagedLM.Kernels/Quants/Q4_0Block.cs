using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ManagedLM.Kernels.Quants;

/// <summary>
/// ggml <c>block_q4_0</c> (18 bytes, 32 values): value j = D·(q[j] − 8) with 4-bit q; element j sits in
/// the low nibble of Qs[j], element j+16 in its high nibble.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct Q4_0Block : IQuantizableBlock<Q4_0Block>, ISignedQuantBlock<Q4_0Block>
{
    /// <summary>Scale, F16 bits.</summary>
    public ushort D;

    /// <summary>Packed 4-bit quants.</summary>
    public Bytes16 Qs;

    public static GgmlType Type => GgmlType.Q4_0;
    public static int BlockSize => 32;
    public static GgmlType DotType => GgmlType.Q8_0;

    public static void Dequantize(ReadOnlySpan<Q4_0Block> blocks, Span<float> dst) => LegacyDot.DequantizeSigned(blocks, dst);

    public static float Dot(ReadOnlySpan<Q4_0Block> blocks, ReadOnlySpan<byte> activation) => LegacyDot.Signed(blocks, activation);

    static unsafe void IQuantBlock<Q4_0Block>.MultiplyRows(byte* rows, long rowBytes, int rowCount, int blocksPerRow,
        byte* activations, int activationStride, int count, float* y, int yStride) =>
        SignedBlockRows.MultiplyRows<Q4_0Block>(rows, rowBytes, rowCount, blocksPerRow, activations, activationStride, count, y, yStride);

    /// <summary>As <c>quantize_row_q4_0_ref</c>: d = −(the value of largest magnitude)/8, q = min(15, trunc(x/d + 8.5)).</summary>
    public static void Quantize(ReadOnlySpan<float> src, Span<Q4_0Block> dst)
    {
        LegacyQuantize.CheckLengths(src.Length, dst.Length);
        for (int b = 0; b < dst.Length; b++)
        {
            ReadOnlySpan<float> x = src.Slice(b * 32, 32);
            float d = LegacyQuantize.SymmetricScale(x, -8);
            float id = d != 0 ? 1 / d : 0;
            ref Q4_0Block y = ref dst[b];
            y.D = Float16.FromSingle(d);
            for (int j = 0; j < 16; j++)
            {
                int q0 = Math.Min(15, (int)(x[j] * id + 8.5f));
                int q1 = Math.Min(15, (int)(x[j + 16] * id + 8.5f));
                y.Qs[j] = (byte)(q0 | (q1 << 4));
            }
        }
    }

    static float ISignedQuantBlock<Q4_0Block>.Scale(ref readonly Q4_0Block block) => Float16.ToSingleLookup(block.D);

    static void ISignedQuantBlock<Q4_0Block>.Quants(ref readonly Q4_0Block block, Span<sbyte> q)
    {
        for (int j = 0; j < 16; j++)
        {
            q[j] = (sbyte)((block.Qs[j] & 0x0F) - 8);
            q[j + 16] = (sbyte)((block.Qs[j] >> 4) - 8);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<sbyte> ISignedQuantBlock<Q4_0Block>.Quants256(ref readonly Q4_0Block block) =>
        (LegacyDot.Nibbles(in block.Qs[0]) - Vector256.Create((byte)8)).AsSByte();

    static int ISignedQuantBlock<Q4_0Block>.Offset => 8;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<byte> ISignedQuantBlock<Q4_0Block>.UnsignedQuants256(ref readonly Q4_0Block block) =>
        LegacyDot.Nibbles(in block.Qs[0]);
}

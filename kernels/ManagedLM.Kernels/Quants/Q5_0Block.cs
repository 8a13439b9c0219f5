using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ManagedLM.Kernels.Quants;

/// <summary>
/// ggml <c>block_q5_0</c> (22 bytes, 32 values): value j = D·(q[j] − 16) with 5-bit q. The low four bits
/// of element j sit in the low nibble of Qs[j] (element j+16: high nibble); bit j of the little-endian
/// word Qh is element j's fifth bit.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct Q5_0Block : IQuantizableBlock<Q5_0Block>, ISignedQuantBlock<Q5_0Block>
{
    /// <summary>Scale, F16 bits.</summary>
    public ushort D;

    /// <summary>Fifth bits, a little-endian 32-bit word.</summary>
    public Bytes4 Qh;

    /// <summary>Packed low four bits.</summary>
    public Bytes16 Qs;

    public static GgmlType Type => GgmlType.Q5_0;
    public static int BlockSize => 32;
    public static GgmlType DotType => GgmlType.Q8_0;

    public static void Dequantize(ReadOnlySpan<Q5_0Block> blocks, Span<float> dst) => LegacyDot.DequantizeSigned(blocks, dst);

    public static float Dot(ReadOnlySpan<Q5_0Block> blocks, ReadOnlySpan<byte> activation) => LegacyDot.Signed(blocks, activation);

    static unsafe void IQuantBlock<Q5_0Block>.MultiplyRows(byte* rows, long rowBytes, int rowCount, int blocksPerRow,
        byte* activations, int activationStride, int count, float* y, int yStride) =>
        SignedBlockRows.MultiplyRows<Q5_0Block>(rows, rowBytes, rowCount, blocksPerRow, activations, activationStride, count, y, yStride);

    /// <summary>As <c>quantize_row_q5_0_ref</c>: d = −(the value of largest magnitude)/16, q = min(31, trunc(x/d + 16.5)).</summary>
    public static void Quantize(ReadOnlySpan<float> src, Span<Q5_0Block> dst)
    {
        LegacyQuantize.CheckLengths(src.Length, dst.Length);
        for (int b = 0; b < dst.Length; b++)
        {
            ReadOnlySpan<float> x = src.Slice(b * 32, 32);
            float d = LegacyQuantize.SymmetricScale(x, -16);
            float id = d != 0 ? 1 / d : 0;
            ref Q5_0Block y = ref dst[b];
            y.D = Float16.FromSingle(d);
            uint qh = 0;
            for (int j = 0; j < 16; j++)
            {
                int q0 = Math.Min(31, (int)(x[j] * id + 16.5f));
                int q1 = Math.Min(31, (int)(x[j + 16] * id + 16.5f));
                LegacyQuantize.Pack5(ref y.Qs[j], ref qh, j, q0, q1);
            }
            Unsafe.WriteUnaligned(ref y.Qh[0], qh);
        }
    }

    static float ISignedQuantBlock<Q5_0Block>.Scale(ref readonly Q5_0Block block) => Float16.ToSingleLookup(block.D);

    static void ISignedQuantBlock<Q5_0Block>.Quants(ref readonly Q5_0Block block, Span<sbyte> q)
    {
        uint qh = Unsafe.ReadUnaligned<uint>(in block.Qh[0]);
        for (int j = 0; j < 16; j++)
        {
            q[j] = (sbyte)(((block.Qs[j] & 0x0F) | (int)(((qh >> j) & 1) << 4)) - 16);
            q[j + 16] = (sbyte)(((block.Qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4)) - 16);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<sbyte> ISignedQuantBlock<Q5_0Block>.Quants256(ref readonly Q5_0Block block)
    {
        // q − 16 as a signed byte is the nibble with 0xF0 OR-ed in where the fifth bit is clear.
        Vector256<byte> fifth = LegacyDot.BitsToBytes(Unsafe.ReadUnaligned<uint>(in block.Qh[0]));
        return (LegacyDot.Nibbles(in block.Qs[0]) | Vector256.AndNot(Vector256.Create((byte)0xF0), fifth)).AsSByte();
    }

    static int ISignedQuantBlock<Q5_0Block>.Offset => 16;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<byte> ISignedQuantBlock<Q5_0Block>.UnsignedQuants256(ref readonly Q5_0Block block) =>
        LegacyDot.Nibbles(in block.Qs[0]) | (LegacyDot.BitsToBytes(Unsafe.ReadUnaligned<uint>(in block.Qh[0])) & Vector256.Create((byte)0x10));
}

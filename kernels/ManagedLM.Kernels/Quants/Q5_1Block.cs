using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ManagedLM.Kernels.Quants;

/// <summary>
/// ggml <c>block_q5_1</c> (24 bytes, 32 values): value j = D·q[j] + M with 5-bit q, packed as in
/// <see cref="Q5_0Block"/>.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct Q5_1Block : IQuantizableBlock<Q5_1Block>, IUnsignedQuantBlock<Q5_1Block>
{
    /// <summary>Scale, F16 bits.</summary>
    public ushort D;

    /// <summary>Minimum (offset), F16 bits.</summary>
    public ushort M;

    /// <summary>Fifth bits, a little-endian 32-bit word.</summary>
    public Bytes4 Qh;

    /// <summary>Packed low four bits.</summary>
    public Bytes16 Qs;

    public static GgmlType Type => GgmlType.Q5_1;
    public static int BlockSize => 32;
    public static GgmlType DotType => GgmlType.Q8_1;

    public static void Dequantize(ReadOnlySpan<Q5_1Block> blocks, Span<float> dst) => LegacyDot.DequantizeUnsigned(blocks, dst);

    public static float Dot(ReadOnlySpan<Q5_1Block> blocks, ReadOnlySpan<byte> activation) => LegacyDot.Unsigned(blocks, activation);

    /// <summary>As <c>quantize_row_q5_1_ref</c>: m = min, d = (max − min)/31, q = trunc((x − m)/d + 0.5).</summary>
    public static void Quantize(ReadOnlySpan<float> src, Span<Q5_1Block> dst)
    {
        LegacyQuantize.CheckLengths(src.Length, dst.Length);
        for (int b = 0; b < dst.Length; b++)
        {
            ReadOnlySpan<float> x = src.Slice(b * 32, 32);
            var (min, max) = LegacyQuantize.Range(x);
            float d = (max - min) / 31;
            float id = d != 0 ? 1 / d : 0;
            ref Q5_1Block y = ref dst[b];
            y.D = Float16.FromSingle(d);
            y.M = Float16.FromSingle(min);
            uint qh = 0;
            for (int j = 0; j < 16; j++)
            {
                int q0 = (byte)((x[j] - min) * id + 0.5f);
                int q1 = (byte)((x[j + 16] - min) * id + 0.5f);
                LegacyQuantize.Pack5(ref y.Qs[j], ref qh, j, q0, q1);
            }
            Unsafe.WriteUnaligned(ref y.Qh[0], qh);
        }
    }

    static float IUnsignedQuantBlock<Q5_1Block>.Scale(ref readonly Q5_1Block block) => Float16.ToSingleLookup(block.D);

    static float IUnsignedQuantBlock<Q5_1Block>.Min(ref readonly Q5_1Block block) => Float16.ToSingleLookup(block.M);

    static void IUnsignedQuantBlock<Q5_1Block>.Quants(ref readonly Q5_1Block block, Span<byte> q)
    {
        uint qh = Unsafe.ReadUnaligned<uint>(in block.Qh[0]);
        for (int j = 0; j < 16; j++)
        {
            q[j] = (byte)((block.Qs[j] & 0x0F) | (int)(((qh >> j) & 1) << 4));
            q[j + 16] = (byte)((block.Qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<byte> IUnsignedQuantBlock<Q5_1Block>.Quants256(ref readonly Q5_1Block block)
    {
        Vector256<byte> fifth = LegacyDot.BitsToBytes(Unsafe.ReadUnaligned<uint>(in block.Qh[0]));
        return LegacyDot.Nibbles(in block.Qs[0]) | (fifth & Vector256.Create((byte)0x10));
    }
}

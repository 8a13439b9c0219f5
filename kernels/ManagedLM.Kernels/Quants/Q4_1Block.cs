using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ManagedLM.Kernels.Quants;

/// <summary>
/// ggml <c>block_q4_1</c> (20 bytes, 32 values): value j = D·q[j] + M with 4-bit q; element j sits in
/// the low nibble of Qs[j], element j+16 in its high nibble.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct Q4_1Block : IQuantizableBlock<Q4_1Block>, IUnsignedQuantBlock<Q4_1Block>
{
    /// <summary>Scale, F16 bits.</summary>
    public ushort D;

    /// <summary>Minimum (offset), F16 bits.</summary>
    public ushort M;

    /// <summary>Packed 4-bit quants.</summary>
    public Bytes16 Qs;

    public static GgmlType Type => GgmlType.Q4_1;
    public static int BlockSize => 32;
    public static GgmlType DotType => GgmlType.Q8_1;

    public static void Dequantize(ReadOnlySpan<Q4_1Block> blocks, Span<float> dst) => LegacyDot.DequantizeUnsigned(blocks, dst);

    public static float Dot(ReadOnlySpan<Q4_1Block> blocks, ReadOnlySpan<byte> activation) => LegacyDot.Unsigned(blocks, activation);

    /// <summary>As <c>quantize_row_q4_1_ref</c>: m = min, d = (max − min)/15, q = min(15, trunc((x − m)/d + 0.5)).</summary>
    public static void Quantize(ReadOnlySpan<float> src, Span<Q4_1Block> dst)
    {
        LegacyQuantize.CheckLengths(src.Length, dst.Length);
        for (int b = 0; b < dst.Length; b++)
        {
            ReadOnlySpan<float> x = src.Slice(b * 32, 32);
            var (min, max) = LegacyQuantize.Range(x);
            float d = (max - min) / 15;
            float id = d != 0 ? 1 / d : 0;
            ref Q4_1Block y = ref dst[b];
            y.D = Float16.FromSingle(d);
            y.M = Float16.FromSingle(min);
            for (int j = 0; j < 16; j++)
            {
                int q0 = Math.Min(15, (int)((x[j] - min) * id + 0.5f));
                int q1 = Math.Min(15, (int)((x[j + 16] - min) * id + 0.5f));
                y.Qs[j] = (byte)(q0 | (q1 << 4));
            }
        }
    }

    static float IUnsignedQuantBlock<Q4_1Block>.Scale(ref readonly Q4_1Block block) => Float16.ToSingleLookup(block.D);

    static float IUnsignedQuantBlock<Q4_1Block>.Min(ref readonly Q4_1Block block) => Float16.ToSingleLookup(block.M);

    static void IUnsignedQuantBlock<Q4_1Block>.Quants(ref readonly Q4_1Block block, Span<byte> q)
    {
        for (int j = 0; j < 16; j++)
        {
            q[j] = (byte)(block.Qs[j] & 0x0F);
            q[j + 16] = (byte)(block.Qs[j] >> 4);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<byte> IUnsignedQuantBlock<Q4_1Block>.Quants256(ref readonly Q4_1Block block) => LegacyDot.Nibbles(in block.Qs[0]);
}

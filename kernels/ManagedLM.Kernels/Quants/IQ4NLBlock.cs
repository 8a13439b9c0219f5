using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedLM.Kernels.Quants;

/// <summary>
/// ggml <c>block_iq4_nl</c> (18 bytes, 32 values): value j = D·Values[q[j]] with 4-bit indices q into a
/// fixed non-linear table; element j's index sits in the low nibble of Qs[j], element j+16's in its high nibble.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct IQ4NLBlock : IQuantizableBlock<IQ4NLBlock>, ISignedQuantBlock<IQ4NLBlock>
{
    /// <summary>Scale, F16 bits.</summary>
    public ushort D;

    /// <summary>Packed 4-bit indices into <see cref="Values"/>.</summary>
    public Bytes16 Qs;

    /// <summary>The 16 levels (ggml's <c>kvalues_iq4nl</c>), ascending.</summary>
    public static ReadOnlySpan<sbyte> Values => [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

    public static GgmlType Type => GgmlType.IQ4_NL;
    public static int BlockSize => 32;
    public static GgmlType DotType => GgmlType.Q8_0;

    public static void Dequantize(ReadOnlySpan<IQ4NLBlock> blocks, Span<float> dst) => LegacyDot.DequantizeSigned(blocks, dst);

    public static float Dot(ReadOnlySpan<IQ4NLBlock> blocks, ReadOnlySpan<byte> activation) => LegacyDot.Signed(blocks, activation);

    static unsafe void IQuantBlock<IQ4NLBlock>.MultiplyRows(byte* rows, long rowBytes, int rowCount, int blocksPerRow,
        byte* activations, int activationStride, int count, float* y, int yStride) =>
        SignedBlockRows.MultiplyRows<IQ4NLBlock>(rows, rowBytes, rowCount, blocksPerRow, activations, activationStride, count, y, yStride);

    /// <summary>
    /// As <c>quantize_row_iq4_nl_ref</c> (no importance weights, no scale search): indices of the levels
    /// nearest to x·(−127/max), then the least-squares scale d = Σw·q·x / Σw·q² with weights w = x².
    /// </summary>
    public static void Quantize(ReadOnlySpan<float> src, Span<IQ4NLBlock> dst)
    {
        LegacyQuantize.CheckLengths(src.Length, dst.Length);
        ReadOnlySpan<sbyte> values = Values;
        Span<byte> index = stackalloc byte[32];
        for (int b = 0; b < dst.Length; b++)
        {
            ReadOnlySpan<float> x = src.Slice(b * 32, 32);
            ref IQ4NLBlock y = ref dst[b];
            float amax = 0, max = 0;
            foreach (float v in x)
            {
                if (MathF.Abs(v) > amax)
                {
                    amax = MathF.Abs(v);
                    max = v;
                }
            }
            if (amax < 1e-15f)
            {
                y = default;
                continue;
            }
            float id = 1 / (max / values[0]);
            float sumqx = 0, sumq2 = 0;
            for (int j = 0; j < 32; j++)
            {
                int l = NearestLevel(id * x[j]);
                index[j] = (byte)l;
                float q = values[l], w = x[j] * x[j];
                sumqx += w * q * x[j];
                sumq2 += w * q * q;
            }
            y.D = Float16.FromSingle(sumq2 > 0 ? sumqx / sumq2 : 0);
            for (int j = 0; j < 16; j++)
                y.Qs[j] = (byte)(index[j] | (index[j + 16] << 4));
        }
    }

    /// <summary>The index of the level nearest to <paramref name="x"/>, the upper one at a midpoint (ggml's <c>best_index_int8</c>).</summary>
    internal static int NearestLevel(float x)
    {
        // Level i wins once x reaches the midpoint of levels i−1 and i; comparing 2x with their sum is exact.
        ReadOnlySpan<sbyte> values = Values;
        float x2 = x + x;
        int index = 0;
        for (int step = 8; step > 0; step >>= 1)
        {
            int j = index + step;
            if (x2 >= values[j - 1] + values[j])
                index = j;
        }
        return index;
    }

    static float ISignedQuantBlock<IQ4NLBlock>.Scale(ref readonly IQ4NLBlock block) => Float16.ToSingleLookup(block.D);

    static void ISignedQuantBlock<IQ4NLBlock>.Quants(ref readonly IQ4NLBlock block, Span<sbyte> q)
    {
        ReadOnlySpan<sbyte> values = Values;
        for (int j = 0; j < 16; j++)
        {
            q[j] = values[block.Qs[j] & 0x0F];
            q[j + 16] = values[block.Qs[j] >> 4];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<sbyte> ISignedQuantBlock<IQ4NLBlock>.Quants256(ref readonly IQ4NLBlock block)
    {
        Vector128<sbyte> table = Vector128.Create((sbyte)-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
        return Avx2.Shuffle(Vector256.Create(table, table), LegacyDot.Nibbles(in block.Qs[0]).AsSByte());
    }

    static int ISignedQuantBlock<IQ4NLBlock>.Offset => 128;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<byte> ISignedQuantBlock<IQ4NLBlock>.UnsignedQuants256(ref readonly IQ4NLBlock block)
    {
        Vector128<byte> table = Vector128.Create((byte)1, 24, 45, 63, 79, 93, 106, 118, 129, 141, 153, 166, 181, 197, 217, 241); // Values + 128
        return Avx2.Shuffle(Vector256.Create(table, table), LegacyDot.Nibbles(in block.Qs[0]));
    }
}

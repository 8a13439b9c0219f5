using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedLM.Kernels.Quants;

/// <summary>
/// ggml's <c>block_iq4_xs</c> (136 bytes, 4.25 bits per weight): 8 sub-blocks of 32 values, each a 4-bit
/// index into the non-linear table <see cref="Values"/>, with 6-bit sub-block scales;
/// value = D·(scale − 32)·Values[q]. Qs[16b + l] holds value 32b + l (low nibble) and 32b + 16 + l (high).
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct IQ4XSBlock : IQuantizableBlock<IQ4XSBlock>
{
    /// <summary>Super-block scale (fp16 bits).</summary>
    public ushort D;

    /// <summary>Top 2 bits of the 8 sub-block scales (bits 2b..2b+1).</summary>
    public ushort ScalesH;

    /// <summary>Low 4 bits of the sub-block scales (sub-block 2k in the low nibble of byte k, 2k+1 in the high).</summary>
    public fixed byte ScalesL[4];

    /// <summary>256 4-bit table indices.</summary>
    public fixed byte Qs[KQuants.QK / 2];

    public static GgmlType Type => GgmlType.IQ4_XS;
    public static int BlockSize => KQuants.QK;
    public static GgmlType DotType => GgmlType.Q8_K;

    /// <summary>ggml's <c>kvalues_iq4nl</c>: the 16 levels (shared with IQ4_NL).</summary>
    public static ReadOnlySpan<sbyte> Values => [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

    /// <summary>The 6-bit scale of sub-block b (before the −32).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int SubBlockScale(IQ4XSBlock* block, int b) =>
        ((block->ScalesL[b / 2] >> (4 * (b % 2))) & 0xF) | (((block->ScalesH >> (2 * b)) & 3) << 4);

    public static void Dequantize(ReadOnlySpan<IQ4XSBlock> blocks, Span<float> dst)
    {
        KQuants.CheckDequantizeLengths(blocks.Length, dst.Length);
        ReadOnlySpan<sbyte> values = Values;
        fixed (IQ4XSBlock* px = blocks)
        fixed (float* py = dst)
        {
            float* y = py;
            for (int i = 0; i < blocks.Length; i++)
            {
                float d = Float16.ToSingle(px[i].D);
                byte* qs = px[i].Qs;
                for (int b = 0; b < 8; b++, y += 32, qs += 16)
                {
                    float dl = d * (SubBlockScale(px + i, b) - 32);
                    for (int l = 0; l < 16; l++)
                    {
                        y[l] = dl * values[qs[l] & 0xF];
                        y[l + 16] = dl * values[qs[l] >> 4];
                    }
                }
            }
        }
    }

    public static float Dot(ReadOnlySpan<IQ4XSBlock> blocks, ReadOnlySpan<byte> activation) =>
        KQuants.Dot(blocks, activation, &DotAvx2, &DotReference);

    /// <summary>Scalar reference (ggml's vec_dot_iq4_xs_q8_K math): per block the exact isum = Σ_b (scale_b − 32)·Σ value·q8, then sum += (d·dy)·isum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotReference(IQ4XSBlock* x, Q8KBlock* y, int nb)
    {
        ReadOnlySpan<sbyte> values = Values;
        float sum = 0;
        for (int i = 0; i < nb; i++)
        {
            byte* qs = x[i].Qs;
            sbyte* q8 = y[i].Qs;
            int isum = 0;
            for (int b = 0; b < 8; b++, qs += 16, q8 += 32)
            {
                int part = 0;
                for (int l = 0; l < 16; l++)
                    part += values[qs[l] & 0xF] * q8[l] + values[qs[l] >> 4] * q8[l + 16];
                isum += (SubBlockScale(x + i, b) - 32) * part;
            }
            sum += KQuants.BlockDot(x[i].D, y[i].D, isum);
        }
        return sum;
    }

    /// <summary>AVX2 path: table lookup by pshufb, |value|·(q8 with value's sign) by maddubs, madd by the sub-block scale; same integers as the reference.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotAvx2(IQ4XSBlock* x, Q8KBlock* y, int nb)
    {
        Vector256<sbyte> table = Vector256.Create(Vector128.Create(Values));
        float sum = 0;
        for (int i = 0; i < nb; i++)
        {
            // Sub-block b's scale: bits 4b..4b+3 of the 4 ScalesL bytes, bits 2b..2b+1 of ScalesH.
            uint low = Unsafe.ReadUnaligned<uint>(x[i].ScalesL), high = x[i].ScalesH;
            byte* qs = x[i].Qs;
            sbyte* q8 = y[i].Qs;
            Vector256<int> acc = Pair(qs, q8, table, low, high);
            acc = Avx2.Add(acc, Pair(qs + 32, q8 + 64, table, low >> 8, high >> 4));
            acc = Avx2.Add(acc, Pair(qs + 64, q8 + 128, table, low >> 16, high >> 8));
            acc = Avx2.Add(acc, Pair(qs + 96, q8 + 192, table, low >> 24, high >> 12));
            sum += KQuants.BlockDot(x[i].D, y[i].D, KQuants.HorizontalSum(acc));
        }
        return sum;
    }

    // Two sub-blocks (64 values) from 32 index bytes; their scales are in the low byte of low and low nibble of high.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Pair(byte* qs, sbyte* q8, Vector256<sbyte> table, uint low, uint high)
    {
        // Bytes 0-15 index the first sub-block, 16-31 the second; low nibbles are each sub-block's first 16 values.
        Vector256<byte> low4 = Vector256.Create((byte)0x0F);
        Vector256<byte> q = Avx.LoadVector256(qs);
        Vector256<sbyte> lo = Avx2.Shuffle(table, Avx2.And(q, low4).AsSByte());
        Vector256<sbyte> hi = Avx2.Shuffle(table, Avx2.And(Avx2.ShiftRightLogical(q.AsUInt16(), 4).AsByte(), low4).AsSByte());
        int scaleA = (int)((low & 0xF) | ((high & 3) << 4)) - 32;
        int scaleB = (int)(((low >> 4) & 0xF) | (((high >> 2) & 3) << 4)) - 32;
        return Avx2.Add(SignedScaledDot(Avx2.Permute2x128(lo, hi, 0x20), Avx.LoadVector256(q8), scaleA),
                        SignedScaledDot(Avx2.Permute2x128(lo, hi, 0x31), Avx.LoadVector256(q8 + 32), scaleB));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> SignedScaledDot(Vector256<sbyte> a, Vector256<sbyte> b, int scale) =>
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx2.Abs(a), Avx2.Sign(b, a)), Vector256.Create((short)scale));

    /// <summary>
    /// Quantizes like ggml's <c>quantize_row_iq4_xs_ref</c> (no importance weights: w = x²): per sub-block the best
    /// of 15 trial scales, then 6-bit scales relative to the largest and a final nearest-level pass.
    /// </summary>
    public static void Quantize(ReadOnlySpan<float> src, Span<IQ4XSBlock> dst)
    {
        KQuants.CheckQuantizeLengths(GgmlType.IQ4_XS, src.Length, dst.Length);
        const int Tries = 7;
        ReadOnlySpan<sbyte> values = Values;
        Span<byte> levels = stackalloc byte[KQuants.QK];
        Span<float> scales = stackalloc float[8];
        for (int i = 0; i < dst.Length; i++)
        {
            ReadOnlySpan<float> x = src.Slice(i * KQuants.QK, KQuants.QK);
            float maxScale = 0, amaxScale = 0;
            for (int b = 0; b < 8; b++)
            {
                ReadOnlySpan<float> xb = x.Slice(32 * b, 32);
                Span<byte> lb = levels.Slice(32 * b, 32);
                float max = KQuants.MaxByMagnitude(xb, out float amax);
                if (amax < KQuants.GroupMaxEps)
                {
                    scales[b] = 0;
                    lb.Clear();
                    continue;
                }
                float d = -max / values[0];
                float id = 1 / d;
                float sumqx = 0, sumq2 = 0;
                for (int j = 0; j < 32; j++)
                {
                    int l = BestIndex(id * xb[j]);
                    lb[j] = (byte)l;
                    float q = values[l], w = xb[j] * xb[j];
                    sumqx += w * q * xb[j];
                    sumq2 += w * q * q;
                }
                d = sumq2 > 0 ? sumqx / sumq2 : 0f;
                float best = d * sumqx;
                for (int t = -Tries; t <= Tries; t++)
                {
                    id = (t + values[0]) / max;
                    sumqx = sumq2 = 0;
                    for (int j = 0; j < 32; j++)
                    {
                        float q = values[BestIndex(id * xb[j])], w = xb[j] * xb[j];
                        sumqx += w * q * xb[j];
                        sumq2 += w * q * q;
                    }
                    if (sumq2 > 0 && sumqx * sumqx > best * sumq2)
                    {
                        d = sumqx / sumq2;
                        best = d * sumqx;
                    }
                }
                scales[b] = d;
                float absD = MathF.Abs(d);
                if (absD > amaxScale) { amaxScale = absD; maxScale = d; }
            }
            fixed (IQ4XSBlock* blk = &dst[i])
            {
                float d = -maxScale / 32;
                blk->D = Float16.FromSingle(d);
                blk->ScalesH = 0;
                float id = d != 0 ? 1 / d : 0f;
                for (int b = 0; b < 8; b++)
                {
                    int l = Math.Clamp(KQuants.NearestInt(id * scales[b]), -32, 31);
                    float dl = d * l;
                    float idl = dl != 0 ? 1 / dl : 0f;
                    for (int j = 32 * b; j < 32 * b + 32; j++)
                        levels[j] = (byte)BestIndex(idl * x[j]);
                    l += 32;
                    if (b % 2 == 0)
                        blk->ScalesL[b / 2] = (byte)(l & 0xF);
                    else
                        blk->ScalesL[b / 2] |= (byte)((l & 0xF) << 4);
                    blk->ScalesH |= (ushort)((l >> 4) << (2 * b));
                }
                for (int b = 0; b < 8; b++)
                    for (int j = 0; j < 16; j++)
                        blk->Qs[16 * b + j] = (byte)(levels[32 * b + j] | (levels[32 * b + 16 + j] << 4));
            }
        }
    }

    /// <summary>ggml's <c>best_index_int8</c>: the nearest level, ties to the upper one (exact: compares 2x with neighbour sums).</summary>
    private static int BestIndex(float x)
    {
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
}

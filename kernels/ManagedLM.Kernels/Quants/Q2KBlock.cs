using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedLM.Kernels.Quants;

/// <summary>
/// ggml's <c>block_q2_K</c> (84 bytes, 2.625 bits per weight): 16 sub-blocks of 16 values, each with a
/// 4-bit scale (low nibble of Scales[j]) and 4-bit min (high nibble); value = D·scale·q − DMin·min,
/// q in [0, 3]. Value 128c + 32s + t is in bits 2s..2s+1 of Qs[32c + t].
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct Q2KBlock : IQuantizableBlock<Q2KBlock>, ISuperBlock<Q2KBlock>
{
    /// <summary>Sub-block scales (low nibble) and mins (high nibble).</summary>
    public fixed byte Scales[KQuants.QK / 16];

    /// <summary>256 2-bit values.</summary>
    public fixed byte Qs[KQuants.QK / 4];

    /// <summary>Super-block scale of the sub-block scales (fp16 bits).</summary>
    public ushort D;

    /// <summary>Super-block scale of the sub-block mins (fp16 bits).</summary>
    public ushort DMin;

    public static GgmlType Type => GgmlType.Q2_K;
    public static int BlockSize => KQuants.QK;
    public static GgmlType DotType => GgmlType.Q8_K;

    public static void Dequantize(ReadOnlySpan<Q2KBlock> blocks, Span<float> dst)
    {
        KQuants.CheckDequantizeLengths(blocks.Length, dst.Length);
        fixed (Q2KBlock* px = blocks)
        fixed (float* py = dst)
        {
            float* y = py;
            for (int i = 0; i < blocks.Length; i++)
            {
                float d = Float16.ToSingle(px[i].D), min = Float16.ToSingle(px[i].DMin);
                byte* q = px[i].Qs, sc = px[i].Scales;
                for (int n = 0; n < KQuants.QK; n += 128, q += 32)
                {
                    for (int shift = 0; shift < 8; shift += 2)
                    {
                        float dl = d * (*sc & 0xF), ml = min * (*sc++ >> 4);
                        for (int l = 0; l < 16; l++) *y++ = dl * ((q[l] >> shift) & 3) - ml;
                        dl = d * (*sc & 0xF);
                        ml = min * (*sc++ >> 4);
                        for (int l = 16; l < 32; l++) *y++ = dl * ((q[l] >> shift) & 3) - ml;
                    }
                }
            }
        }
    }

    public static float Dot(ReadOnlySpan<Q2KBlock> blocks, ReadOnlySpan<byte> activation) =>
        KQuants.Dot(blocks, activation, &DotAvx2, &DotReference);

    static void IQuantBlock<Q2KBlock>.MultiplyRows(byte* rows, long rowBytes, int rowCount, int blocksPerRow,
        byte* activations, int activationStride, int count, float* y, int yStride) =>
        SuperBlockDot.MultiplyRows<Q2KBlock>(rows, rowBytes, rowCount, blocksPerRow, activations, activationStride, count, y, yStride);

    /// <summary>Scalar reference: <see cref="SuperBlockDot.DotReference{T}"/> over the scalar unpacking.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotReference(Q2KBlock* x, Q8KBlock* y, int nb) => SuperBlockDot.DotReference(x, y, nb);

    /// <summary>The vector path; bit-identical to <see cref="DotReference"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotAvx2(Q2KBlock* x, Q8KBlock* y, int nb) => SuperBlockDot.Dot(x, y, nb);

    static SuperBlockOffset ISuperBlock<Q2KBlock>.Offset => SuperBlockOffset.FloatMins;

    /// <summary>Levels 0..3; the 4-bit scale and min per 16 values; D = d, M = dmin.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void ISuperBlock<Q2KBlock>.UnpackReference(Q2KBlock* x, UnpackedSuperBlock* u)
    {
        for (int v = 0; v < KQuants.QK; v++)
            u->Q[v] = (byte)((x->Qs[32 * (v / 128) + v % 32] >> (2 * (v % 128 / 32))) & 3);
        for (int j = 0; j < 16; j++)
        {
            u->Scales[j] = (short)(x->Scales[j] & 0xF);
            u->Mins[j] = (short)(x->Scales[j] >> 4);
        }
        u->D = Float16.ToSingle(x->D);
        u->M = Float16.ToSingle(x->DMin);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void ISuperBlock<Q2KBlock>.UnpackAvx2(Q2KBlock* x, UnpackedSuperBlock* u)
    {
        Vector256<byte> bits01 = Vector256.Create((byte)3);
        for (int c = 0; c < 2; c++)
        {
            Vector256<ushort> q = Avx.LoadVector256(x->Qs + 32 * c).AsUInt16();
            Avx.Store(u->Q + 128 * c, Avx2.And(q.AsByte(), bits01));
            Avx.Store(u->Q + 128 * c + 32, Avx2.And(Avx2.ShiftRightLogical(q, 2).AsByte(), bits01));
            Avx.Store(u->Q + 128 * c + 64, Avx2.And(Avx2.ShiftRightLogical(q, 4).AsByte(), bits01));
            Avx.Store(u->Q + 128 * c + 96, Avx2.And(Avx2.ShiftRightLogical(q, 6).AsByte(), bits01));
        }
        Vector128<byte> packed = Sse2.LoadVector128(x->Scales), low4 = Vector128.Create((byte)0x0F);
        Avx.Store(u->Scales, Avx2.ConvertToVector256Int16(Sse2.And(packed, low4)));
        Avx.Store(u->Mins, Avx2.ConvertToVector256Int16(Sse2.And(Sse2.ShiftRightLogical(packed.AsUInt16(), 4).AsByte(), low4)));
        u->D = Float16.ToSingleLookup(x->D);
        u->M = Float16.ToSingleLookup(x->DMin);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> ISuperBlock<Q2KBlock>.Lanes(Q2KBlock* x, sbyte* q8, out Vector256<short> mins, out float d, out float m) =>
        SuperBlockDot.LanesViaUnpack(x, q8, out mins, out d, out m);

    /// <summary>Quantizes like ggml's <c>quantize_row_q2_K_ref</c>, byte for byte.</summary>
    public static void Quantize(ReadOnlySpan<float> src, Span<Q2KBlock> dst)
    {
        KQuants.CheckQuantizeLengths(GgmlType.Q2_K, src.Length, dst.Length);
        const float Q4Scale = 15f;
        Span<byte> levels = stackalloc byte[KQuants.QK];
        Span<byte> aux = stackalloc byte[16];
        Span<float> weights = stackalloc float[16];
        Span<float> scales = stackalloc float[16];
        Span<float> mins = stackalloc float[16];
        for (int i = 0; i < dst.Length; i++)
        {
            ReadOnlySpan<float> x = src.Slice(i * KQuants.QK, KQuants.QK);
            float maxScale = 0, maxMin = 0;
            for (int j = 0; j < 16; j++)
            {
                ReadOnlySpan<float> xb = x.Slice(16 * j, 16);
                for (int l = 0; l < 16; l++)
                    weights[l] = MathF.Abs(xb[l]);
                scales[j] = KQuants.MakeQkx2Quants(3, xb, weights, levels.Slice(16 * j, 16), out mins[j], aux, -0.5f, 0.1f, 15, useMad: true);
                if (scales[j] > maxScale) maxScale = scales[j];
                if (mins[j] > maxMin) maxMin = mins[j];
            }
            fixed (Q2KBlock* b = &dst[i])
            {
                if (maxScale > 0)
                {
                    float iscale = Q4Scale / maxScale;
                    for (int j = 0; j < 16; j++)
                        b->Scales[j] = (byte)KQuants.NearestInt(iscale * scales[j]);
                    b->D = Float16.FromSingle(maxScale / Q4Scale);
                }
                else
                {
                    new Span<byte>(b->Scales, 16).Clear();
                    b->D = Float16.FromSingle(0f);
                }
                if (maxMin > 0)
                {
                    float iscale = Q4Scale / maxMin;
                    for (int j = 0; j < 16; j++)
                        b->Scales[j] |= (byte)(KQuants.NearestInt(iscale * mins[j]) << 4);
                    b->DMin = Float16.FromSingle(maxMin / Q4Scale);
                }
                else
                {
                    b->DMin = Float16.FromSingle(0f);
                }
                float d = Float16.ToSingle(b->D), dmin = Float16.ToSingle(b->DMin);
                for (int j = 0; j < 16; j++)
                {
                    float dl = d * (b->Scales[j] & 0xF);
                    if (dl == 0)
                        continue;
                    float ml = dmin * (b->Scales[j] >> 4);
                    for (int l = 16 * j; l < 16 * j + 16; l++)
                        levels[l] = (byte)Math.Clamp(KQuants.NearestInt((x[l] + ml) / dl), 0, 3);
                }
                KQuants.Pack2Bit(levels, b->Qs);
            }
        }
    }
}

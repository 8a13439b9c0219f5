using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedLM.Kernels.Quants;

/// <summary>
/// Matrix × matrix for the signed 32-value blocks against Q8_0 activation rows with AVX-VNNI, as a register-blocked GEMM
/// without horizontal sums. Activation rows are transposed into panels of eight, one lane per row; a weight row's
/// quants, offset to unsigned bytes (q + o, o the type's offset), are broadcast four at a time and VPDPBUSD accumulates
/// each block's Σ (q_w + o)·q_a for eight activation rows at once, starting from −o·Σq_a, so the integer sum is exactly the
/// reference's. Block b's sum times d_w·d_a is fused into partial b mod 8 per lane: <see cref="LegacyDot"/>'s order.
/// </summary>
[SkipLocalsInit] // scratch is written before it is read
internal static unsafe class SignedBlockPanels
{
    private const int Q8_0Bytes = LegacyDot.Q8_0Bytes;
    private const int Lanes = 8;
    // One block of a panel: eight dword columns (lane c = quants 4j..4j+3 of activation row c), −o·Σq_a, d_a.
    private const int QuantBytes = 8 * 32, OffsetAt = QuantBytes, ScaleAt = OffsetAt + 32, PanelBlockBytes = ScaleAt + 32;
    private const int MaxPanelBytes = 512 * 1024; // panels built per pass: kept in L2
    private const int MaxPanels = 8;

    // [panels × nb × PanelBlockBytes] then [2 × nb × 32] unsigned weight quants and [2 × nb] weight scales; grown, never shrunk.
    [ThreadStatic]
    [ThreadSafeStatic("[ThreadStatic]: each thread's own scratch, read and grown by that thread only")]
    private static byte[]? t_scratch;

    /// <summary>True when this path runs: AVX-VNNI and two or more activation rows (one is faster as a plain dot).</summary>
    public static bool Applies(int count) => CpuFeatures.AvxVnni && count >= 2;

    /// <summary>See <see cref="IQuantBlock{TSelf}.MultiplyRows"/>; requires <see cref="CpuFeatures.AvxVnni"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MultiplyRows<T>(byte* rows, long rowBytes, int rowCount, int nb, byte* activations, int stride, int count,
        float* y, int yStride) where T : unmanaged, ISignedQuantBlock<T>
    {
        long panelBytes = (long)nb * PanelBlockBytes;
        int panelsPerPass = (int)Math.Clamp(MaxPanelBytes / panelBytes, 1, MaxPanels);
        panelsPerPass = Math.Min(panelsPerPass, (count + Lanes - 1) / Lanes);
        long need = panelsPerPass * panelBytes + 2L * nb * 36 + 64;
        byte[] scratch = t_scratch is { } s && s.Length >= need ? s : (t_scratch = GC.AllocateUninitializedArray<byte>((int)need, pinned: true));
        byte* panels = (byte*)(((nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(scratch)) + 31) & ~(nint)31);
        byte* quants = panels + panelsPerPass * panelBytes;
        float* scales = (float*)(quants + 2L * nb * 32);
        float* lanes = stackalloc float[Lanes];
        for (int first = 0; first < count; first += panelsPerPass * Lanes)
        {
            int n = Math.Min(panelsPerPass * Lanes, count - first), panelCount = (n + Lanes - 1) / Lanes;
            for (int p = 0; p < panelCount; p++)
                Transpose(T.Offset, activations + (nint)(first + p * Lanes) * stride, stride, Math.Min(Lanes, n - p * Lanes), nb, panels + p * panelBytes);
            int r = 0;
            for (; r + 2 <= rowCount; r += 2)
            {
                Unpack((T*)(rows + r * rowBytes), nb, quants, scales);
                Unpack((T*)(rows + (r + 1) * rowBytes), nb, quants + nb * 32, scales + nb);
                for (int p = 0; p < panelCount; p++)
                {
                    Rows2(quants, scales, nb, panels + p * panelBytes, out Vector256<float> v0, out Vector256<float> v1);
                    Scatter(v0, lanes, y, first + p * Lanes, count, yStride, r);
                    Scatter(v1, lanes, y, first + p * Lanes, count, yStride, r + 1);
                }
            }
            for (; r < rowCount; r++)
            {
                Unpack((T*)(rows + r * rowBytes), nb, quants, scales);
                for (int p = 0; p < panelCount; p++)
                    Scatter(Row(quants, scales, nb, panels + p * panelBytes), lanes, y, first + p * Lanes, count, yStride, r);
            }
        }
    }

    /// <summary>One weight row against one panel: lane c is the row's dot with the panel's activation row c.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Row(byte* quants, float* scales, int nb, byte* panel)
    {
        Vector256<float> p0 = default, p1 = default, p2 = default, p3 = default, p4 = default, p5 = default, p6 = default, p7 = default;
        int i = 0;
        for (; i + 8 <= nb; i += 8)
        {
            p0 = Block(quants, scales, panel, i, p0);
            p1 = Block(quants, scales, panel, i + 1, p1);
            p2 = Block(quants, scales, panel, i + 2, p2);
            p3 = Block(quants, scales, panel, i + 3, p3);
            p4 = Block(quants, scales, panel, i + 4, p4);
            p5 = Block(quants, scales, panel, i + 5, p5);
            p6 = Block(quants, scales, panel, i + 6, p6);
            p7 = Block(quants, scales, panel, i + 7, p7);
        }
        int m = nb - i;
        if (m > 0) p0 = Block(quants, scales, panel, i, p0);
        if (m > 1) p1 = Block(quants, scales, panel, i + 1, p1);
        if (m > 2) p2 = Block(quants, scales, panel, i + 2, p2);
        if (m > 3) p3 = Block(quants, scales, panel, i + 3, p3);
        if (m > 4) p4 = Block(quants, scales, panel, i + 4, p4);
        if (m > 5) p5 = Block(quants, scales, panel, i + 5, p5);
        if (m > 6) p6 = Block(quants, scales, panel, i + 6, p6);
        return ((p0 + p4) + (p2 + p6)) + ((p1 + p5) + (p3 + p7));
    }

    /// <summary>Lane c of <paramref name="v"/> to y[(firstRow + c)·yStride + r], for the activation rows that exist.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Scatter(Vector256<float> v, float* lanes, float* y, int firstRow, int count, int yStride, int r)
    {
        v.Store(lanes);
        int m = Math.Min(Lanes, count - firstRow);
        for (int c = 0; c < m; c++)
            y[(nint)(firstRow + c) * yStride + r] = lanes[c];
    }

    /// <summary>Two weight rows (the second's quants and scales nb blocks on) against one panel, sharing its loads.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Rows2(byte* quants, float* scales, int nb, byte* panel, out Vector256<float> v0, out Vector256<float> v1)
    {
        Vector256<float> p0 = default, p1 = default, p2 = default, p3 = default, p4 = default, p5 = default, p6 = default, p7 = default;
        Vector256<float> q0 = default, q1 = default, q2 = default, q3 = default, q4 = default, q5 = default, q6 = default, q7 = default;
        byte* quants1 = quants + nb * 32;
        float* scales1 = scales + nb;
        int i = 0;
        for (; i + 8 <= nb; i += 8)
        {
            Block2(quants, quants1, scales, scales1, panel, i, ref p0, ref q0);
            Block2(quants, quants1, scales, scales1, panel, i + 1, ref p1, ref q1);
            Block2(quants, quants1, scales, scales1, panel, i + 2, ref p2, ref q2);
            Block2(quants, quants1, scales, scales1, panel, i + 3, ref p3, ref q3);
            Block2(quants, quants1, scales, scales1, panel, i + 4, ref p4, ref q4);
            Block2(quants, quants1, scales, scales1, panel, i + 5, ref p5, ref q5);
            Block2(quants, quants1, scales, scales1, panel, i + 6, ref p6, ref q6);
            Block2(quants, quants1, scales, scales1, panel, i + 7, ref p7, ref q7);
        }
        int m = nb - i;
        if (m > 0) Block2(quants, quants1, scales, scales1, panel, i, ref p0, ref q0);
        if (m > 1) Block2(quants, quants1, scales, scales1, panel, i + 1, ref p1, ref q1);
        if (m > 2) Block2(quants, quants1, scales, scales1, panel, i + 2, ref p2, ref q2);
        if (m > 3) Block2(quants, quants1, scales, scales1, panel, i + 3, ref p3, ref q3);
        if (m > 4) Block2(quants, quants1, scales, scales1, panel, i + 4, ref p4, ref q4);
        if (m > 5) Block2(quants, quants1, scales, scales1, panel, i + 5, ref p5, ref q5);
        if (m > 6) Block2(quants, quants1, scales, scales1, panel, i + 6, ref p6, ref q6);
        v0 = ((p0 + p4) + (p2 + p6)) + ((p1 + p5) + (p3 + p7));
        v1 = ((q0 + q4) + (q2 + q6)) + ((q1 + q5) + (q3 + q7));
    }

    /// <summary>As <see cref="Block"/> for two weight rows, each activation column loaded once.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Block2(byte* quants0, byte* quants1, float* scales0, float* scales1, byte* panel, int i,
        ref Vector256<float> acc0, ref Vector256<float> acc1)
    {
        int* w0 = (int*)(quants0 + i * 32), w1 = (int*)(quants1 + i * 32);
        byte* x = panel + (nint)i * PanelBlockBytes;
        Vector256<int> offset = Avx.LoadAlignedVector256((int*)(x + OffsetAt));
        Vector256<int> s0 = offset, s1 = offset;
        Step(ref s0, ref s1, w0, w1, x, 0);
        Step(ref s0, ref s1, w0, w1, x, 1);
        Step(ref s0, ref s1, w0, w1, x, 2);
        Step(ref s0, ref s1, w0, w1, x, 3);
        Step(ref s0, ref s1, w0, w1, x, 4);
        Step(ref s0, ref s1, w0, w1, x, 5);
        Step(ref s0, ref s1, w0, w1, x, 6);
        Step(ref s0, ref s1, w0, w1, x, 7);
        Vector256<float> da = Avx.LoadAlignedVector256((float*)(x + ScaleAt));
        acc0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(s0), Vector256.Create(scales0[i]) * da, acc0);
        acc1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(s1), Vector256.Create(scales1[i]) * da, acc1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step(ref Vector256<int> s0, ref Vector256<int> s1, int* w0, int* w1, byte* x, int j)
    {
        Vector256<sbyte> a = Avx.LoadAlignedVector256((sbyte*)(x + j * 32));
        s0 = AvxVnni.MultiplyWideningAndAdd(s0, Vector256.Create(w0[j]).AsByte(), a);
        s1 = AvxVnni.MultiplyWideningAndAdd(s1, Vector256.Create(w1[j]).AsByte(), a);
    }

    /// <summary>acc + (block i's exact integer sums, one lane per activation row) × d_w·d_a.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Block(byte* quants, float* scales, byte* panel, int i, Vector256<float> acc)
    {
        int* w = (int*)(quants + i * 32);
        byte* x = panel + (nint)i * PanelBlockBytes;
        // Two chains halve the VPDPBUSD latency on the critical path; integer sums, so the split changes nothing.
        Vector256<int> s0 = Avx.LoadAlignedVector256((int*)(x + OffsetAt)), s1 = Vector256<int>.Zero;
        s0 = AvxVnni.MultiplyWideningAndAdd(s0, Vector256.Create(w[0]).AsByte(), Avx.LoadAlignedVector256((sbyte*)x));
        s1 = AvxVnni.MultiplyWideningAndAdd(s1, Vector256.Create(w[1]).AsByte(), Avx.LoadAlignedVector256((sbyte*)(x + 32)));
        s0 = AvxVnni.MultiplyWideningAndAdd(s0, Vector256.Create(w[2]).AsByte(), Avx.LoadAlignedVector256((sbyte*)(x + 64)));
        s1 = AvxVnni.MultiplyWideningAndAdd(s1, Vector256.Create(w[3]).AsByte(), Avx.LoadAlignedVector256((sbyte*)(x + 96)));
        s0 = AvxVnni.MultiplyWideningAndAdd(s0, Vector256.Create(w[4]).AsByte(), Avx.LoadAlignedVector256((sbyte*)(x + 128)));
        s1 = AvxVnni.MultiplyWideningAndAdd(s1, Vector256.Create(w[5]).AsByte(), Avx.LoadAlignedVector256((sbyte*)(x + 160)));
        s0 = AvxVnni.MultiplyWideningAndAdd(s0, Vector256.Create(w[6]).AsByte(), Avx.LoadAlignedVector256((sbyte*)(x + 192)));
        s1 = AvxVnni.MultiplyWideningAndAdd(s1, Vector256.Create(w[7]).AsByte(), Avx.LoadAlignedVector256((sbyte*)(x + 224)));
        Vector256<float> d = Vector256.Create(scales[i]) * Avx.LoadAlignedVector256((float*)(x + ScaleAt));
        return Fma.MultiplyAdd(Avx.ConvertToVector256Single(s0 + s1), d, acc);
    }

    /// <summary>A weight row's quants as unsigned bytes q + o, block after block, and its scales.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Unpack<T>(T* w, int nb, byte* quants, float* scales) where T : unmanaged, ISignedQuantBlock<T>
    {
        for (int i = 0; i < nb; i++)
        {
            T.UnsignedQuants256(in w[i]).Store(quants + i * 32);
            scales[i] = T.Scale(in w[i]);
        }
    }

    /// <summary>
    /// <paramref name="n"/> activation rows into a panel (lanes past n zero): per block the quants by dword column,
    /// −o·Σq_a and d_a.
    /// </summary>
    private static void Transpose(int weightOffset, byte* activations, int stride, int n, int nb, byte* panel)
    {
        for (int i = 0; i < nb; i++)
        {
            byte* x = panel + (nint)i * PanelBlockBytes;
            int* quants = (int*)x, offsets = (int*)(x + OffsetAt);
            float* scales = (float*)(x + ScaleAt);
            for (int c = 0; c < Lanes; c++)
            {
                if (c >= n)
                {
                    for (int j = 0; j < 8; j++)
                        quants[j * Lanes + c] = 0;
                    offsets[c] = 0;
                    scales[c] = 0;
                    continue;
                }
                byte* a = activations + (nint)c * stride + i * Q8_0Bytes;
                Vector256<sbyte> q = Vector256.LoadUnsafe(ref *(sbyte*)(a + 2));
                for (int j = 0; j < 8; j++)
                    quants[j * Lanes + c] = q.AsInt32().GetElement(j);
                offsets[c] = -weightOffset * Vector256.Sum(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Vector256<byte>.One, q), Vector256<short>.One));
                scales[c] = Float16.ToSingleLookup(Unsafe.ReadUnaligned<ushort>(a));
            }
        }
    }
}

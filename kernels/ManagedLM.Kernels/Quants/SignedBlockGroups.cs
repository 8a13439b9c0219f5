using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedLM.Kernels.Quants;

/// <summary>
/// Signed 32-value block weights (Q4_0, Q5_0, Q8_0, IQ4_NL) repacked at load into groups of eight rows, as llama.cpp's REPACK:
/// group g holds block column after block column, each the eight rows' unsigned quants side by side
/// (<see cref="IGroupQuants"/>) then their eight scales as F16 (the file's bytes). One broadcast activation dword feeds
/// eight rows' VPDPBUSD and the eight rows' sums stay in the lanes of one vector: no horizontal sums. Per row, block b's
/// exact integer sum Σ q_w·q_a (Σ u·q_a − o·Σq_a) times d_w·d_a is fused into partial b mod 8, and the partials combine
/// as <see cref="LegacyDot"/>'s order: the floats equal <see cref="LegacyDot.SignedReference{T}"/>'s bit for bit.
/// </summary>
[SkipLocalsInit] // scratch is written before it is read
internal static unsafe class SignedBlockGroups
{
    /// <summary>Rows per group: a matrix repacks when its row count is a multiple of it.</summary>
    public const int GroupRows = 8;

    private const int Q8_0Bytes = LegacyDot.Q8_0Bytes;
    private const int ScaleBytes = GroupRows * sizeof(ushort);
    private const int MaxBatch = 8; // activation rows per pass over a group's columns

    // Per chunk of MaxBatch activation rows, per block: their d_a, then their −o·Σq_a as int; grown, never shrunk.
    [ThreadStatic]
    [ThreadSafeStatic("[ThreadStatic]: each thread's own scratch, read and grown by that thread only")]
    private static byte[]? t_scratch;

    private static int ColumnBytes<TQ>() where TQ : IGroupQuants => TQ.QuantBytes + ScaleBytes;

    /// <summary>Bytes of the repacked form of <paramref name="rowCount"/> rows (a multiple of <see cref="GroupRows"/>) of <paramref name="cols"/> values.</summary>
    public static long PackedBytes<TQ>(int rowCount, int cols) where TQ : IGroupQuants =>
        (long)(rowCount / GroupRows) * (cols / LegacyDot.BlockSize) * ColumnBytes<TQ>();

    /// <summary>Rows of the file's layout, <paramref name="rowBytes"/> apart, into <see cref="PackedBytes{TQ}"/> bytes at <paramref name="packed"/>.</summary>
    public static void Repack<T, TQ>(byte* rows, long rowBytes, int rowCount, int cols, byte* packed)
        where T : unmanaged, ISignedQuantBlock<T> where TQ : IGroupQuants
    {
        int nb = cols / LegacyDot.BlockSize, columnBytes = ColumnBytes<TQ>();
        byte* u = stackalloc byte[GroupRows * 32];
        Span<sbyte> q = stackalloc sbyte[32];
        for (int g = 0; g < rowCount / GroupRows; g++)
        {
            for (int i = 0; i < nb; i++)
            {
                byte* column = packed + ((long)g * nb + i) * columnBytes;
                for (int r = 0; r < GroupRows; r++)
                {
                    ref readonly T block = ref ((T*)(rows + (g * GroupRows + r) * rowBytes))[i];
                    if (CpuFeatures.Avx2)
                    {
                        T.UnsignedQuants256(in block).Store(u + r * 32);
                    }
                    else
                    {
                        T.Quants(in block, q);
                        for (int e = 0; e < 32; e++)
                            u[r * 32 + e] = (byte)(q[e] + T.Offset);
                    }
                    ((ushort*)(column + TQ.QuantBytes))[r] = Float16.FromSingle(T.Scale(in block)); // exact: the block's own F16
                }
                TQ.Pack(u, column);
            }
        }
    }

    /// <summary>
    /// y[b·yStride + i] = row rowStart + i · activation row b for i &lt; rowCount, b &lt; count, over a matrix repacked by
    /// <see cref="Repack{T, TQ}"/>; activation rows of Q8_0 blocks <paramref name="stride"/> bytes apart. Any row range.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MultiplyRows<T, TQ>(byte* packed, int rowStart, int rowCount, int cols, byte* activations, int stride, int count,
        float* y, int yStride) where T : unmanaged, ISignedQuantBlock<T> where TQ : IGroupQuants
    {
        if (!CpuFeatures.AvxVnni)
        {
            Reference<T, TQ>(packed, rowStart, rowCount, cols, activations, stride, count, y, yStride);
            return;
        }
        if (rowCount <= 0)
            return;
        int nb = cols / LegacyDot.BlockSize, columnBytes = ColumnBytes<TQ>(), chunks = (count + MaxBatch - 1) / MaxBatch;
        long need = (long)chunks * nb * 2 * MaxBatch * sizeof(float);
        byte[] scratch = t_scratch is { } s && s.Length >= need ? s : (t_scratch = GC.AllocateUninitializedArray<byte>((int)need, pinned: true));
        float* prepared = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(scratch));
        for (int b = 0; b < count; b++)
            Prepare(T.Offset, activations + (nint)b * stride, nb, prepared + (long)(b / MaxBatch) * nb * 2 * MaxBatch + b % MaxBatch);

        Vector256<float>* partials = stackalloc Vector256<float>[MaxBatch * 2 * 8];
        float* lanes = stackalloc float[GroupRows];
        int rowEnd = rowStart + rowCount, lastGroup = (rowEnd - 1) / GroupRows;
        for (int g = rowStart / GroupRows; g <= lastGroup; g += 2)
        {
            byte* columns = packed + (long)g * nb * columnBytes;
            int first = g * GroupRows - rowStart; // y index of the group's lane 0
            bool two = g < lastGroup;
            if (count == 1)
            {
                Store(Row<TQ>(columns, nb, activations, prepared), lanes, y, first, rowCount);
                if (two)
                    Store(Row<TQ>(columns + (long)nb * columnBytes, nb, activations, prepared), lanes, y, first + GroupRows, rowCount);
                continue;
            }
            for (int b0 = 0; b0 < count; b0 += MaxBatch)
            {
                int n = Math.Min(MaxBatch, count - b0);
                float* chunk = prepared + (long)(b0 / MaxBatch) * nb * 2 * MaxBatch;
                if (two)
                    Tile2<TQ>(columns, nb, activations + (nint)b0 * stride, stride, n, chunk, partials);
                else
                    Tile1<TQ>(columns, nb, activations + (nint)b0 * stride, stride, n, chunk, partials);
                for (int b = 0; b < n; b++)
                {
                    Vector256<float>* p = partials + b * 16;
                    float* yb = y + (nint)(b0 + b) * yStride;
                    Store(((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7])), lanes, yb, first, rowCount);
                    if (two)
                        Store(((p[8] + p[12]) + (p[10] + p[14])) + ((p[9] + p[13]) + (p[11] + p[15])), lanes, yb, first + GroupRows, rowCount);
                }
            }
        }
    }

    // Row, Tile1 and Tile2 are compiled on their own: inlined into one method, they would exhaust the JIT's inlining budget.

    /// <summary>A group against one activation row, the eight partials in registers: lane r is row r's dot.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static Vector256<float> Row<TQ>(byte* columns, int nb, byte* a, float* prepared) where TQ : IGroupQuants
    {
        Vector256<float> p0 = default, p1 = default, p2 = default, p3 = default, p4 = default, p5 = default, p6 = default, p7 = default;
        int i = 0;
        for (; i + 8 <= nb; i += 8)
        {
            p0 = Block<TQ>(columns, i, a, prepared, p0);
            p1 = Block<TQ>(columns, i + 1, a, prepared, p1);
            p2 = Block<TQ>(columns, i + 2, a, prepared, p2);
            p3 = Block<TQ>(columns, i + 3, a, prepared, p3);
            p4 = Block<TQ>(columns, i + 4, a, prepared, p4);
            p5 = Block<TQ>(columns, i + 5, a, prepared, p5);
            p6 = Block<TQ>(columns, i + 6, a, prepared, p6);
            p7 = Block<TQ>(columns, i + 7, a, prepared, p7);
        }
        int m = nb - i;
        if (m > 0) p0 = Block<TQ>(columns, i, a, prepared, p0);
        if (m > 1) p1 = Block<TQ>(columns, i + 1, a, prepared, p1);
        if (m > 2) p2 = Block<TQ>(columns, i + 2, a, prepared, p2);
        if (m > 3) p3 = Block<TQ>(columns, i + 3, a, prepared, p3);
        if (m > 4) p4 = Block<TQ>(columns, i + 4, a, prepared, p4);
        if (m > 5) p5 = Block<TQ>(columns, i + 5, a, prepared, p5);
        if (m > 6) p6 = Block<TQ>(columns, i + 6, a, prepared, p6);
        return ((p0 + p4) + (p2 + p6)) + ((p1 + p5) + (p3 + p7));
    }

    /// <summary>acc + block column i's eight exact integer sums (lane r: row r) × d_w·d_a.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Block<TQ>(byte* columns, int i, byte* a, float* prepared, Vector256<float> acc)
        where TQ : IGroupQuants
    {
        byte* column = columns + (nint)i * ColumnBytes<TQ>();
        KQuants.Prefetch(column, ColumnBytes<TQ>());
        int* x = (int*)(a + i * Q8_0Bytes + 2);
        TQ.Chunks(column, 0, out Vector256<byte> l0, out Vector256<byte> h0);
        TQ.Chunks(column, 1, out Vector256<byte> l1, out Vector256<byte> h1);
        TQ.Chunks(column, 2, out Vector256<byte> l2, out Vector256<byte> h2);
        TQ.Chunks(column, 3, out Vector256<byte> l3, out Vector256<byte> h3);
        // Two chains halve the VPDPBUSD latency on the critical path; integer sums, so the split changes nothing.
        float* pi = prepared + (nint)i * 2 * MaxBatch;
        Vector256<int> s0 = Vector256.Create(((int*)pi)[MaxBatch]), s1 = Vector256<int>.Zero;
        s0 = AvxVnni.MultiplyWideningAndAdd(s0, l0, Vector256.Create(x[0]).AsSByte());
        s1 = AvxVnni.MultiplyWideningAndAdd(s1, h0, Vector256.Create(x[4]).AsSByte());
        s0 = AvxVnni.MultiplyWideningAndAdd(s0, l1, Vector256.Create(x[1]).AsSByte());
        s1 = AvxVnni.MultiplyWideningAndAdd(s1, h1, Vector256.Create(x[5]).AsSByte());
        s0 = AvxVnni.MultiplyWideningAndAdd(s0, l2, Vector256.Create(x[2]).AsSByte());
        s1 = AvxVnni.MultiplyWideningAndAdd(s1, h2, Vector256.Create(x[6]).AsSByte());
        s0 = AvxVnni.MultiplyWideningAndAdd(s0, l3, Vector256.Create(x[3]).AsSByte());
        s1 = AvxVnni.MultiplyWideningAndAdd(s1, h3, Vector256.Create(x[7]).AsSByte());
        Vector256<float> d = Scales<TQ>(column) * Vector256.Create(pi[0]);
        return Fma.MultiplyAdd(Avx.ConvertToVector256Single(s0 + s1), d, acc);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Tile1<TQ>(byte* columns, int nb, byte* activations, int stride, int n, float* prepared, Vector256<float>* partials)
        where TQ : IGroupQuants => Tile<TQ>(columns, false, nb, activations, stride, n, prepared, partials);

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Tile2<TQ>(byte* columns, int nb, byte* activations, int stride, int n, float* prepared, Vector256<float>* partials)
        where TQ : IGroupQuants => Tile<TQ>(columns, true, nb, activations, stride, n, prepared, partials);

    /// <summary>
    /// One group (two when <paramref name="two"/>, the second nb columns on) against <paramref name="n"/> (≤ <see cref="MaxBatch"/>)
    /// activation rows, each column's chunks expanded once and each activation dword broadcast once for both groups:
    /// partials[b·16 + 8·group + k] is activation row b's partial k.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile<TQ>(byte* columns, bool two, int nb, byte* activations, int stride, int n, float* prepared,
        Vector256<float>* partials) where TQ : IGroupQuants
    {
        for (int k = 0; k < MaxBatch * 16; k++)
            partials[k] = Vector256<float>.Zero;
        int columnBytes = ColumnBytes<TQ>();
        byte* columns1 = columns + (nint)nb * columnBytes;
        Vector256<byte> m0 = default, m1 = default, m2 = default, m3 = default, k0 = default, k1 = default, k2 = default, k3 = default;
        Vector256<float> dw1 = default;
        for (int i = 0; i < nb; i++, columns += columnBytes, columns1 += columnBytes, prepared += 2 * MaxBatch)
        {
            TQ.Chunks(columns, 0, out Vector256<byte> l0, out Vector256<byte> h0);
            TQ.Chunks(columns, 1, out Vector256<byte> l1, out Vector256<byte> h1);
            TQ.Chunks(columns, 2, out Vector256<byte> l2, out Vector256<byte> h2);
            TQ.Chunks(columns, 3, out Vector256<byte> l3, out Vector256<byte> h3);
            Vector256<float> dw0 = Scales<TQ>(columns);
            if (two)
            {
                TQ.Chunks(columns1, 0, out m0, out k0);
                TQ.Chunks(columns1, 1, out m1, out k1);
                TQ.Chunks(columns1, 2, out m2, out k2);
                TQ.Chunks(columns1, 3, out m3, out k3);
                dw1 = Scales<TQ>(columns1);
            }
            int* x = (int*)(activations + i * Q8_0Bytes + 2);
            Vector256<float>* p = partials + (i & 7);
            for (int b = 0; b < n; b++, x = (int*)((byte*)x + stride), p += 16)
            {
                Vector256<int> correction = Vector256.Create(((int*)prepared)[MaxBatch + b]);
                Vector256<int> s0 = correction, s1 = Vector256<int>.Zero, t0 = correction, t1 = Vector256<int>.Zero;
                Step(two, x + 0, l0, m0, ref s0, ref t0);
                Step(two, x + 4, h0, k0, ref s1, ref t1);
                Step(two, x + 1, l1, m1, ref s0, ref t0);
                Step(two, x + 5, h1, k1, ref s1, ref t1);
                Step(two, x + 2, l2, m2, ref s0, ref t0);
                Step(two, x + 6, h2, k2, ref s1, ref t1);
                Step(two, x + 3, l3, m3, ref s0, ref t0);
                Step(two, x + 7, h3, k3, ref s1, ref t1);
                Vector256<float> da = Vector256.Create(prepared[b]);
                p[0] = Fma.MultiplyAdd(Avx.ConvertToVector256Single(s0 + s1), dw0 * da, p[0]);
                if (two)
                    p[8] = Fma.MultiplyAdd(Avx.ConvertToVector256Single(t0 + t1), dw1 * da, p[8]);
            }
        }
    }

    /// <summary>A column's eight weight scales d_w, widened from F16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Scales<TQ>(byte* column) where TQ : IGroupQuants =>
        Float16.Widen(Vector128.LoadUnsafe(ref *(ushort*)(column + TQ.QuantBytes)));

    /// <summary>One broadcast activation dword into a chunk of the first group (and of the second when <paramref name="two"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step(bool two, int* dword, Vector256<byte> chunk0, Vector256<byte> chunk1, ref Vector256<int> s, ref Vector256<int> t)
    {
        Vector256<sbyte> a = Vector256.Create(*dword).AsSByte();
        s = AvxVnni.MultiplyWideningAndAdd(s, chunk0, a);
        if (two)
            t = AvxVnni.MultiplyWideningAndAdd(t, chunk1, a);
    }

    /// <summary>An activation row's d_a and −o·Σq_a per block, to prepared[i·2·MaxBatch] and, as int, prepared[i·2·MaxBatch + MaxBatch].</summary>
    private static void Prepare(int offset, byte* a, int nb, float* prepared)
    {
        for (int i = 0; i < nb; i++, prepared += 2 * MaxBatch)
        {
            byte* block = a + i * Q8_0Bytes;
            prepared[0] = Float16.ToSingleLookup(Unsafe.ReadUnaligned<ushort>(block));
            Vector256<sbyte> q = Vector256.LoadUnsafe(ref *(sbyte*)(block + 2));
            ((int*)prepared)[MaxBatch] = -offset * Vector256.Sum(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Vector256<byte>.One, q), Vector256<short>.One));
        }
    }

    /// <summary>Lane r of <paramref name="v"/> to y[first + r] for the lanes in [0, rowCount).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Store(Vector256<float> v, float* lanes, float* y, int first, int rowCount)
    {
        if (first >= 0 && first + GroupRows <= rowCount)
        {
            v.Store(y + first);
            return;
        }
        v.Store(lanes);
        for (int r = Math.Max(0, -first); r < GroupRows && first + r < rowCount; r++)
            y[first + r] = lanes[r];
    }

    /// <summary>The scalar reference over the repacked layout, in <see cref="LegacyDot"/>'s order; the path without AVX-VNNI.</summary>
    internal static void Reference<T, TQ>(byte* packed, int rowStart, int rowCount, int cols, byte* activations, int stride, int count,
        float* y, int yStride) where T : unmanaged, ISignedQuantBlock<T> where TQ : IGroupQuants
    {
        int nb = cols / LegacyDot.BlockSize, columnBytes = ColumnBytes<TQ>();
        Span<float> partial = stackalloc float[8];
        for (int row = rowStart; row < rowStart + rowCount; row++)
        {
            int g = row / GroupRows, r = row % GroupRows;
            for (int b = 0; b < count; b++)
            {
                partial.Clear();
                for (int i = 0; i < nb; i++)
                {
                    byte* column = packed + ((long)g * nb + i) * columnBytes;
                    byte* a = activations + (nint)b * stride + i * Q8_0Bytes;
                    int sum = 0;
                    for (int e = 0; e < 32; e++)
                        sum += (TQ.Unsigned(column, r, e) - T.Offset) * (sbyte)a[2 + e];
                    float d = Float16.ToSingle(((ushort*)(column + TQ.QuantBytes))[r]) * Float16.ToSingle(Unsafe.ReadUnaligned<ushort>(a));
                    partial[i & 7] = MathF.FusedMultiplyAdd(sum, d, partial[i & 7]);
                }
                y[(nint)b * yStride + row - rowStart] = LegacyDot.Combine8(partial);
            }
        }
    }
}

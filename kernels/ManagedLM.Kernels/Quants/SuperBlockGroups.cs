using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedLM.Kernels.Quants;

/// <summary>
/// Q4_K weights repacked at load into groups of eight rows (the idea of llama.cpp's q4_K 8×8 REPACK): per block column, the
/// eight rows' levels interleaved by dword, so lane r of every 256-bit chunk is row r, then their sub-block scales and mins
/// as bytes and their D and M as the file's F16. A decode step's maddubs/maddwd then serve eight rows per instruction, with
/// no per-block scale shuffles and no horizontal sums: lane j of row r accumulates exactly <see cref="SuperBlockDot"/>'s
/// lane j (the same integers), followed by the same float steps, so every result equals the single-row dot bit for bit.
/// Batches unpack each row's blocks from the groups into <see cref="SuperBlockPairs512"/>'s register tiles. 148 bytes a
/// row-block against the file's 144.
/// </summary>
[SkipLocalsInit] // scratch is written before it is read
internal static unsafe class SuperBlockGroups
{
    /// <summary>Rows per group: a matrix repacks when its row count is a multiple of it.</summary>
    public const int GroupRows = SignedBlockGroups.GroupRows;

    // A block column of a group: [c < 4][j < 8] 32-byte chunks, byte 4r + t = level(r, 64c + 4j + t) | level(r, 64c + 32 + 4j + t) << 4;
    // then [k < 8][r < 8] sub-block k's scale of row r, the same for its mins, then [r < 8] D and [r < 8] M (F16).
    private const int QuantBytes = 1024;
    private const int ScalesAt = QuantBytes;
    private const int MinsAt = ScalesAt + 64;
    private const int HalvesAt = MinsAt + 64;
    private const int ColumnBytes = HalvesAt + 32;

    /// <summary>Bytes of the repacked form of <paramref name="rowCount"/> rows (a multiple of <see cref="GroupRows"/>) of <paramref name="cols"/> values.</summary>
    public static long PackedBytes(int rowCount, int cols) => (long)(rowCount / GroupRows) * (cols / KQuants.QK) * ColumnBytes;

    /// <summary>Q4_K rows of the file's layout, <paramref name="rowBytes"/> apart, into <see cref="PackedBytes"/> bytes at <paramref name="packed"/>.</summary>
    public static void Repack(byte* rows, long rowBytes, int rowCount, int cols, byte* packed)
    {
        int nb = cols / KQuants.QK;
        UnpackedSuperBlock* u = stackalloc UnpackedSuperBlock[GroupRows];
        for (int g = 0; g < rowCount / GroupRows; g++)
        {
            for (int i = 0; i < nb; i++)
            {
                byte* column = packed + ((long)g * nb + i) * ColumnBytes;
                for (int r = 0; r < GroupRows; r++)
                    Unpack((Q4KBlock*)(rows + (g * GroupRows + r) * rowBytes) + i, u + r);
                if (CpuFeatures.Avx2)
                    InterleaveLevels(u, column);
                else
                {
                    for (int c = 0; c < 4; c++)
                        for (int j = 0; j < 8; j++)
                            for (int r = 0; r < GroupRows; r++)
                                for (int t = 0; t < 4; t++)
                                    column[(c * 8 + j) * 32 + 4 * r + t] = (byte)(u[r].Q[64 * c + 4 * j + t] | (u[r].Q[64 * c + 32 + 4 * j + t] << 4));
                }
                for (int k = 0; k < 8; k++)
                    for (int r = 0; r < GroupRows; r++)
                    {
                        column[ScalesAt + 8 * k + r] = (byte)u[r].Scales[2 * k]; // Q4_K: one scale and min per 32 values
                        column[MinsAt + 8 * k + r] = (byte)u[r].Mins[2 * k];
                    }
                for (int r = 0; r < GroupRows; r++)
                {
                    ((ushort*)(column + HalvesAt))[r] = Float16.FromSingle(u[r].D); // exact: the block's own F16
                    ((ushort*)(column + HalvesAt))[GroupRows + r] = Float16.FromSingle(u[r].M);
                }
            }
        }
    }

    // The same bytes either way (see ISuperBlock.UnpackAvx2).
    private static void Unpack<T>(T* x, UnpackedSuperBlock* u) where T : unmanaged, ISuperBlock<T>
    {
        if (CpuFeatures.Avx2)
            T.UnpackAvx2(x, u);
        else
            T.UnpackReference(x, u);
    }

    // out r, lane j = in j, lane r.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose(Vector256<int> v0, Vector256<int> v1, Vector256<int> v2, Vector256<int> v3,
        Vector256<int> v4, Vector256<int> v5, Vector256<int> v6, Vector256<int> v7,
        out Vector256<int> t0, out Vector256<int> t1, out Vector256<int> t2, out Vector256<int> t3,
        out Vector256<int> t4, out Vector256<int> t5, out Vector256<int> t6, out Vector256<int> t7)
    {
        Vector256<long> a0 = Avx2.UnpackLow(v0, v1).AsInt64(), a1 = Avx2.UnpackHigh(v0, v1).AsInt64();
        Vector256<long> a2 = Avx2.UnpackLow(v2, v3).AsInt64(), a3 = Avx2.UnpackHigh(v2, v3).AsInt64();
        Vector256<long> a4 = Avx2.UnpackLow(v4, v5).AsInt64(), a5 = Avx2.UnpackHigh(v4, v5).AsInt64();
        Vector256<long> a6 = Avx2.UnpackLow(v6, v7).AsInt64(), a7 = Avx2.UnpackHigh(v6, v7).AsInt64();
        Vector256<int> b0 = Avx2.UnpackLow(a0, a2).AsInt32(), b1 = Avx2.UnpackHigh(a0, a2).AsInt32();
        Vector256<int> b2 = Avx2.UnpackLow(a1, a3).AsInt32(), b3 = Avx2.UnpackHigh(a1, a3).AsInt32();
        Vector256<int> b4 = Avx2.UnpackLow(a4, a6).AsInt32(), b5 = Avx2.UnpackHigh(a4, a6).AsInt32();
        Vector256<int> b6 = Avx2.UnpackLow(a5, a7).AsInt32(), b7 = Avx2.UnpackHigh(a5, a7).AsInt32();
        t0 = Avx2.Permute2x128(b0, b4, 0x20);
        t1 = Avx2.Permute2x128(b1, b5, 0x20);
        t2 = Avx2.Permute2x128(b2, b6, 0x20);
        t3 = Avx2.Permute2x128(b3, b7, 0x20);
        t4 = Avx2.Permute2x128(b0, b4, 0x31);
        t5 = Avx2.Permute2x128(b1, b5, 0x31);
        t6 = Avx2.Permute2x128(b2, b6, 0x31);
        t7 = Avx2.Permute2x128(b3, b7, 0x31);
    }


    // The chunks of a column from eight unpacked rows (AVX2): each row's 32 nibble pairs of c, then an 8 × 8 dword transpose.
    private static void InterleaveLevels(UnpackedSuperBlock* u, byte* column)
    {
        for (int c = 0; c < 4; c++)
        {
            Vector256<int> Pairs(int r) => (Avx.LoadVector256(u[r].Q + 64 * c) | Avx2.ShiftLeftLogical(Avx.LoadVector256(u[r].Q + 64 * c + 32).AsUInt16(), 4).AsByte()).AsInt32();
            Transpose(Pairs(0), Pairs(1), Pairs(2), Pairs(3), Pairs(4), Pairs(5), Pairs(6), Pairs(7),
                out var t0, out var t1, out var t2, out var t3, out var t4, out var t5, out var t6, out var t7);
            int* chunks = (int*)(column + 256 * c);
            Avx.Store(chunks, t0);
            Avx.Store(chunks + 8, t1);
            Avx.Store(chunks + 16, t2);
            Avx.Store(chunks + 24, t3);
            Avx.Store(chunks + 32, t4);
            Avx.Store(chunks + 40, t5);
            Avx.Store(chunks + 48, t6);
            Avx.Store(chunks + 56, t7);
        }
    }

    /// <summary>
    /// y[b·yStride + i] = row rowStart + i · activation row b for i &lt; rowCount, b &lt; count, over a matrix repacked by
    /// <see cref="Repack"/>; activation rows of Q8_K blocks <paramref name="stride"/> bytes apart. Any row range.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MultiplyRows(byte* packed, int rowStart, int rowCount, int cols, byte* activations, int stride, int count,
        float* y, int yStride)
    {
        if (rowCount <= 0)
            return;
        int nb = cols / KQuants.QK;
        if (!CpuFeatures.Avx2)
        {
            Reference(packed, rowStart, rowCount, nb, activations, stride, count, y, yStride);
            return;
        }
        if (count >= 4 && SuperBlockPairs512.Supported)
        {
            SuperBlockPairs512.MultiplyRows<Q4KBlock, GroupedRows>(new GroupedRows(packed, nb, rowStart), rowCount, nb, activations, stride, count, y, yStride);
            return;
        }
        float* lanes = stackalloc float[GroupRows];
        int rowEnd = rowStart + rowCount;
        for (int g = rowStart / GroupRows; g * GroupRows < rowEnd; g++)
        {
            byte* columns = packed + (long)g * nb * ColumnBytes;
            int first = g * GroupRows - rowStart; // y index of the group's lane 0
            for (int b = 0; b < count; b++)
                SignedBlockGroups.Store(Group(columns, nb, (Q8KBlock*)(activations + (nint)b * stride)), lanes, y + (nint)b * yStride, first, rowCount);
        }
    }

    /// <summary>A group's eight rows against one activation row: lane r is row r's dot.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static Vector256<float> Group(byte* column, int nb, Q8KBlock* a)
    {
        Vector256<float> f0 = default, f1 = default, f2 = default, f3 = default, f4 = default, f5 = default, f6 = default, f7 = default;
        for (int i = 0; i < nb; i++, column += ColumnBytes)
        {
            KQuants.Prefetch(column, ColumnBytes);
            sbyte* q = a[i].Qs;
            Vector256<int> l0 = default, l1 = default, l2 = default, l3 = default, l4 = default, l5 = default, l6 = default, l7 = default;
            for (int c = 0; c < 4; c++)
            {
                // Chunk (c, j): lane r holds row r's levels at 64c + 4j + t (low nibbles, sub-block 2c) and 64c + 32 + 4j + t (high, 2c + 1).
                Vector256<short> low = PairedBytes(column + ScalesAt + 16 * c), high = PairedBytes(column + ScalesAt + 16 * c + 8);
                byte* chunks = column + 256 * c;
                sbyte* qc = q + 64 * c;
                l0 = Step(chunks, qc, low, high, l0);
                l1 = Step(chunks + 32, qc + 4, low, high, l1);
                l2 = Step(chunks + 64, qc + 8, low, high, l2);
                l3 = Step(chunks + 96, qc + 12, low, high, l3);
                l4 = Step(chunks + 128, qc + 16, low, high, l4);
                l5 = Step(chunks + 160, qc + 20, low, high, l5);
                l6 = Step(chunks + 192, qc + 24, low, high, l6);
                l7 = Step(chunks + 224, qc + 28, low, high, l7);
            }
            // Min lane j of row r: min_j·(bsum_2j + bsum_2j+1), the sub-block's min for both of its 16-value groups.
            int* bsums = (int*)a[i].BSums;
            Vector256<float> dy = Vector256.Create(a[i].D);
            Vector256<float> d = Float16.Widen(Vector128.LoadUnsafe(ref *(ushort*)(column + HalvesAt))) * dy;
            Vector256<float> m = -(Float16.Widen(Vector128.LoadUnsafe(ref *((ushort*)(column + HalvesAt) + GroupRows))) * dy);
            f0 = Finish(l0, column + MinsAt, bsums[0], d, m, f0);
            f1 = Finish(l1, column + MinsAt + 8, bsums[1], d, m, f1);
            f2 = Finish(l2, column + MinsAt + 16, bsums[2], d, m, f2);
            f3 = Finish(l3, column + MinsAt + 24, bsums[3], d, m, f3);
            f4 = Finish(l4, column + MinsAt + 32, bsums[4], d, m, f4);
            f5 = Finish(l5, column + MinsAt + 40, bsums[5], d, m, f5);
            f6 = Finish(l6, column + MinsAt + 48, bsums[6], d, m, f6);
            f7 = Finish(l7, column + MinsAt + 56, bsums[7], d, m, f7);
        }
        return ((f0 + f4) + (f2 + f6)) + ((f1 + f5) + (f3 + f7));
    }

    // Lane accumulator + the chunk's low nibbles · the activation dword at q (scaled by `low`) + its high nibbles · the dword 32 on.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Step(byte* chunk, sbyte* q, Vector256<short> low, Vector256<short> high, Vector256<int> acc)
    {
        Vector256<byte> v = Avx.LoadVector256(chunk), mask = Vector256.Create((byte)0x0F);
        Vector256<short> pl = Avx2.MultiplyAddAdjacent(v & mask, Vector256.Create(*(int*)q).AsSByte());
        Vector256<short> ph = Avx2.MultiplyAddAdjacent(Avx2.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & mask, Vector256.Create(*(int*)(q + 32)).AsSByte());
        return acc + Avx2.MultiplyAddAdjacent(pl, low) + Avx2.MultiplyAddAdjacent(ph, high);
    }

    // Eight bytes (one per row) as the shorts (b, b) of dword r: a maddwd operand that scales both of a row's pair sums.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> PairedBytes(byte* p) => BothShorts(Avx2.ConvertToVector256Int32(p));

    // Dwords holding a value below 2^16 as that value in both of their shorts.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> BothShorts(Vector256<int> x) => (x | Avx2.ShiftLeftLogical(x, 16)).AsInt16();

    // SuperBlockDot's float steps for eight rows' lane j: fma(lane, D·dy), then fma(min lane, −(M·dy)).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Finish(Vector256<int> lanes, byte* mins, int bsumPair, Vector256<float> d, Vector256<float> negM, Vector256<float> acc)
    {
        Vector256<int> minLanes = Avx2.MultiplyAddAdjacent(PairedBytes(mins), Vector256.Create(bsumPair).AsInt16());
        acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(lanes), d, acc);
        return Fma.MultiplyAdd(Avx.ConvertToVector256Single(minLanes), negM, acc);
    }

    /// <summary>Row <paramref name="r"/> of a group's block column, unpacked (scalar; no scale pairs).</summary>
    internal static void UnpackRow(byte* column, int r, UnpackedSuperBlock* u)
    {
        for (int c = 0; c < 4; c++)
            for (int j = 0; j < 8; j++)
                for (int t = 0; t < 4; t++)
                {
                    byte b = column[(c * 8 + j) * 32 + 4 * r + t];
                    u->Q[64 * c + 4 * j + t] = (byte)(b & 15);
                    u->Q[64 * c + 32 + 4 * j + t] = (byte)(b >> 4);
                }
        for (int g = 0; g < 16; g++)
        {
            u->Scales[g] = column[ScalesAt + 8 * (g / 2) + r];
            u->Mins[g] = column[MinsAt + 8 * (g / 2) + r];
        }
        u->D = Float16.ToSingle(((ushort*)(column + HalvesAt))[r]);
        u->M = Float16.ToSingle(((ushort*)(column + HalvesAt))[GroupRows + r]);
    }

    /// <summary>The scalar reference over the repacked layout, in <see cref="SuperBlockDot"/>'s order; the path without AVX2.</summary>
    internal static void Reference(byte* packed, int rowStart, int rowCount, int nb, byte* activations, int stride, int count, float* y, int yStride)
    {
        UnpackedSuperBlock u;
        float* acc = stackalloc float[8];
        int* lanes = stackalloc int[8];
        int* mins = stackalloc int[8];
        for (int row = rowStart; row < rowStart + rowCount; row++)
        {
            byte* columns = packed + (long)(row / GroupRows) * nb * ColumnBytes;
            for (int b = 0; b < count; b++)
            {
                var a = (Q8KBlock*)(activations + (nint)b * stride);
                new Span<float>(acc, 8).Clear();
                for (int i = 0; i < nb; i++)
                {
                    UnpackRow(columns + (long)i * ColumnBytes, row % GroupRows, &u);
                    SuperBlockDot.LanesReference(&u, a + i, lanes, mins);
                    SuperBlockDot.Accumulate<Q4KBlock>(lanes, mins, u.D * a[i].D, u.M * a[i].D, acc);
                }
                y[(nint)b * yStride + row - rowStart] = LegacyDot.Combine8(new ReadOnlySpan<float>(acc, 8));
            }
        }
    }

    /// <summary>The rows of a repacked matrix from <c>rowStart</c> on, for <see cref="SuperBlockPairs512"/>.</summary>
    private readonly struct GroupedRows(byte* packed, int nb, int rowStart) : ISuperBlockRows
    {
        // A group's rows share every cache line of its columns: unpacked together, they read them once.
        public static int BandRows => GroupRows;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Unpack(int row, int block, UnpackedSuperBlock* u)
        {
            row += rowStart;
            byte* column = packed + ((long)(row / GroupRows) * nb + block) * ColumnBytes;
            int r = row % GroupRows;
            // Row r's dword of each chunk: a gather per c gives its 32 bytes in element order (low nibbles 64c.., high 64c + 32..).
            Vector256<int> index = Vector256.Create(0, 8, 16, 24, 32, 40, 48, 56) + Vector256.Create(r);
            Vector256<byte> mask = Vector256.Create((byte)0x0F);
            for (int c = 0; c < 4; c++)
            {
                Vector256<byte> v = Avx2.GatherVector256((int*)(column + 256 * c), index, 4).AsByte();
                Avx.Store(u->Q + 64 * c, v & mask);
                Avx.Store(u->Q + 64 * c + 32, Avx2.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & mask);
            }
            // Scales and mins per 16 values: each sub-block's byte twice (dword k = the byte in both shorts).
            Vector256<int> strided = Vector256.Create(0, 8, 16, 24, 32, 40, 48, 56), low8 = Vector256.Create(0xFF);
            Vector256<int> scales = Avx2.GatherVector256((int*)(column + ScalesAt + r), strided, 1) & low8;
            Vector256<int> mins = Avx2.GatherVector256((int*)(column + MinsAt + r), strided, 1) & low8;
            Avx.Store(u->Scales, BothShorts(scales));
            Avx.Store(u->Mins, BothShorts(mins));
            u->D = Float16.ToSingleLookup(((ushort*)(column + HalvesAt))[r]);
            u->M = Float16.ToSingleLookup(((ushort*)(column + HalvesAt))[GroupRows + r]);
            SuperBlockDot.FillScalePairs(u);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void UnpackBand(int row, int rows, int block, int count, UnpackedSuperBlock* u, int stride)
        {
            if (rows != GroupRows || (row + rowStart) % GroupRows != 0)
            {
                SuperBlockPairs512.UnpackEach(this, row, rows, block, count, u, stride);
                return;
            }
            byte* column = packed + ((long)((row + rowStart) / GroupRows) * nb + block) * ColumnBytes;
            for (int i = 0; i < count; i++, column += ColumnBytes)
                UnpackGroup(column, u + i, stride);
        }

        // A whole group's block column: each 8 × 8 matrix of dwords (chunks × rows) transposed into the rows' own order.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void UnpackGroup(byte* column, UnpackedSuperBlock* u, int stride)
        {
            Vector256<byte> mask = Vector256.Create((byte)0x0F);
            Vector256<int> t0, t1, t2, t3, t4, t5, t6, t7;
            for (int c = 0; c < 4; c++)
            {
                int* chunks = (int*)(column + 256 * c);
                Transpose(Avx.LoadVector256(chunks), Avx.LoadVector256(chunks + 8), Avx.LoadVector256(chunks + 16), Avx.LoadVector256(chunks + 24),
                    Avx.LoadVector256(chunks + 32), Avx.LoadVector256(chunks + 40), Avx.LoadVector256(chunks + 48), Avx.LoadVector256(chunks + 56),
                    out t0, out t1, out t2, out t3, out t4, out t5, out t6, out t7);
                StoreLevels(t0, mask, u[0].Q + 64 * c);
                StoreLevels(t1, mask, u[stride].Q + 64 * c);
                StoreLevels(t2, mask, u[2 * stride].Q + 64 * c);
                StoreLevels(t3, mask, u[3 * stride].Q + 64 * c);
                StoreLevels(t4, mask, u[4 * stride].Q + 64 * c);
                StoreLevels(t5, mask, u[5 * stride].Q + 64 * c);
                StoreLevels(t6, mask, u[6 * stride].Q + 64 * c);
                StoreLevels(t7, mask, u[7 * stride].Q + 64 * c);
            }
            for (int m = 0; m < 2; m++)
            {
                // Scales, then mins: dword k of row r's vector = its sub-block k's byte, in both shorts (per 16 values).
                byte* bytes = column + (m == 0 ? ScalesAt : MinsAt);
                Transpose(Avx2.ConvertToVector256Int32(bytes), Avx2.ConvertToVector256Int32(bytes + 8), Avx2.ConvertToVector256Int32(bytes + 16),
                    Avx2.ConvertToVector256Int32(bytes + 24), Avx2.ConvertToVector256Int32(bytes + 32), Avx2.ConvertToVector256Int32(bytes + 40),
                    Avx2.ConvertToVector256Int32(bytes + 48), Avx2.ConvertToVector256Int32(bytes + 56),
                    out t0, out t1, out t2, out t3, out t4, out t5, out t6, out t7);
                StoreShorts(t0, u, m);
                StoreShorts(t1, u + stride, m);
                StoreShorts(t2, u + 2 * stride, m);
                StoreShorts(t3, u + 3 * stride, m);
                StoreShorts(t4, u + 4 * stride, m);
                StoreShorts(t5, u + 5 * stride, m);
                StoreShorts(t6, u + 6 * stride, m);
                StoreShorts(t7, u + 7 * stride, m);
            }
            ushort* halves = (ushort*)(column + HalvesAt);
            for (int r = 0; r < GroupRows; r++)
            {
                UnpackedSuperBlock* ur = u + r * stride;
                ur->D = Float16.ToSingleLookup(halves[r]);
                ur->M = Float16.ToSingleLookup(halves[GroupRows + r]);
                SuperBlockDot.FillScalePairs(ur);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void StoreLevels(Vector256<int> row, Vector256<byte> mask, byte* q)
        {
            Avx.Store(q, row.AsByte() & mask);
            Avx.Store(q + 32, Avx2.ShiftRightLogical(row.AsUInt16(), 4).AsByte() & mask);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void StoreShorts(Vector256<int> bytes, UnpackedSuperBlock* u, int mins) =>
            Avx.Store(mins == 0 ? u->Scales : u->Mins, BothShorts(bytes));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Prefetch(int row0, int row1, int block, int count)
        {
            for (int g = (row0 + rowStart) / GroupRows; g <= (row1 + rowStart) / GroupRows; g++)
                PrefetchColumns(packed + ((long)g * nb + block) * ColumnBytes, count);
        }

        private static void PrefetchColumns(byte* p, int count)
        {
            for (int line = 0; line < count * ColumnBytes; line += 64)
                Sse.Prefetch1(p + line);
        }
    }
}

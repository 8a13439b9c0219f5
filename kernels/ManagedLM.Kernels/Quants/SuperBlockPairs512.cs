using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedLM.Kernels.Quants;

/// <summary>
/// One Q8_K block of two activation rows side by side, so one 512-bit vector carries both rows' 32 values of a 256-bit
/// vector k and the weight side is a 256-bit load broadcast to both halves.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct Q8KPairBlock
{
    /// <summary>Bytes 64k..64k+31: the first row's values 32k..32k+31; bytes 64k+32..64k+63: the second row's.</summary>
    public fixed sbyte Qs[2 * KQuants.QK];
    /// <summary>The first row's 16 sums, then the second row's.</summary>
    public fixed short BSums[2 * KQuants.QK / 16];
    /// <summary>The first row's scale eight times, then the second row's.</summary>
    public fixed float D[16];
}

/// <summary>
/// K-quant rows × Q8_K activation rows with AVX-512, in register tiles of two weight rows × four pairs of activation rows.
/// The activation rows are interleaved in pairs once per call, so one 512-bit vector carries two rows and each row's eight
/// lanes stay in one half: a block needs no fold of 512-bit lanes, its float steps (conversion, D·dy, the fused
/// multiply-adds) serve two rows per instruction, each weight vector (a 256-bit broadcast) feeds four pairs and each
/// activation vector two weight rows. The same integers and float operations as <see cref="SuperBlockDot"/> per row, so
/// every result is bit-identical to the single-row dot. Measured on an Intel Xeon with AVX-512 (one thread, 2048×5632,
/// thread CPU time): Q4_K 135 GOP/s at batch 64 and 97 at batch 8, against 77 and 68 one weight row at a time.
/// </summary>
/// <summary>Where <see cref="SuperBlockPairs512"/> reads weight rows from: unpacks a row's block, hints blocks into cache.</summary>
internal unsafe interface ISuperBlockRows
{
    /// <summary>Rows unpacked together (a run of blocks each) before they go through the tiles two at a time; even.</summary>
    static abstract int BandRows { get; }

    /// <summary>Block <paramref name="block"/> of row <paramref name="row"/>, unpacked with its scale pairs (AVX2).</summary>
    void Unpack(int row, int block, UnpackedSuperBlock* u);

    /// <summary>
    /// Blocks [block, block + count) of rows [row, row + rows) (at most <see cref="BandRows"/>), row r's block i to
    /// u[r·stride + i]: as <see cref="Unpack"/> each.
    /// </summary>
    void UnpackBand(int row, int rows, int block, int count, UnpackedSuperBlock* u, int stride);

    /// <summary>Hints blocks [block, block + count) of rows row0 .. row1 into L2 (a hint: never faults).</summary>
    void Prefetch(int row0, int row1, int block, int count);
}

[SkipLocalsInit] // the scratch below is written before it is read
internal static unsafe class SuperBlockPairs512
{
    private const int Run = 16; // unpacked blocks of each row of a band kept in cache while the activation pairs pass over them
    private const int Tile = 4; // activation pairs per register tile: two weight rows × four pairs, eight integer and eight float accumulators
    private const int Group = 32; // activation pairs (64 rows) per pass over a weight row
    private const int RowChunk = 64; // weight rows per chunk

    // Pinned; grows to the largest batch a thread has seen, never shrinks, so a steady batch size allocates nothing.
    [ThreadStatic]
    [ThreadSafeStatic("one scratch per thread: each call interleaves its activations into its own thread's buffer")]
    private static Q8KPairBlock[]? t_pairs;

    /// <summary>AVX-512 F, BW and DQ (vbroadcasti32x8); a constant in optimized code.</summary>
    public static bool Supported => CpuFeatures.Avx512 && Avx512DQ.IsSupported;

    /// <summary>See <see cref="IQuantBlock{TSelf}.MultiplyRows"/>; called when <see cref="Supported"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MultiplyRows<T>(byte* rows, long rowBytes, int rowCount, int nb, byte* activations, int stride, int count, float* y, int yStride)
        where T : unmanaged, ISuperBlock<T> =>
        MultiplyRows<T, FileRows<T>>(new FileRows<T>(rows, rowBytes), rowCount, nb, activations, stride, count, y, yStride);

    /// <summary>As <see cref="MultiplyRows{T}"/>, over rows 0 .. rowCount of <paramref name="source"/>, wherever it keeps them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MultiplyRows<T, TRows>(TRows source, int rowCount, int nb, byte* activations, int stride, int count, float* y, int yStride)
        where T : unmanaged, ISuperBlock<T> where TRows : struct, ISuperBlockRows
    {
        int pairCount = (count + 1) / 2;
        Q8KPairBlock* pairs = Pairs(pairCount * nb);
        Interleave(activations, stride, count, nb, pairs);
        int bandRows = TRows.BandRows;
        // A band of weight rows is unpacked Run by Run, then its rows go through the tiles two at a time; the accumulators of
        // every row of the band carry over the runs (the last, spare one takes an odd row's twin).
        UnpackedSuperBlock* u = stackalloc UnpackedSuperBlock[bandRows * Run];
        Vector512<float>* accs = stackalloc Vector512<float>[(bandRows + 1) * Group];
        // A chunk's results for a group, [activation row − 2·first][weight row − firstRow], written out to y row by row:
        // storing each result straight into y would touch one page of y per activation row for every weight row.
        float* staged = stackalloc float[2 * Group * RowChunk];
        // Cache blocking for long prompts: a chunk of weight rows and a group of activation pairs both stay in L2.
        for (int firstRow = 0; firstRow < rowCount; firstRow += RowChunk)
        {
            int lastRow = Math.Min(rowCount, firstRow + RowChunk);
            for (int first = 0; first < pairCount; first += Group)
            {
                int groupPairs = Math.Min(Group, pairCount - first);
                Q8KPairBlock* group = pairs + (nint)first * nb;
                for (int band = firstRow; band < lastRow; band += bandRows)
                {
                    int rows = Math.Min(bandRows, lastRow - band);
                    for (int k = 0; k < rows * Group; k++)
                        accs[k] = Vector512<float>.Zero;
                    for (int start = 0; start < nb; start += Run)
                    {
                        int n = Math.Min(Run, nb - start);
                        source.UnpackBand(band, rows, start, n, u, Run);
                        // The Run after this one (the next band's first Run after a row's last) is fetched while the tiles
                        // below work on this one: the unpacking then reads from cache, not memory.
                        if (start + Run < nb)
                            source.Prefetch(band, band + rows - 1, start + Run, Math.Min(Run, nb - start - Run));
                        else if (band + bandRows < lastRow)
                            source.Prefetch(band + bandRows, Math.Min(band + 2 * bandRows, lastRow) - 1, 0, Math.Min(Run, nb));
                        // Two weight rows at a time share each activation load; an odd last row goes with itself.
                        for (int r = 0; r < rows; r += 2)
                        {
                            UnpackedSuperBlock* u0 = u + r * Run, u1 = r + 1 < rows ? u0 + Run : u0;
                            Vector512<float>* accs0 = accs + r * Group, accs1 = r + 1 < rows ? accs0 + Group : accs + bandRows * Group;
                            int p = 0;
                            for (; p + Tile <= groupPairs; p += Tile)
                                Tile2x4<T>(u0, u1, n, group + (nint)p * nb + start, nb, accs0 + p, accs1 + p);
                            if (p + 2 <= groupPairs)
                            {
                                Tile2x2<T>(u0, u1, n, group + (nint)p * nb + start, nb, accs0 + p, accs1 + p);
                                p += 2;
                            }
                            if (p < groupPairs)
                                Tile2x1<T>(u0, u1, n, group + (nint)p * nb + start, accs0 + p, accs1 + p);
                        }
                    }
                    for (int r = 0; r < rows; r++)
                        Store(accs + r * Group, groupPairs, count - 2 * first, staged + (band + r - firstRow));
                }
                int groupRows = Math.Min(2 * groupPairs, count - 2 * first);
                for (int b = 0; b < groupRows; b++)
                    new ReadOnlySpan<float>(staged + b * RowChunk, lastRow - firstRow).CopyTo(
                        new Span<float>(y + (nint)(2 * first + b) * yStride + firstRow, lastRow - firstRow));
            }
        }
    }

    /// <summary><see cref="ISuperBlockRows.UnpackBand"/> as one <see cref="ISuperBlockRows.Unpack"/> per row and block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void UnpackEach<TRows>(in TRows source, int row, int rows, int block, int count, UnpackedSuperBlock* u, int stride)
        where TRows : struct, ISuperBlockRows
    {
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < count; i++)
                source.Unpack(row + r, block + i, u + r * stride + i);
    }

    /// <summary>Rows in the file's layout, <c>rowBytes</c> apart.</summary>
    internal readonly struct FileRows<T>(byte* rows, long rowBytes) : ISuperBlockRows where T : unmanaged, ISuperBlock<T>
    {
        public static int BandRows => 2;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Unpack(int row, int block, UnpackedSuperBlock* u) => SuperBlockDot.Unpack((T*)(rows + row * rowBytes) + block, u);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void UnpackBand(int row, int rows, int block, int count, UnpackedSuperBlock* u, int stride) =>
            UnpackEach(this, row, rows, block, count, u, stride);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Prefetch(int row0, int row1, int block, int count)
        {
            byte* p0 = (byte*)((T*)(rows + row0 * rowBytes) + block), p1 = (byte*)((T*)(rows + row1 * rowBytes) + block);
            for (int line = 0; line < count * sizeof(T); line += 64)
            {
                Sse.Prefetch1(p0 + line);
                Sse.Prefetch1(p1 + line);
            }
        }
    }

    // The results of one weight row against a group of activation pairs (of which rowsLeft rows are real), RowChunk apart.
    private static void Store(Vector512<float>* accs, int groupPairs, int rowsLeft, float* staged)
    {
        for (int p = 0; p < groupPairs; p++)
        {
            staged[2 * p * RowChunk] = LegacyDot.Combine8(accs[p].GetLower());
            if (2 * p + 1 < rowsLeft)
                staged[(2 * p + 1) * RowChunk] = LegacyDot.Combine8(accs[p].GetUpper());
        }
    }

    /// <summary>
    /// Activation rows 2p and 2p+1 into pair row p (<paramref name="nb"/> blocks from <c>pairs + p·nb</c>); an odd last row
    /// is paired with itself.
    /// </summary>
    public static void Interleave(byte* activations, int stride, int count, int nb, Q8KPairBlock* pairs)
    {
        for (int p = 0; 2 * p < count; p++)
        {
            var a0 = (Q8KBlock*)(activations + (nint)(2 * p) * stride);
            var a1 = 2 * p + 1 < count ? (Q8KBlock*)(activations + (nint)(2 * p + 1) * stride) : a0;
            for (int i = 0; i < nb; i++)
            {
                Q8KPairBlock* d = pairs + (nint)p * nb + i;
                for (int k = 0; k < 8; k++)
                {
                    Avx.Store(d->Qs + 64 * k, Avx.LoadVector256(a0[i].Qs + 32 * k));
                    Avx.Store(d->Qs + 64 * k + 32, Avx.LoadVector256(a1[i].Qs + 32 * k));
                }
                Avx.Store(d->BSums, Avx.LoadVector256(a0[i].BSums));
                Avx.Store(d->BSums + 16, Avx.LoadVector256(a1[i].BSums));
                Avx.Store(d->D, Vector256.Create(a0[i].D));
                Avx.Store(d->D + 8, Vector256.Create(a1[i].D));
            }
        }
    }

    private static Q8KPairBlock* Pairs(int blocks)
    {
        Q8KPairBlock[]? p = t_pairs;
        if (p is null || p.Length < blocks)
            t_pairs = p = GC.AllocateUninitializedArray<Q8KPairBlock>(Math.Max(blocks, 2 * (p?.Length ?? 0)), pinned: true);
        return (Q8KPairBlock*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(p));
    }

    // Two weight rows × four pairs (nb blocks apart in the scratch) over a run of n unpacked blocks.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile2x4<T>(UnpackedSuperBlock* u0, UnpackedSuperBlock* u1, int n, Q8KPairBlock* a, int nb,
        Vector512<float>* accs0, Vector512<float>* accs1) where T : unmanaged, ISuperBlock<T>
    {
        Vector512<float> c00 = accs0[0], c01 = accs0[1], c02 = accs0[2], c03 = accs0[3];
        Vector512<float> c10 = accs1[0], c11 = accs1[1], c12 = accs1[2], c13 = accs1[3];
        Q8KPairBlock* a0 = a, a1 = a + nb, a2 = a + 2 * nb, a3 = a + 3 * nb;
        for (int i = 0; i < n; i++)
        {
            UnpackedSuperBlock* w0 = u0 + i, w1 = u1 + i;
            byte* q0 = w0->Q, q1 = w1->Q;
            short* sc0 = w0->ScalePairs, sc1 = w1->ScalePairs;
            sbyte* v0 = a0[i].Qs, v1 = a1[i].Qs, v2 = a2[i].Qs, v3 = a3[i].Qs;
            // The eight vectors unrolled: constant offsets, no loop counter on the ports the multiplies use.
            Vector512<int> s00, s01, s02, s03, s10, s11, s12, s13;
            s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = Vector512<int>.Zero;
            Step4(q0, q1, sc0, sc1, v0, v1, v2, v3, 0, ref s00, ref s01, ref s02, ref s03, ref s10, ref s11, ref s12, ref s13);
            Step4(q0, q1, sc0, sc1, v0, v1, v2, v3, 1, ref s00, ref s01, ref s02, ref s03, ref s10, ref s11, ref s12, ref s13);
            Step4(q0, q1, sc0, sc1, v0, v1, v2, v3, 2, ref s00, ref s01, ref s02, ref s03, ref s10, ref s11, ref s12, ref s13);
            Step4(q0, q1, sc0, sc1, v0, v1, v2, v3, 3, ref s00, ref s01, ref s02, ref s03, ref s10, ref s11, ref s12, ref s13);
            Step4(q0, q1, sc0, sc1, v0, v1, v2, v3, 4, ref s00, ref s01, ref s02, ref s03, ref s10, ref s11, ref s12, ref s13);
            Step4(q0, q1, sc0, sc1, v0, v1, v2, v3, 5, ref s00, ref s01, ref s02, ref s03, ref s10, ref s11, ref s12, ref s13);
            Step4(q0, q1, sc0, sc1, v0, v1, v2, v3, 6, ref s00, ref s01, ref s02, ref s03, ref s10, ref s11, ref s12, ref s13);
            Step4(q0, q1, sc0, sc1, v0, v1, v2, v3, 7, ref s00, ref s01, ref s02, ref s03, ref s10, ref s11, ref s12, ref s13);
            Vector512<short> mins0 = Both(w0->Mins), mins1 = Both(w1->Mins);
            Vector512<float> d0 = Vector512.Create(w0->D), m0 = Vector512.Create(-w0->M);
            Vector512<float> d1 = Vector512.Create(w1->D), m1 = Vector512.Create(-w1->M);
            c00 = Finish<T>(s00, mins0, d0, m0, a0 + i, c00);
            c01 = Finish<T>(s01, mins0, d0, m0, a1 + i, c01);
            c02 = Finish<T>(s02, mins0, d0, m0, a2 + i, c02);
            c03 = Finish<T>(s03, mins0, d0, m0, a3 + i, c03);
            c10 = Finish<T>(s10, mins1, d1, m1, a0 + i, c10);
            c11 = Finish<T>(s11, mins1, d1, m1, a1 + i, c11);
            c12 = Finish<T>(s12, mins1, d1, m1, a2 + i, c12);
            c13 = Finish<T>(s13, mins1, d1, m1, a3 + i, c13);
        }
        accs0[0] = c00; accs0[1] = c01; accs0[2] = c02; accs0[3] = c03;
        accs1[0] = c10; accs1[1] = c11; accs1[2] = c12; accs1[3] = c13;
    }

    // Vector k of two weight rows against four pairs.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step4(byte* q0, byte* q1, short* sc0, short* sc1, sbyte* v0, sbyte* v1, sbyte* v2, sbyte* v3, int k,
        ref Vector512<int> s00, ref Vector512<int> s01, ref Vector512<int> s02, ref Vector512<int> s03,
        ref Vector512<int> s10, ref Vector512<int> s11, ref Vector512<int> s12, ref Vector512<int> s13)
    {
        var w = new RowPairVector(q0, q1, sc0, sc1, k);
        w.Step(v0 + 64 * k, ref s00, ref s10);
        w.Step(v1 + 64 * k, ref s01, ref s11);
        w.Step(v2 + 64 * k, ref s02, ref s12);
        w.Step(v3 + 64 * k, ref s03, ref s13);
    }

    // Vector k of two weight rows against two pairs.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step2(byte* q0, byte* q1, short* sc0, short* sc1, sbyte* v0, sbyte* v1, int k,
        ref Vector512<int> s00, ref Vector512<int> s01, ref Vector512<int> s10, ref Vector512<int> s11)
    {
        var w = new RowPairVector(q0, q1, sc0, sc1, k);
        w.Step(v0 + 64 * k, ref s00, ref s10);
        w.Step(v1 + 64 * k, ref s01, ref s11);
    }

    // Vector k of two weight rows against one pair.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step1(byte* q0, byte* q1, short* sc0, short* sc1, sbyte* v0, int k, ref Vector512<int> s0, ref Vector512<int> s1) =>
        new RowPairVector(q0, q1, sc0, sc1, k).Step(v0 + 64 * k, ref s0, ref s1);

    // Vector k (levels and scale pairs, in both halves) of two unpacked weight rows.
    [method: MethodImpl(MethodImplOptions.AggressiveInlining)]
    private readonly struct RowPairVector(byte* q0, byte* q1, short* sc0, short* sc1, int k)
    {
        private readonly Vector512<byte> _w0 = Both(q0 + 32 * k), _w1 = Both(q1 + 32 * k);
        private readonly Vector512<short> _scale0 = Both(sc0 + 16 * k), _scale1 = Both(sc1 + 16 * k);

        // Both rows against one pair's vector at a.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Step(sbyte* a, ref Vector512<int> s0, ref Vector512<int> s1)
        {
            Vector512<sbyte> v = Avx512F.LoadVector512(a);
            s0 = ScaledAdd(s0, _w0, v, _scale0);
            s1 = ScaledAdd(s1, _w1, v, _scale1);
        }
    }

    // Two weight rows × two pairs.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile2x2<T>(UnpackedSuperBlock* u0, UnpackedSuperBlock* u1, int n, Q8KPairBlock* a, int nb,
        Vector512<float>* accs0, Vector512<float>* accs1) where T : unmanaged, ISuperBlock<T>
    {
        Vector512<float> c00 = accs0[0], c01 = accs0[1], c10 = accs1[0], c11 = accs1[1];
        Q8KPairBlock* a0 = a, a1 = a + nb;
        for (int i = 0; i < n; i++)
        {
            UnpackedSuperBlock* w0 = u0 + i, w1 = u1 + i;
            byte* q0 = w0->Q, q1 = w1->Q;
            short* sc0 = w0->ScalePairs, sc1 = w1->ScalePairs;
            sbyte* v0 = a0[i].Qs, v1 = a1[i].Qs;
            Vector512<int> s00, s01, s10, s11;
            s00 = s01 = s10 = s11 = Vector512<int>.Zero;
            Step2(q0, q1, sc0, sc1, v0, v1, 0, ref s00, ref s01, ref s10, ref s11);
            Step2(q0, q1, sc0, sc1, v0, v1, 1, ref s00, ref s01, ref s10, ref s11);
            Step2(q0, q1, sc0, sc1, v0, v1, 2, ref s00, ref s01, ref s10, ref s11);
            Step2(q0, q1, sc0, sc1, v0, v1, 3, ref s00, ref s01, ref s10, ref s11);
            Step2(q0, q1, sc0, sc1, v0, v1, 4, ref s00, ref s01, ref s10, ref s11);
            Step2(q0, q1, sc0, sc1, v0, v1, 5, ref s00, ref s01, ref s10, ref s11);
            Step2(q0, q1, sc0, sc1, v0, v1, 6, ref s00, ref s01, ref s10, ref s11);
            Step2(q0, q1, sc0, sc1, v0, v1, 7, ref s00, ref s01, ref s10, ref s11);
            Vector512<short> mins0 = Both(w0->Mins), mins1 = Both(w1->Mins);
            Vector512<float> d0 = Vector512.Create(w0->D), m0 = Vector512.Create(-w0->M);
            Vector512<float> d1 = Vector512.Create(w1->D), m1 = Vector512.Create(-w1->M);
            c00 = Finish<T>(s00, mins0, d0, m0, a0 + i, c00);
            c01 = Finish<T>(s01, mins0, d0, m0, a1 + i, c01);
            c10 = Finish<T>(s10, mins1, d1, m1, a0 + i, c10);
            c11 = Finish<T>(s11, mins1, d1, m1, a1 + i, c11);
        }
        accs0[0] = c00; accs0[1] = c01;
        accs1[0] = c10; accs1[1] = c11;
    }

    // Two weight rows × one pair.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile2x1<T>(UnpackedSuperBlock* u0, UnpackedSuperBlock* u1, int n, Q8KPairBlock* a,
        Vector512<float>* acc0, Vector512<float>* acc1) where T : unmanaged, ISuperBlock<T>
    {
        Vector512<float> c0 = *acc0, c1 = *acc1;
        for (int i = 0; i < n; i++)
        {
            UnpackedSuperBlock* w0 = u0 + i, w1 = u1 + i;
            byte* q0 = w0->Q, q1 = w1->Q;
            short* sc0 = w0->ScalePairs, sc1 = w1->ScalePairs;
            sbyte* v0 = a[i].Qs;
            Vector512<int> s0 = Vector512<int>.Zero, s1 = s0;
            Step1(q0, q1, sc0, sc1, v0, 0, ref s0, ref s1);
            Step1(q0, q1, sc0, sc1, v0, 1, ref s0, ref s1);
            Step1(q0, q1, sc0, sc1, v0, 2, ref s0, ref s1);
            Step1(q0, q1, sc0, sc1, v0, 3, ref s0, ref s1);
            Step1(q0, q1, sc0, sc1, v0, 4, ref s0, ref s1);
            Step1(q0, q1, sc0, sc1, v0, 5, ref s0, ref s1);
            Step1(q0, q1, sc0, sc1, v0, 6, ref s0, ref s1);
            Step1(q0, q1, sc0, sc1, v0, 7, ref s0, ref s1);
            c0 = Finish<T>(s0, Both(w0->Mins), Vector512.Create(w0->D), Vector512.Create(-w0->M), a + i, c0);
            c1 = Finish<T>(s1, Both(w1->Mins), Vector512.Create(w1->D), Vector512.Create(-w1->M), a + i, c1);
        }
        *acc0 = c0;
        *acc1 = c1;
    }

    // 256 bits in both halves. (Avx512DQ's vbroadcasti32x8: the JIT in .NET 10 miscompiles Avx512F's long* overload
    // (vbroadcasti64x4) when it is folded into a loop like the ones above.)
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> Both(byte* p) => Avx512DQ.BroadcastVector256ToVector512((int*)p).AsByte();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> Both(short* p) => Avx512DQ.BroadcastVector256ToVector512((int*)p).AsInt16();

    // acc + scale·(pairwise q·a).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> ScaledAdd(Vector512<int> acc, Vector512<byte> q, Vector512<sbyte> a, Vector512<short> scale) =>
        Avx512F.Add(acc, Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q, a), scale));

    // SuperBlockDot's float steps for two rows: d·dy and (−m)·dy = −(m·dy) per half, then the same fused multiply-adds.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Finish<T>(Vector512<int> lanes, Vector512<short> mins16, Vector512<float> d, Vector512<float> negM,
        Q8KPairBlock* a, Vector512<float> acc) where T : unmanaged, ISuperBlock<T>
    {
        Vector512<int> mins = Avx512BW.MultiplyAddAdjacent(Avx512F.LoadVector512(a->BSums), mins16);
        Vector512<float> dy = Avx512F.LoadVector512(a->D);
        if (T.Offset == SuperBlockOffset.IntegerOffset)
            return Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512F.Subtract(lanes, mins)), Avx512F.Multiply(d, dy), acc);
        acc = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(lanes), Avx512F.Multiply(d, dy), acc);
        return Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(mins), Avx512F.Multiply(negM, dy), acc);
    }
}

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedLM.Kernels.Quants;

/// <summary>How a K-quant block's offset term enters its dot (value = D·scale·q − M·min per 16 values).</summary>
public enum SuperBlockOffset
{
    /// <summary>M is a float scale of its own (Q2_K, Q4_K, Q5_K): the min term is a second fused multiply-add.</summary>
    FloatMins,
    /// <summary>M = D (Q3_K, Q6_K: q is stored with an offset): the min term is subtracted in integers.</summary>
    IntegerOffset,
}

/// <summary>
/// A K-quant super-block (256 values) unpacked for integer dots against Q8_K activations: unsigned levels in element
/// order, one int16 scale and min per 16 values, and the scales repeated per 32-byte vector (maddubs pairs).
/// Unpacking once lets one weight block serve many activation rows.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct UnpackedSuperBlock
{
    /// <summary>Levels, one byte per value (0..63), in element order.</summary>
    public fixed byte Q[KQuants.QK];
    /// <summary>For vector k (values 32k..32k+31): scale 2k in shorts 0-7, scale 2k+1 in shorts 8-15.</summary>
    public fixed short ScalePairs[KQuants.QK / 2];
    /// <summary>Scale of values 16j..16j+15.</summary>
    public fixed short Scales[KQuants.QK / 16];
    /// <summary>Min (offset) of values 16j..16j+15.</summary>
    public fixed short Mins[KQuants.QK / 16];
    public float D, M;
}

/// <summary>A K-quant block type that unpacks to <see cref="UnpackedSuperBlock"/>.</summary>
public unsafe interface ISuperBlock<TSelf> where TSelf : unmanaged, ISuperBlock<TSelf>
{
    static abstract SuperBlockOffset Offset { get; }

    /// <summary>Scalar unpacking (Q, Scales, Mins, D, M; not ScalePairs).</summary>
    static abstract void UnpackReference(TSelf* block, UnpackedSuperBlock* u);

    /// <summary>The same bytes as <see cref="UnpackReference"/>, with AVX2; called only when <see cref="CpuFeatures.Avx2"/>.</summary>
    static abstract void UnpackAvx2(TSelf* block, UnpackedSuperBlock* u);

    /// <summary>
    /// The integer lanes of one block against one Q8_K row straight from the packed block (the single-row path of a
    /// decode step), with the block's per-16 mins, D and M; the same values as unpacking first.
    /// Called only when <see cref="CpuFeatures.Avx2"/>.
    /// </summary>
    static abstract Vector256<int> Lanes(TSelf* block, sbyte* q8, out Vector256<short> mins, out float d, out float m);
}

/// <summary>
/// Dots of K-quant rows with Q8_K activation rows through unpacked super-blocks.
/// <para>
/// Summation order, the same in every path (scalar reference, AVX2, AVX-VNNI, AVX-512): per block, eight exact int32
/// lanes, lane j = Σ over the 8 vectors k and m &lt; 4 of scale(v)·q(v)·a(v) for value v = 32k + 4j + m; the min term per
/// lane j = Σ_{g = 2j, 2j+1} min_g·bsum_g; then acc[j] = fma(lane, D·dy, acc[j]) (and fma(min lane, −M·dy, acc[j]) or
/// the integer difference first); the row's result is ((a0+a4)+(a2+a6))+((a1+a5)+(a3+a7)).
/// A batch of activation rows therefore gives each row exactly what it gets alone.
/// </para>
/// </summary>
[SkipLocalsInit] // the scratch below is written before it is read
internal static unsafe class SuperBlockDot
{
    /// <summary>Dot of a row of <paramref name="nb"/> blocks with one Q8_K activation row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot<T>(T* x, Q8KBlock* y, int nb) where T : unmanaged, ISuperBlock<T>
    {
        if (!CpuFeatures.Avx2)
            return DotReference(x, y, nb);
        var acc = Vector256<float>.Zero;
        for (int i = 0; i < nb; i++)
        {
            KQuants.Prefetch(x + i, sizeof(T));
            Vector256<int> lanes = T.Lanes(x + i, y[i].Qs, out Vector256<short> mins, out float d, out float m);
            acc = Finish<T>(lanes, mins, d, m, y + i, acc);
        }
        return LegacyDot.Combine8(acc);
    }

    /// <summary>Scalar reference of <see cref="Dot{T}"/>: scalar unpacking and integer lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float DotReference<T>(T* x, Q8KBlock* y, int nb) where T : unmanaged, ISuperBlock<T>
    {
        UnpackedSuperBlock u;
        float* acc = stackalloc float[8];
        int* lanes = stackalloc int[8];
        int* mins = stackalloc int[8];
        new Span<float>(acc, 8).Clear();
        for (int i = 0; i < nb; i++)
        {
            T.UnpackReference(x + i, &u);
            LanesReference(&u, y + i, lanes, mins);
            Accumulate<T>(lanes, mins, u.D * y[i].D, u.M * y[i].D, acc);
        }
        return LegacyDot.Combine8(new ReadOnlySpan<float>(acc, 8));
    }

    /// <summary>
    /// Rows × activation rows (see <see cref="IQuantBlock{TSelf}.MultiplyRows"/>): with AVX-512 through
    /// <see cref="SuperBlockPairs512"/>'s register tiles, else one row at a time through <see cref="Many{T}"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MultiplyRows<T>(byte* rows, long rowBytes, int rowCount, int nb, byte* activations, int stride, int count, float* y, int yStride)
        where T : unmanaged, ISuperBlock<T>
    {
        // Fewer than four activation rows: the fused single-row dots, the row staying in L1 between them, beat unpacking it.
        if (count < 4)
        {
            for (int r = 0; r < rowCount; r++)
                for (int b = 0; b < count; b++)
                    y[b * yStride + r] = Dot((T*)(rows + r * rowBytes), (Q8KBlock*)(activations + (nint)b * stride), nb);
            return;
        }
        if (SuperBlockPairs512.Supported)
        {
            SuperBlockPairs512.MultiplyRows<T>(rows, rowBytes, rowCount, nb, activations, stride, count, y, yStride);
            return;
        }
        for (int r = 0; r < rowCount; r++)
            Many((T*)(rows + r * rowBytes), nb, activations, stride, count, y + r, yStride);
    }

    /// <summary>
    /// y[b·yStride] = dot(row, activation row b) for <paramref name="count"/> Q8_K activation rows <paramref name="stride"/>
    /// bytes apart: each run of blocks is unpacked once, then dotted with every activation row.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Many<T>(T* x, int nb, byte* activations, int stride, int count, float* y, int yStride) where T : unmanaged, ISuperBlock<T>
    {
        if (!CpuFeatures.Avx2 || count < 4)
        {
            for (int b = 0; b < count; b++)
                y[b * yStride] = Dot(x, (Q8KBlock*)(activations + b * stride), nb);
            return;
        }
        const int Run = 16, Group = 64; // a run of unpacked blocks (8.8 kB) stays in L1; partial sums of up to 64 rows carry over
        UnpackedSuperBlock* u = stackalloc UnpackedSuperBlock[Run];
        Vector256<float>* accs = stackalloc Vector256<float>[Group];
        for (int first = 0; first < count; first += Group)
        {
            int rows = Math.Min(Group, count - first);
            byte* act = activations + (nint)first * stride;
            for (int b = 0; b < rows; b++)
                accs[b] = Vector256<float>.Zero;
            for (int start = 0; start < nb; start += Run)
            {
                int n = Math.Min(Run, nb - start);
                for (int i = 0; i < n; i++)
                    Unpack(x + start + i, u + i);
                int b = 0;
                // Four activation rows at a time: the weight vectors are loaded once for four independent chains.
                for (; b + 4 <= rows; b += 4)
                {
                    var a0 = (Q8KBlock*)(act + (nint)b * stride) + start;
                    var a1 = (Q8KBlock*)(act + (nint)(b + 1) * stride) + start;
                    var a2 = (Q8KBlock*)(act + (nint)(b + 2) * stride) + start;
                    var a3 = (Q8KBlock*)(act + (nint)(b + 3) * stride) + start;
                    Vector256<float> c0 = accs[b], c1 = accs[b + 1], c2 = accs[b + 2], c3 = accs[b + 3];
                    for (int i = 0; i < n; i++)
                        Block4<T>(u + i, a0 + i, a1 + i, a2 + i, a3 + i, ref c0, ref c1, ref c2, ref c3);
                    accs[b] = c0;
                    accs[b + 1] = c1;
                    accs[b + 2] = c2;
                    accs[b + 3] = c3;
                }
                for (; b < rows; b++)
                {
                    var a = (Q8KBlock*)(act + (nint)b * stride) + start;
                    var acc = accs[b];
                    for (int i = 0; i < n; i++)
                        acc = Finish<T>(u + i, a + i, Lanes(u + i, a[i].Qs), acc);
                    accs[b] = acc;
                }
            }
            for (int b = 0; b < rows; b++)
                y[(first + b) * yStride] = LegacyDot.Combine8(accs[b]);
        }
    }

    /// <summary>Unpacks a block (AVX2) and completes its scale pairs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Unpack<T>(T* x, UnpackedSuperBlock* u) where T : unmanaged, ISuperBlock<T>
    {
        T.UnpackAvx2(x, u);
        FillScalePairs(u);
    }

    /// <summary>An unpacked block's scale pairs from its scales (AVX2).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void FillScalePairs(UnpackedSuperBlock* u)
    {
        // Scale pairs for the maddubs lanes: vector k takes scales 2k and 2k+1, eight shorts each.
        Vector256<short> scales = Avx.LoadVector256(u->Scales);
        Vector256<short> lo = KQuants.EightScales(scales, 0), hi = KQuants.EightScales(scales, 1);
        short* p = u->ScalePairs;
        Avx.Store(p, KQuants.ScalePair(lo, 0));
        Avx.Store(p + 16, KQuants.ScalePair(lo, 1));
        Avx.Store(p + 32, KQuants.ScalePair(lo, 2));
        Avx.Store(p + 48, KQuants.ScalePair(lo, 3));
        Avx.Store(p + 64, KQuants.ScalePair(hi, 0));
        Avx.Store(p + 80, KQuants.ScalePair(hi, 1));
        Avx.Store(p + 96, KQuants.ScalePair(hi, 2));
        Avx.Store(p + 112, KQuants.ScalePair(hi, 3));
    }

    /// <summary><see cref="ISuperBlock{TSelf}.Lanes"/> through an unpacked copy, for types without a fused path.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> LanesViaUnpack<T>(T* x, sbyte* q8, out Vector256<short> mins, out float d, out float m) where T : unmanaged, ISuperBlock<T>
    {
        UnpackedSuperBlock u;
        Unpack(x, &u);
        mins = Avx.LoadVector256(u.Mins);
        d = u.D;
        m = u.M;
        return Lanes(&u, q8);
    }

    // The integer lanes of one block against one activation row. 512-bit maddubs for batches over unpacked blocks (two 256-bit
    // halves folded into the same eight lanes), measured on Zen 5: 132 GOP/s for a Q4_K batch against 121 with AVX2 and 109 with
    // AVX-VNNI's 16-bit multiply-add (its latency lengthens the chains). Single rows use the types' fused 256-bit lanes.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Lanes(UnpackedSuperBlock* u, sbyte* q8) =>
        CpuFeatures.Avx512 ? LanesAvx512(u, q8) : LanesAvx2(u, q8);

    // A block's lanes folded into the eight float lanes of one activation row.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Finish<T>(UnpackedSuperBlock* u, Q8KBlock* a, Vector256<int> lanes, Vector256<float> acc) where T : unmanaged, ISuperBlock<T> =>
        Finish<T>(lanes, Avx.LoadVector256(u->Mins), u->D, u->M, a, acc);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Finish<T>(Vector256<int> lanes, Vector256<short> mins16, float d, float m, Q8KBlock* a, Vector256<float> acc)
        where T : unmanaged, ISuperBlock<T>
    {
        Vector256<int> mins = Avx2.MultiplyAddAdjacent(Avx.LoadVector256(a->BSums), mins16);
        float dy = a->D;
        if (T.Offset == SuperBlockOffset.IntegerOffset)
            return Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.Subtract(lanes, mins)), Vector256.Create(d * dy), acc);
        acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(lanes), Vector256.Create(d * dy), acc);
        return Fma.MultiplyAdd(Avx.ConvertToVector256Single(mins), Vector256.Create(-(m * dy)), acc);
    }

    // One block against four activation rows: each weight and scale vector is loaded once for the four.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Block4<T>(UnpackedSuperBlock* u, Q8KBlock* a0, Q8KBlock* a1, Q8KBlock* a2, Q8KBlock* a3,
        ref Vector256<float> c0, ref Vector256<float> c1, ref Vector256<float> c2, ref Vector256<float> c3) where T : unmanaged, ISuperBlock<T>
    {
        Vector256<int> l0, l1, l2, l3;
        if (CpuFeatures.Avx512)
            Lanes4Avx512(u, a0->Qs, a1->Qs, a2->Qs, a3->Qs, out l0, out l1, out l2, out l3);
        else
            Lanes4Avx2(u, a0->Qs, a1->Qs, a2->Qs, a3->Qs, out l0, out l1, out l2, out l3);
        c0 = Finish<T>(u, a0, l0, c0);
        c1 = Finish<T>(u, a1, l1, c1);
        c2 = Finish<T>(u, a2, l2, c2);
        c3 = Finish<T>(u, a3, l3, c3);
    }

    /// <summary>The lanes of one unpacked block against four activation rows, 512-bit.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Lanes4Avx512(UnpackedSuperBlock* u, sbyte* a0, sbyte* a1, sbyte* a2, sbyte* a3,
        out Vector256<int> l0, out Vector256<int> l1, out Vector256<int> l2, out Vector256<int> l3)
    {
        byte* q = u->Q;
        short* sc = u->ScalePairs;
        Vector512<int> s0 = Vector512<int>.Zero, s1 = s0, s2 = s0, s3 = s0;
        for (int k = 0; k < 4; k++)
        {
            Vector512<byte> w = Avx512F.LoadVector512(q + 64 * k);
            Vector512<short> scale = Avx512F.LoadVector512(sc + 32 * k);
            s0 = Avx512F.Add(s0, Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(w, Avx512F.LoadVector512(a0 + 64 * k)), scale));
            s1 = Avx512F.Add(s1, Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(w, Avx512F.LoadVector512(a1 + 64 * k)), scale));
            s2 = Avx512F.Add(s2, Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(w, Avx512F.LoadVector512(a2 + 64 * k)), scale));
            s3 = Avx512F.Add(s3, Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(w, Avx512F.LoadVector512(a3 + 64 * k)), scale));
        }
        l0 = KQuants.Fold(s0);
        l1 = KQuants.Fold(s1);
        l2 = KQuants.Fold(s2);
        l3 = KQuants.Fold(s3);
    }

    /// <summary>The lanes of one unpacked block against four activation rows, 256-bit.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Lanes4Avx2(UnpackedSuperBlock* u, sbyte* a0, sbyte* a1, sbyte* a2, sbyte* a3,
        out Vector256<int> l0, out Vector256<int> l1, out Vector256<int> l2, out Vector256<int> l3)
    {
        byte* q = u->Q;
        short* sc = u->ScalePairs;
        l0 = l1 = l2 = l3 = Vector256<int>.Zero;
        for (int k = 0; k < 8; k++)
        {
            Vector256<byte> w = Avx.LoadVector256(q + 32 * k);
            Vector256<short> scale = Avx.LoadVector256(sc + 16 * k);
            l0 = ScaledAdd(l0, w, Avx.LoadVector256(a0 + 32 * k), scale);
            l1 = ScaledAdd(l1, w, Avx.LoadVector256(a1 + 32 * k), scale);
            l2 = ScaledAdd(l2, w, Avx.LoadVector256(a2 + 32 * k), scale);
            l3 = ScaledAdd(l3, w, Avx.LoadVector256(a3 + 32 * k), scale);
        }
    }

    // acc + scale·(pairwise w·a).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> ScaledAdd(Vector256<int> acc, Vector256<byte> w, Vector256<sbyte> a, Vector256<short> scale) =>
        Avx2.Add(acc, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(w, a), scale));

    /// <summary>The integer lanes and min lanes of one unpacked block against one activation row, by their definition.</summary>
    public static void LanesReference(UnpackedSuperBlock* u, Q8KBlock* a, int* lanes, int* mins)
    {
        for (int j = 0; j < 8; j++)
        {
            int s = 0;
            for (int k = 0; k < 8; k++)
                for (int m = 0; m < 4; m++)
                {
                    int v = 32 * k + 4 * j + m;
                    s += u->Scales[v / 16] * u->Q[v] * a->Qs[v];
                }
            lanes[j] = s;
            mins[j] = u->Mins[2 * j] * a->BSums[2 * j] + u->Mins[2 * j + 1] * a->BSums[2 * j + 1];
        }
    }

    // The scalar form of Finish's float steps.
    internal static void Accumulate<T>(int* lanes, int* mins, float dd, float md, float* acc) where T : unmanaged, ISuperBlock<T>
    {
        for (int j = 0; j < 8; j++)
        {
            if (T.Offset == SuperBlockOffset.IntegerOffset)
                acc[j] = MathF.FusedMultiplyAdd(lanes[j] - mins[j], dd, acc[j]);
            else
            {
                acc[j] = MathF.FusedMultiplyAdd(lanes[j], dd, acc[j]);
                acc[j] = MathF.FusedMultiplyAdd(mins[j], -md, acc[j]);
            }
        }
    }

    /// <summary>The lanes of one unpacked block against one activation row, 256-bit.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> LanesAvx2(UnpackedSuperBlock* u, sbyte* q8)
    {
        byte* q = u->Q;
        short* sc = u->ScalePairs;
        Vector256<int> s0 = Vector256<int>.Zero, s1 = s0;
        for (int k = 0; k < 8; k += 2)
        {
            s0 = Avx2.Add(s0, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx.LoadVector256(q + 32 * k), Avx.LoadVector256(q8 + 32 * k)), Avx.LoadVector256(sc + 16 * k)));
            s1 = Avx2.Add(s1, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx.LoadVector256(q + 32 * k + 32), Avx.LoadVector256(q8 + 32 * k + 32)), Avx.LoadVector256(sc + 16 * k + 16)));
        }
        return Avx2.Add(s0, s1);
    }

    /// <summary>
    /// The lanes of one unpacked block against one activation row, 512-bit: vector k of 64 values covers 256-bit vectors
    /// 2k (low half) and 2k+1 (high half), so lanes j and j+8 fold into lane j.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> LanesAvx512(UnpackedSuperBlock* u, sbyte* q8)
    {
        byte* q = u->Q;
        short* sc = u->ScalePairs;
        Vector512<int> s0 = Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(Avx512F.LoadVector512(q), Avx512F.LoadVector512(q8)), Avx512F.LoadVector512(sc));
        Vector512<int> s1 = Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(Avx512F.LoadVector512(q + 64), Avx512F.LoadVector512(q8 + 64)), Avx512F.LoadVector512(sc + 32));
        s0 = Avx512F.Add(s0, Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(Avx512F.LoadVector512(q + 128), Avx512F.LoadVector512(q8 + 128)), Avx512F.LoadVector512(sc + 64)));
        s1 = Avx512F.Add(s1, Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(Avx512F.LoadVector512(q + 192), Avx512F.LoadVector512(q8 + 192)), Avx512F.LoadVector512(sc + 96)));
        Vector512<int> s = Avx512F.Add(s0, s1);
        return Avx2.Add(s.GetLower(), s.GetUpper());
    }
}

using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedLM.Kernels.Quants;

/// <summary>
/// Matrix × vector for the signed 32-value blocks against one Q8_0 activation row with AVX-VNNI. The activation's block
/// scales d_a and corrections −o·Σq_a (o the type's offset) are computed once per call; each block's integer sum is then
/// VPDPBUSD of the unsigned quants q_w + o with q_a plus the correction, exactly Σ q_w·q_a, fused with d_w·d_a into partial
/// b mod 8: <see cref="LegacyDot"/>'s order.
/// </summary>
[SkipLocalsInit] // the scratch below is written before it is read
internal static unsafe class SignedBlockVnniDot
{
    private const int Q8_0Bytes = LegacyDot.Q8_0Bytes;

    /// <summary>The most blocks per row the per-call scratch (on the stack) takes.</summary>
    public const int MaxBlocks = 4096;

    /// <summary>True when this path runs: AVX-VNNI, one activation row, rows of at most <see cref="MaxBlocks"/> blocks.</summary>
    public static bool Applies(int count, int nb) => CpuFeatures.AvxVnni && count == 1 && nb <= MaxBlocks;

    /// <summary>y[r] = row r · the activation, for r in [0, rowCount); requires <see cref="CpuFeatures.AvxVnni"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MultiplyRows<T>(byte* rows, long rowBytes, int rowCount, int nb, byte* activation, float* y)
        where T : unmanaged, ISignedQuantBlock<T>
    {
        int padded = (nb + 7) & ~7;
        float* scales = stackalloc float[padded];   // d_a per block, zero past nb
        int* corrections = stackalloc int[padded];  // −o·Σq_a per block, zero past nb
        for (int i = 0; i < padded; i++)
        {
            if (i >= nb)
            {
                scales[i] = 0;
                corrections[i] = 0;
                continue;
            }
            byte* a = activation + i * Q8_0Bytes;
            scales[i] = Float16.ToSingleLookup(Unsafe.ReadUnaligned<ushort>(a));
            Vector256<sbyte> q = Vector256.LoadUnsafe(ref *(sbyte*)(a + 2));
            corrections[i] = -T.Offset * Vector256.Sum(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Vector256<byte>.One, q), Vector256<short>.One));
        }
        float* dw = stackalloc float[8];            // one group's weight scales
        for (int r = 0; r < rowCount; r++)
            y[r] = Row((T*)(rows + r * rowBytes), nb, activation, scales, corrections, dw);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Row<T>(T* w, int nb, byte* activation, float* scales, int* corrections, float* dw) where T : unmanaged, ISignedQuantBlock<T>
    {
        Vector256<float> acc = Vector256<float>.Zero;
        int i = 0;
        for (; i + 8 <= nb; i += 8)
        {
            KQuants.Prefetch(w + i, 8 * sizeof(T));   // rows are back to back: past a row's end is the next row
            acc = Group(w + i, 8, activation + i * Q8_0Bytes, scales + i, corrections + i, dw, acc);
        }
        if (i < nb)
            acc = Group(w + i, nb - i, activation + i * Q8_0Bytes, scales + i, corrections + i, dw, acc);
        return LegacyDot.Combine8(acc);
    }

    /// <summary>Eight blocks (the first <paramref name="m"/>; the rest count as zero) fused into the eight partial sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Group<T>(T* w, int m, byte* a, float* scales, int* corrections, float* dw, Vector256<float> acc)
        where T : unmanaged, ISignedQuantBlock<T>
    {
        Vector256<int> sums = LegacyDot.Reduce8(
            Avx2.HorizontalAdd(
                Avx2.HorizontalAdd(Block(w, a, 0, m, dw), Block(w, a, 1, m, dw)),
                Avx2.HorizontalAdd(Block(w, a, 2, m, dw), Block(w, a, 3, m, dw))),
            Avx2.HorizontalAdd(
                Avx2.HorizontalAdd(Block(w, a, 4, m, dw), Block(w, a, 5, m, dw)),
                Avx2.HorizontalAdd(Block(w, a, 6, m, dw), Block(w, a, 7, m, dw))));
        sums += Avx.LoadVector256(corrections);
        Vector256<float> d = Avx.LoadVector256(dw) * Avx.LoadVector256(scales);
        return Fma.MultiplyAdd(Avx.ConvertToVector256Single(sums), d, acc);
    }

    /// <summary>Block k's eight partial sums Σ (q_w + o)·q_a, and its d_w into dw[k] (zeros when absent).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Block<T>(T* w, byte* a, int k, int m, float* dw) where T : unmanaged, ISignedQuantBlock<T>
    {
        if (k >= m)
        {
            dw[k] = 0;
            return Vector256<int>.Zero;
        }
        dw[k] = T.Scale(in w[k]);
        Vector256<sbyte> x = Avx.LoadVector256((sbyte*)(a + k * Q8_0Bytes + 2));
        return AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, T.UnsignedQuants256(in w[k]), x);
    }
}

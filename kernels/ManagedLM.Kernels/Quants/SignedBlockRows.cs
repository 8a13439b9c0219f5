using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedLM.Kernels.Quants;

/// <summary>
/// Matrix × matrix for the signed 32-value blocks (Q4_0, Q5_0, Q8_0, IQ4_NL) against Q8_0 activation rows, with
/// <see cref="LegacyDot"/>'s summation order, so each activation row gets exactly what <see cref="LegacyDot.Signed{T}"/>
/// gives it alone. With AVX-VNNI, two or more activation rows go to <see cref="SignedBlockPanels"/> and one to
/// <see cref="SignedBlockVnniDot"/>. Without it, a group of eight weight blocks is unpacked once (quants and their magnitudes,
/// the eight scales) and dotted with four activation rows at a time; the activation scales are converted once per call, not
/// once per weight row.
/// </summary>
[SkipLocalsInit] // the scratch below is written before it is read
internal static unsafe class SignedBlockRows
{
    private const int Q8_0Bytes = LegacyDot.Q8_0Bytes;
    private const int ScratchScales = 4096; // activation scales converted per pass (16 kB)

    /// <summary>See <see cref="IQuantBlock{TSelf}.MultiplyRows"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MultiplyRows<T>(byte* rows, long rowBytes, int rowCount, int nb, byte* activations, int stride, int count,
        float* y, int yStride) where T : unmanaged, ISignedQuantBlock<T>
    {
        if (SignedBlockPanels.Applies(count))
            SignedBlockPanels.MultiplyRows<T>(rows, rowBytes, rowCount, nb, activations, stride, count, y, yStride);
        else if (SignedBlockVnniDot.Applies(count, nb))
            SignedBlockVnniDot.MultiplyRows<T>(rows, rowBytes, rowCount, nb, activations, y);
        else
            MultiplyRowsAvx2<T>(rows, rowBytes, rowCount, nb, activations, stride, count, y, yStride);
    }

    /// <summary>The path without AVX-VNNI (maddubs over magnitudes and signs), and the single-row dots.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void MultiplyRowsAvx2<T>(byte* rows, long rowBytes, int rowCount, int nb, byte* activations, int stride, int count,
        float* y, int yStride) where T : unmanaged, ISignedQuantBlock<T>
    {
        // Fewer than four activation rows: the single-row dots, the weight row staying in L1 between them, beat unpacking it.
        if (!CpuFeatures.Avx2 || count < 4 || nb > ScratchScales)
        {
            int activationBytes = nb * Q8_0Bytes;
            for (int r = 0; r < rowCount; r++)
            {
                var row = new ReadOnlySpan<T>(rows + r * rowBytes, nb);
                for (int b = 0; b < count; b++)
                    y[b * yStride + r] = LegacyDot.Signed(row, new ReadOnlySpan<byte>(activations + (nint)b * stride, activationBytes));
            }
            return;
        }
        int chunk = Math.Min(count, Math.Min(64, ScratchScales / nb));
        float* scales = stackalloc float[chunk * nb];           // [chunk × nb] activation block scales
        Vector256<float>* acc = stackalloc Vector256<float>[chunk];
        Group group;
        for (int first = 0; first < count; first += chunk)
        {
            int n = Math.Min(chunk, count - first);
            byte* act = activations + (nint)first * stride;
            for (int b = 0; b < n; b++)
                for (int i = 0; i < nb; i++)
                    scales[b * nb + i] = Float16.ToSingleLookup(Unsafe.ReadUnaligned<ushort>(act + (nint)b * stride + i * Q8_0Bytes));
            for (int r = 0; r < rowCount; r++)
            {
                T* w = (T*)(rows + r * rowBytes);
                for (int b = 0; b < n; b++)
                    acc[b] = Vector256<float>.Zero;
                for (int g = 0; g < nb; g += 8)
                {
                    int m = Math.Min(8, nb - g);
                    Unpack(w + g, m, &group);
                    int b = 0;
                    for (; b + 4 <= n; b += 4)
                    {
                        byte* a0 = act + (nint)b * stride + g * Q8_0Bytes;
                        Sums4(&group, a0, a0 + stride, a0 + 2 * stride, a0 + 3 * stride, m, out var s0, out var s1, out var s2, out var s3);
                        acc[b] = Fold(s0, &group, scales + b * nb + g, m, acc[b]);
                        acc[b + 1] = Fold(s1, &group, scales + (b + 1) * nb + g, m, acc[b + 1]);
                        acc[b + 2] = Fold(s2, &group, scales + (b + 2) * nb + g, m, acc[b + 2]);
                        acc[b + 3] = Fold(s3, &group, scales + (b + 3) * nb + g, m, acc[b + 3]);
                    }
                    for (; b < n; b++)
                        acc[b] = Fold(Sums(&group, act + (nint)b * stride + g * Q8_0Bytes, m), &group, scales + b * nb + g, m, acc[b]);
                }
                for (int b = 0; b < n; b++)
                    y[(first + b) * yStride + r] = LegacyDot.Combine8(acc[b]);
            }
        }
    }

    /// <summary>Eight weight blocks unpacked: quants, their magnitudes, and scales (zero past the last present block).</summary>
    private struct Group
    {
        public Vectors8 Quants, Magnitudes;
        public Vector256<float> Scales;
    }

    [InlineArray(8)]
    private struct Vectors8
    {
        private Vector256<sbyte> _element0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Unpack<T>(T* w, int m, Group* group) where T : unmanaged, ISignedQuantBlock<T>
    {
        float* s = stackalloc float[8];
        for (int k = 0; k < 8; k++)
        {
            Vector256<sbyte> q = k < m ? T.Quants256(in w[k]) : Vector256<sbyte>.Zero;
            group->Quants[k] = q;
            group->Magnitudes[k] = Avx2.Abs(q).AsSByte();
            s[k] = k < m ? T.Scale(in w[k]) : 0f;
        }
        group->Scales = Avx.LoadVector256(s);
    }

    // The eight block sums Σ q_w·q_a of one activation row (zero past the last present block).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Sums(Group* group, byte* a, int m) =>
        LegacyDot.Reduce8(
            Avx2.HorizontalAdd(Avx2.HorizontalAdd(Block(group, a, 0, m), Block(group, a, 1, m)), Avx2.HorizontalAdd(Block(group, a, 2, m), Block(group, a, 3, m))),
            Avx2.HorizontalAdd(Avx2.HorizontalAdd(Block(group, a, 4, m), Block(group, a, 5, m)), Avx2.HorizontalAdd(Block(group, a, 6, m), Block(group, a, 7, m))));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Sums4(Group* group, byte* a0, byte* a1, byte* a2, byte* a3, int m,
        out Vector256<int> s0, out Vector256<int> s1, out Vector256<int> s2, out Vector256<int> s3)
    {
        s0 = Sums(group, a0, m);
        s1 = Sums(group, a1, m);
        s2 = Sums(group, a2, m);
        s3 = Sums(group, a3, m);
    }

    // Block k of the group against the activation's block k: eight int32 partial sums (|w| times a with w's sign).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Block(Group* group, byte* a, int k, int m)
    {
        if (k >= m)
            return Vector256<int>.Zero;
        Vector256<sbyte> y = Avx.LoadVector256((sbyte*)(a + k * Q8_0Bytes + 2));
        Vector256<short> pairs = Avx2.MultiplyAddAdjacent(group->Magnitudes[k].AsByte(), Avx2.Sign(y, group->Quants[k]));
        return Avx2.MultiplyAddAdjacent(pairs, Vector256<short>.One);
    }

    // acc + the block sums times d_w·d_a, lane k for block k (the partial sums of LegacyDot's order).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Fold(Vector256<int> sums, Group* group, float* activationScales, int m, Vector256<float> acc)
    {
        Vector256<float> a = m == 8 ? Avx.LoadVector256(activationScales) : Partial(activationScales, m);
        return Fma.MultiplyAdd(Avx.ConvertToVector256Single(sums), Avx.Multiply(group->Scales, a), acc);
    }

    private static Vector256<float> Partial(float* scales, int m)
    {
        float* s = stackalloc float[8];
        for (int k = 0; k < 8; k++)
            s[k] = k < m ? scales[k] : 0f;
        return Avx.LoadVector256(s);
    }
}

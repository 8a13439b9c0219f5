using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ManagedLM.Kernels;

/// <summary>A 16-bit float format (F16 or BF16): scalar and eight-lane conversions to and from F32.</summary>
internal interface IHalfFormat
{
    static abstract float ToSingle(ushort value);
    static abstract ushort FromSingle(float value);

    /// <summary>Eight values widened to F32.</summary>
    static abstract Vector256<float> Widen(Vector128<ushort> value);

    /// <summary>Sixteen values widened to F32 (used when <see cref="CpuFeatures.Vector512"/>).</summary>
    static abstract Vector512<float> Widen512(Vector256<ushort> value);

    /// <summary>Eight F32 values rounded, each in the low 16 bits of its lane.</summary>
    static abstract Vector256<uint> Narrow(Vector256<float> value);
}

/// <summary>Row conversions and dot products shared by <see cref="Float16"/> and <see cref="BFloat16"/>.</summary>
internal static unsafe class HalfRows
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ToSingle<TFormat>(ReadOnlySpan<ushort> src, Span<float> dst) where TFormat : IHalfFormat
    {
        if (dst.Length < src.Length)
            throw new ArgumentException($"Destination holds {dst.Length} values; {src.Length} needed.", nameof(dst));
        int i = 0, n = src.Length;
        ref ushort s = ref MemoryMarshal.GetReference(src);
        ref float d = ref MemoryMarshal.GetReference(dst);
        if (CpuFeatures.Vector256)
        {
            for (; i + 8 <= n; i += 8)
                TFormat.Widen(Vector128.LoadUnsafe(ref s, (nuint)i)).StoreUnsafe(ref d, (nuint)i);
        }
        for (; i < n; i++)
            Unsafe.Add(ref d, i) = TFormat.ToSingle(Unsafe.Add(ref s, i));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void FromSingle<TFormat>(ReadOnlySpan<float> src, Span<ushort> dst) where TFormat : IHalfFormat
    {
        if (dst.Length < src.Length)
            throw new ArgumentException($"Destination holds {dst.Length} values; {src.Length} needed.", nameof(dst));
        int i = 0, n = src.Length;
        ref float s = ref MemoryMarshal.GetReference(src);
        ref ushort d = ref MemoryMarshal.GetReference(dst);
        if (CpuFeatures.Vector256)
        {
            for (; i + 16 <= n; i += 16)
            {
                var lo = TFormat.Narrow(Vector256.LoadUnsafe(ref s, (nuint)i));
                var hi = TFormat.Narrow(Vector256.LoadUnsafe(ref s, (nuint)i + 8));
                Vector256.Narrow(lo, hi).StoreUnsafe(ref d, (nuint)i);
            }
        }
        for (; i < n; i++)
            Unsafe.Add(ref d, i) = TFormat.FromSingle(Unsafe.Add(ref s, i));
    }

    public static float Dot<TFormat>(ReadOnlySpan<ushort> a, ReadOnlySpan<float> x) where TFormat : IHalfFormat
    {
        if (a.Length != x.Length)
            throw new ArgumentException($"Lengths differ: {a.Length} and {x.Length}.");
        return DotCore<TFormat>(a, x);
    }

    /// <summary>Σ a[i]·x[i]: four 16-lane (else 8-lane) FMA accumulators, an 8-lane loop, then a scalar tail.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float DotCore<TFormat>(ReadOnlySpan<ushort> a, ReadOnlySpan<float> x) where TFormat : IHalfFormat
    {
        int n = a.Length, i = 0;
        ref ushort pa = ref MemoryMarshal.GetReference(a);
        ref float px = ref MemoryMarshal.GetReference(x);
        float sum = 0;
        if (CpuFeatures.Vector256 && n >= 8)
        {
            Vector256<float> s0 = Vector256<float>.Zero, s1 = s0, s2 = s0, s3 = s0;
            if (CpuFeatures.Vector512 && n >= 64)
            {
                Vector512<float> t0 = Vector512<float>.Zero, t1 = t0, t2 = t0, t3 = t0;
                for (; i + 64 <= n; i += 64)
                {
                    Vector512<ushort> h0 = Vector512.LoadUnsafe(ref pa, (nuint)i), h1 = Vector512.LoadUnsafe(ref pa, (nuint)i + 32);
                    t0 = Vector512.FusedMultiplyAdd(TFormat.Widen512(h0.GetLower()), Vector512.LoadUnsafe(ref px, (nuint)i), t0);
                    t1 = Vector512.FusedMultiplyAdd(TFormat.Widen512(h0.GetUpper()), Vector512.LoadUnsafe(ref px, (nuint)i + 16), t1);
                    t2 = Vector512.FusedMultiplyAdd(TFormat.Widen512(h1.GetLower()), Vector512.LoadUnsafe(ref px, (nuint)i + 32), t2);
                    t3 = Vector512.FusedMultiplyAdd(TFormat.Widen512(h1.GetUpper()), Vector512.LoadUnsafe(ref px, (nuint)i + 48), t3);
                }
                Vector512<float> t = (t0 + t1) + (t2 + t3);
                s0 = t.GetLower() + t.GetUpper();
            }
            for (; i + 32 <= n; i += 32)
            {
                Vector256<ushort> h0 = Vector256.LoadUnsafe(ref pa, (nuint)i), h1 = Vector256.LoadUnsafe(ref pa, (nuint)i + 16);
                s0 = Vector256.FusedMultiplyAdd(TFormat.Widen(h0.GetLower()), Vector256.LoadUnsafe(ref px, (nuint)i), s0);
                s1 = Vector256.FusedMultiplyAdd(TFormat.Widen(h0.GetUpper()), Vector256.LoadUnsafe(ref px, (nuint)i + 8), s1);
                s2 = Vector256.FusedMultiplyAdd(TFormat.Widen(h1.GetLower()), Vector256.LoadUnsafe(ref px, (nuint)i + 16), s2);
                s3 = Vector256.FusedMultiplyAdd(TFormat.Widen(h1.GetUpper()), Vector256.LoadUnsafe(ref px, (nuint)i + 24), s3);
            }
            for (; i + 8 <= n; i += 8)
                s0 = Vector256.FusedMultiplyAdd(TFormat.Widen(Vector128.LoadUnsafe(ref pa, (nuint)i)), Vector256.LoadUnsafe(ref px, (nuint)i), s0);
            sum = Vector256.Sum((s0 + s1) + (s2 + s3));
        }
        for (; i < n; i++)
            sum = MathF.FusedMultiplyAdd(TFormat.ToSingle(Unsafe.Add(ref pa, i)), Unsafe.Add(ref px, i), sum);
        return sum;
    }

    /// <summary>Scalar reference for <c>DotCore</c> (F16·F32), accumulated in double.</summary>
    public static float DotReference<TFormat>(ReadOnlySpan<ushort> a, ReadOnlySpan<float> x) where TFormat : IHalfFormat
    {
        double sum = 0;
        for (int i = 0; i < a.Length; i++)
            sum += (double)TFormat.ToSingle(a[i]) * x[i];
        return (float)sum;
    }

    /// <summary>
    /// Σ a[i]·x[i] with both operands 16-bit, as ggml's F16·F16 (BF16·BF16) dot: each product is exact
    /// in F32, sums in four 8-lane FMA accumulators, then a scalar tail.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float DotCore<TFormat>(ReadOnlySpan<ushort> a, ReadOnlySpan<ushort> x) where TFormat : IHalfFormat
    {
        int n = a.Length, i = 0;
        ref ushort pa = ref MemoryMarshal.GetReference(a);
        ref ushort px = ref MemoryMarshal.GetReference(x);
        float sum = 0;
        if (CpuFeatures.Vector256 && n >= 8)
        {
            Vector256<float> s0 = Vector256<float>.Zero, s1 = s0, s2 = s0, s3 = s0;
            for (; i + 32 <= n; i += 32)
            {
                Vector256<ushort> a0 = Vector256.LoadUnsafe(ref pa, (nuint)i), a1 = Vector256.LoadUnsafe(ref pa, (nuint)i + 16);
                Vector256<ushort> x0 = Vector256.LoadUnsafe(ref px, (nuint)i), x1 = Vector256.LoadUnsafe(ref px, (nuint)i + 16);
                s0 = Vector256.FusedMultiplyAdd(TFormat.Widen(a0.GetLower()), TFormat.Widen(x0.GetLower()), s0);
                s1 = Vector256.FusedMultiplyAdd(TFormat.Widen(a0.GetUpper()), TFormat.Widen(x0.GetUpper()), s1);
                s2 = Vector256.FusedMultiplyAdd(TFormat.Widen(a1.GetLower()), TFormat.Widen(x1.GetLower()), s2);
                s3 = Vector256.FusedMultiplyAdd(TFormat.Widen(a1.GetUpper()), TFormat.Widen(x1.GetUpper()), s3);
            }
            for (; i + 8 <= n; i += 8)
                s0 = Vector256.FusedMultiplyAdd(TFormat.Widen(Vector128.LoadUnsafe(ref pa, (nuint)i)), TFormat.Widen(Vector128.LoadUnsafe(ref px, (nuint)i)), s0);
            sum = Vector256.Sum((s0 + s1) + (s2 + s3));
        }
        for (; i < n; i++)
            sum = MathF.FusedMultiplyAdd(TFormat.ToSingle(Unsafe.Add(ref pa, i)), TFormat.ToSingle(Unsafe.Add(ref px, i)), sum);
        return sum;
    }

    /// <summary>
    /// y[b·yStride + r] = dot(row r, activation row b) for rows of <paramref name="cols"/> 16-bit values <paramref name="rowBytes"/>
    /// apart; the activation rows are in the same 16-bit format (ggml's vec_dot_type for F16 and BF16 weights).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MultiplyRows<TFormat>(byte* rows, long rowBytes, int rowCount, int cols, byte* activations, int stride, int count,
        float* y, int yStride) where TFormat : IHalfFormat
    {
        if (CpuFeatures.Vector512 && cols % 32 == 0 && count >= TileActivations && rowCount >= TileRows)
        {
            MultiplyTiles<TFormat>(rows, rowBytes, rowCount, cols, activations, stride, count, y, yStride);
            return;
        }
        for (int r = 0; r < rowCount; r++, rows += rowBytes)
        {
            var w = new ReadOnlySpan<ushort>(rows, cols);
            for (int b = 0; b < count; b++)
                y[b * yStride + r] = DotCore<TFormat>(w, new ReadOnlySpan<ushort>(activations + (nint)b * stride, cols));
        }
    }

    private const int TileRows = 2, TileActivations = 4;

    // Activation rows per block: widened to F32 once, then multiplied by every weight row (each widened once per block).
    private const int ActivationBlock = 64;

    /// <summary>
    /// <see cref="MultiplyRows"/> for many activation rows (a prompt, an encoder's pass): blocks of activation rows are
    /// widened to F32 once, then multiplied by pairs of weight rows (widened once per block) in tiles of 2 weight rows × 4
    /// activation rows, whose 8 dot products share each load. Each dot is <see cref="DotCore{TFormat}(ReadOnlySpan{ushort}, ReadOnlySpan{ushort})"/> bit
    /// for bit (widening is exact; its accumulators s0|s1 and s2|s3 are the halves of two 16-lane vectors: the same lanes,
    /// the same fused multiply-adds in the same order, summed as it sums them), so a row's result does not depend on the
    /// batch. Needs <see cref="CpuFeatures.Vector512"/> and a multiple of 32 columns.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MultiplyTiles<TFormat>(byte* rows, long rowBytes, int rowCount, int cols, byte* activations, int stride, int count,
        float* y, int yStride) where TFormat : IHalfFormat
    {
        float[] widened = System.Buffers.ArrayPool<float>.Shared.Rent((ActivationBlock + TileRows) * cols);
        try
        {
            fixed (float* xs = widened)
            {
                float* ws = xs + ActivationBlock * cols;
                for (int b0 = 0; b0 < count; b0 += ActivationBlock)
                {
                    int n = Math.Min(count - b0, ActivationBlock), quads = n / TileActivations * TileActivations, r = 0;
                    for (int b = 0; b < quads; b++)
                        ToSingle<TFormat>(new ReadOnlySpan<ushort>(activations + (nint)(b0 + b) * stride, cols), new Span<float>(xs + (nint)b * cols, cols));
                    for (; r + TileRows <= rowCount; r += TileRows)
                    {
                        if (quads == 0)
                            break;
                        ToSingle<TFormat>(new ReadOnlySpan<ushort>(rows + r * rowBytes, cols), new Span<float>(ws, cols));
                        ToSingle<TFormat>(new ReadOnlySpan<ushort>(rows + (r + 1) * rowBytes, cols), new Span<float>(ws + cols, cols));
                        for (int b = 0; b < quads; b += TileActivations)
                            Tile(ws, ws + cols, xs + (nint)b * cols, cols, y + (nint)(b0 + b) * yStride + r, yStride);
                    }
                    for (; r < rowCount; r++)
                    {
                        var w = new ReadOnlySpan<ushort>(rows + r * rowBytes, cols);
                        for (int b = 0; b < quads; b++)
                            y[(nint)(b0 + b) * yStride + r] = DotCore<TFormat>(w, new ReadOnlySpan<ushort>(activations + (nint)(b0 + b) * stride, cols));
                    }
                    // The block's last rows, fewer than a tile.
                    for (int b = quads; b < n; b++)
                    {
                        var x = new ReadOnlySpan<ushort>(activations + (nint)(b0 + b) * stride, cols);
                        for (int i = 0; i < rowCount; i++)
                            y[(nint)(b0 + b) * yStride + i] = DotCore<TFormat>(new ReadOnlySpan<ushort>(rows + i * rowBytes, cols), x);
                    }
                }
            }
        }
        finally
        {
            System.Buffers.ArrayPool<float>.Shared.Return(widened);
        }
    }

    // The 8 dot products of widened weight rows w0, w1 with the widened activation rows x, x + cols, x + 2·cols, x + 3·cols
    // into y[k·yStride + j].
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile(float* w0, float* w1, float* x, int cols, float* y, int yStride)
    {
        float* x0 = x, x1 = x + cols, x2 = x + 2 * cols, x3 = x + 3 * cols;
        Vector512<float> l00 = Vector512<float>.Zero, h00 = l00, l01 = l00, h01 = l00, l02 = l00, h02 = l00, l03 = l00, h03 = l00;
        Vector512<float> l10 = l00, h10 = l00, l11 = l00, h11 = l00, l12 = l00, h12 = l00, l13 = l00, h13 = l00;
        for (int i = 0; i < cols; i += 32)
        {
            Vector512<float> a0 = Vector512.Load(w0 + i), b0 = Vector512.Load(w0 + i + 16);
            Vector512<float> a1 = Vector512.Load(w1 + i), b1 = Vector512.Load(w1 + i + 16);
            Vector512<float> lo = Vector512.Load(x0 + i), hi = Vector512.Load(x0 + i + 16);
            l00 = Vector512.FusedMultiplyAdd(a0, lo, l00);
            h00 = Vector512.FusedMultiplyAdd(b0, hi, h00);
            l10 = Vector512.FusedMultiplyAdd(a1, lo, l10);
            h10 = Vector512.FusedMultiplyAdd(b1, hi, h10);
            lo = Vector512.Load(x1 + i);
            hi = Vector512.Load(x1 + i + 16);
            l01 = Vector512.FusedMultiplyAdd(a0, lo, l01);
            h01 = Vector512.FusedMultiplyAdd(b0, hi, h01);
            l11 = Vector512.FusedMultiplyAdd(a1, lo, l11);
            h11 = Vector512.FusedMultiplyAdd(b1, hi, h11);
            lo = Vector512.Load(x2 + i);
            hi = Vector512.Load(x2 + i + 16);
            l02 = Vector512.FusedMultiplyAdd(a0, lo, l02);
            h02 = Vector512.FusedMultiplyAdd(b0, hi, h02);
            l12 = Vector512.FusedMultiplyAdd(a1, lo, l12);
            h12 = Vector512.FusedMultiplyAdd(b1, hi, h12);
            lo = Vector512.Load(x3 + i);
            hi = Vector512.Load(x3 + i + 16);
            l03 = Vector512.FusedMultiplyAdd(a0, lo, l03);
            h03 = Vector512.FusedMultiplyAdd(b0, hi, h03);
            l13 = Vector512.FusedMultiplyAdd(a1, lo, l13);
            h13 = Vector512.FusedMultiplyAdd(b1, hi, h13);
        }
        y[0] = Sum(l00, h00);
        y[1] = Sum(l10, h10);
        y[yStride] = Sum(l01, h01);
        y[yStride + 1] = Sum(l11, h11);
        y[2 * yStride] = Sum(l02, h02);
        y[2 * yStride + 1] = Sum(l12, h12);
        y[3 * yStride] = Sum(l03, h03);
        y[3 * yStride + 1] = Sum(l13, h13);
    }

    // DotCore's final sum of s0|s1 (lo) and s2|s3 (hi): Vector256.Sum((s0 + s1) + (s2 + s3)).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Sum(Vector512<float> lo, Vector512<float> hi) => Vector256.Sum((lo.GetLower() + lo.GetUpper()) + (hi.GetLower() + hi.GetUpper()));

    /// <summary>dst.Length values widened from the bytes of <paramref name="src"/>.</summary>
    public static void Dequantize<TFormat>(ReadOnlySpan<byte> src, Span<float> dst) where TFormat : IHalfFormat =>
        ToSingle<TFormat>(MemoryMarshal.Cast<byte, ushort>(src)[..dst.Length], dst);

    /// <summary>src rounded into the first bytes of <paramref name="dst"/>.</summary>
    public static void Quantize<TFormat>(ReadOnlySpan<float> src, Span<byte> dst) where TFormat : IHalfFormat =>
        FromSingle<TFormat>(src, MemoryMarshal.Cast<byte, ushort>(dst)[..src.Length]);
}

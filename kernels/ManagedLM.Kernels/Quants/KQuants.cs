using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedLM.Kernels.Quants;

/// <summary>
/// Shared pieces of the K-quant block types: ggml's rounding and scale-search helpers
/// (<c>nearest_int</c>, <c>make_qx_quants</c>, <c>make_q3_quants</c>, <c>make_qkx2_quants</c>), ported with
/// the same float operations in the same order so quantized bytes match ggml's reference quantizers,
/// and the AVX2 pieces the dot products share.
/// </summary>
internal static class KQuants
{
    public const int QK = GgmlTypes.QK_K;

    /// <summary>ggml's GROUP_MAX_EPS: groups whose largest |x| is below it quantize to zero.</summary>
    public const float GroupMaxEps = 1e-15f;

    /// <summary>ggml's <c>nearest_int</c>: round half to even through the 1.5·2²³ magic add (exact for |x| ≤ 4194303).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int NearestInt(float x)
    {
        float v = x + 12582912f;
        return (BitConverter.SingleToInt32Bits(v) & 0x007fffff) - 0x00400000;
    }

    /// <summary>Dot of a weight row with Q8_K activation bytes by the AVX2 path where available, else the scalar reference.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe float Dot<T>(ReadOnlySpan<T> blocks, ReadOnlySpan<byte> activation,
        delegate*<T*, Q8KBlock*, int, float> avx2, delegate*<T*, Q8KBlock*, int, float> reference) where T : unmanaged
    {
        var y = MemoryMarshal.Cast<byte, Q8KBlock>(activation)[..blocks.Length];
        fixed (T* px = blocks)
        fixed (Q8KBlock* py = y)
            return CpuFeatures.Avx2 ? avx2(px, py, blocks.Length) : reference(px, py, blocks.Length);
    }

    /// <summary>
    /// How far ahead of the block being dotted a single-row (decode) dot asks for weight bytes. The matrix rows follow each
    /// other in memory, so this runs into the next rows. Measured on Zen 5 over a TinyLlama-shape Q4_K_M model's matmuls:
    /// 25 GB/s without, 22 at 512 bytes, 26 at 4 kB, 29 at 8 kB, 29 at 16 kB.
    /// </summary>
    public const int PrefetchDistance = 8192;

    /// <summary>Prefetches the cache lines of the block <see cref="PrefetchDistance"/> bytes past <paramref name="block"/> (a hint: never faults).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Prefetch(void* block, int blockBytes)
    {
        byte* p = (byte*)block + PrefetchDistance;
        for (int line = 0; line < blockBytes; line += 64)
            Sse.Prefetch0(p + line);
    }

    /// <summary>The Q4_K/Q5_K 12 scale bytes as per-16-value scales and mins (each sub-block's twice), vector form.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void ScalesAndMins(byte* packed, out Vector256<short> scales, out Vector256<short> mins)
    {
        UnpackScaleMinK4(packed, out uint s03, out uint s47, out uint m03, out uint m47);
        scales = PerSubBlock(s03, s47);
        mins = PerSubBlock(m03, m47);
    }

    /// <summary>The scalar form of <see cref="ScalesAndMins"/>, into an unpacked block.</summary>
    public static unsafe void ScalesAndMinsReference(byte* packed, UnpackedSuperBlock* u)
    {
        for (int j = 0; j < 8; j++)
        {
            GetScaleMinK4(j, packed, out byte sc, out byte m);
            u->Scales[2 * j] = u->Scales[2 * j + 1] = sc;
            u->Mins[2 * j] = u->Mins[2 * j + 1] = m;
        }
    }

    /// <summary>Eight bytes (of two uints) as 16 shorts, each twice: per 16 values, the value of their 32-value sub-block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> PerSubBlock(uint bytes03, uint bytes47)
    {
        Vector128<byte> b = Vector128.CreateScalar(bytes03 | ((ulong)bytes47 << 32)).AsByte();
        Vector128<byte> twice = Ssse3.Shuffle(b, Vector128.Create((byte)0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7));
        return Avx2.ConvertToVector256Int16(twice);
    }

    /// <summary>The 16 int32 lanes of 512-bit dots folded into the eight lanes of the 256-bit order (lane j + lane j+8).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Fold(Vector512<int> lanes) => Avx2.Add(lanes.GetLower(), lanes.GetUpper());

    /// <summary>One block's contribution to a dot: (d·dy)·isum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float BlockDot(ushort d, float dy, int isum) => Float16.ToSingle(d) * dy * isum;

    /// <summary>Throws unless <paramref name="values"/> fill <paramref name="blocks"/> blocks of <paramref name="type"/> exactly.</summary>
    public static void CheckQuantizeLengths(GgmlType type, int values, int blocks)
    {
        if (values != blocks * QK)
            throw new ArgumentException($"{blocks} {type} blocks hold {blocks * QK} values; got {values}.", "src");
    }

    /// <summary>Throws unless <paramref name="outputs"/> can hold <paramref name="blocks"/> dequantized blocks.</summary>
    public static void CheckDequantizeLengths(int blocks, int outputs)
    {
        if (outputs < blocks * QK)
            throw new ArgumentException($"{blocks} blocks need {blocks * QK} outputs; got {outputs}.", "dst");
    }

    /// <summary>The value of largest magnitude (the first one on ties, with its sign), as ggml's scans find it.</summary>
    public static float MaxByMagnitude(ReadOnlySpan<float> x, out float amax)
    {
        float max = 0;
        amax = 0;
        for (int i = 0; i < x.Length; i++)
        {
            float ax = MathF.Abs(x[i]);
            if (ax > amax) { amax = ax; max = x[i]; }
        }
        return max;
    }

    /// <summary>
    /// Levels l = clamp(nearest(iscale·x), −nmax, nmax−1), stored as l + <paramref name="offset"/> unless
    /// <paramref name="levels"/> is empty, and the x²-weighted sums Σ w·x·l and Σ w·l² of ggml's symmetric fits.
    /// </summary>
    private static void SymmetricLevels(ReadOnlySpan<float> x, float iscale, int nmax, Span<sbyte> levels, int offset, out float sumlx, out float suml2)
    {
        sumlx = suml2 = 0;
        for (int i = 0; i < x.Length; i++)
        {
            int l = Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
            if (!levels.IsEmpty)
                levels[i] = (sbyte)(l + offset);
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
    }

    /// <summary>
    /// ggml's <c>make_qx_quants</c> with <c>rmse_type</c> 1 and no importance weights (w = x²): a symmetric scale
    /// for levels [-nmax, nmax-1], refined over 18 trial scales. <paramref name="levels"/> gets l + nmax.
    /// </summary>
    public static float MakeQxQuants(int nmax, ReadOnlySpan<float> x, Span<sbyte> levels)
    {
        int n = x.Length;
        float max = MaxByMagnitude(x, out float amax);
        if (amax < GroupMaxEps)
        {
            levels[..n].Clear();
            return 0f;
        }
        float iscale = -nmax / max;
        SymmetricLevels(x, iscale, nmax, levels, nmax, out float sumlx, out float suml2);
        float scale = suml2 != 0 ? sumlx / suml2 : 0f;
        float best = scale * sumlx;
        for (int step = -9; step <= 9; step++)
        {
            if (step == 0)
                continue;
            iscale = -(nmax + 0.1f * step) / max;
            SymmetricLevels(x, iscale, nmax, [], nmax, out sumlx, out suml2);
            if (suml2 > 0 && sumlx * sumlx > best * suml2)
            {
                SymmetricLevels(x, iscale, nmax, levels, nmax, out _, out _);
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }

    /// <summary>
    /// ggml's <c>make_q3_quants</c> with <c>do_rmse</c>: levels [-nmax, nmax-1] improved one element at a time
    /// (up to 5 passes) under the x²-weighted error. <paramref name="levels"/> gets l + nmax.
    /// </summary>
    public static float MakeQ3Quants(int nmax, ReadOnlySpan<float> x, Span<sbyte> levels)
    {
        int n = x.Length;
        float max = MaxByMagnitude(x, out float amax);
        if (amax < GroupMaxEps)
        {
            levels[..n].Clear();
            return 0f;
        }
        SymmetricLevels(x, -nmax / max, nmax, levels, 0, out float sumlx, out float suml2);
        for (int pass = 0; pass < 5; pass++)
        {
            int changed = 0;
            for (int i = 0; i < n; i++)
            {
                float w = x[i] * x[i];
                float slx = sumlx - w * x[i] * levels[i];
                if (slx > 0)
                {
                    float sl2 = suml2 - w * levels[i] * levels[i];
                    int newL = Math.Clamp(NearestInt(x[i] * sl2 / slx), -nmax, nmax - 1);
                    if (newL != levels[i])
                    {
                        slx += w * x[i] * newL;
                        sl2 += w * newL * newL;
                        if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2)
                        {
                            levels[i] = (sbyte)newL;
                            sumlx = slx;
                            suml2 = sl2;
                            changed++;
                        }
                    }
                }
            }
            if (changed == 0)
                break;
        }
        for (int i = 0; i < n; i++)
            levels[i] += (sbyte)nmax;
        return suml2 > 0f ? sumlx / suml2 : 0f;
    }

    /// <summary>
    /// ggml's <c>make_qkx2_quants</c>: scale and min for levels [0, nmax] minimizing the weighted squared
    /// (or absolute, <paramref name="useMad"/>) error over nstep+1 trial scales. Returns the scale;
    /// <paramref name="theMin"/> gets the (non-negative) amount subtracted.
    /// </summary>
    public static float MakeQkx2Quants(int nmax, ReadOnlySpan<float> x, ReadOnlySpan<float> weights, Span<byte> levels, out float theMin,
        Span<byte> levelsAux, float rmin, float rdelta, int nstep, bool useMad)
    {
        int n = x.Length;
        float min = x[0], max = x[0];
        float sumW = weights[0];
        float sumX = sumW * x[0];
        for (int i = 1; i < n; i++)
        {
            if (x[i] < min) min = x[i];
            if (x[i] > max) max = x[i];
            float w = weights[i];
            sumW += w;
            sumX += w * x[i];
        }
        if (min > 0)
            min = 0;
        if (max == min)
        {
            levels[..n].Clear();
            theMin = -min;
            return 0f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < n; i++)
        {
            int l = NearestInt(iscale * (x[i] - min));
            levels[i] = (byte)Math.Clamp(l, 0, nmax);
            float diff = scale * levels[i] + min - x[i];
            diff = useMad ? MathF.Abs(diff) : diff * diff;
            bestError += weights[i] * diff;
        }
        if (nstep < 1)
        {
            theMin = -min;
            return scale;
        }
        for (int step = 0; step <= nstep; step++)
        {
            iscale = (rmin + rdelta * step + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (int i = 0; i < n; i++)
            {
                int l = Math.Clamp(NearestInt(iscale * (x[i] - min)), 0, nmax);
                levelsAux[i] = (byte)l;
                float w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXL += w * l * x[i];
            }
            float det = sumW * sumL2 - sumL * sumL;
            if (det > 0)
            {
                float thisScale = (sumW * sumXL - sumX * sumL) / det;
                float thisMin = (sumL2 * sumX - sumL * sumXL) / det;
                if (thisMin > 0)
                {
                    thisMin = 0;
                    thisScale = sumXL / sumL2;
                }
                float error = 0;
                for (int i = 0; i < n; i++)
                {
                    float diff = thisScale * levelsAux[i] + thisMin - x[i];
                    diff = useMad ? MathF.Abs(diff) : diff * diff;
                    error += weights[i] * diff;
                }
                if (error < bestError)
                {
                    levelsAux[..n].CopyTo(levels);
                    bestError = error;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin = -min;
        return scale;
    }

    /// <summary>ggml's <c>get_scale_min_k4</c>: the 6-bit scale and min of sub-block j from the 12 packed bytes of Q4_K/Q5_K.</summary>
    public static unsafe void GetScaleMinK4(int j, byte* q, out byte scale, out byte min)
    {
        if (j < 4)
        {
            scale = (byte)(q[j] & 63);
            min = (byte)(q[j + 4] & 63);
        }
        else
        {
            scale = (byte)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
            min = (byte)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
        }
    }

    /// <summary>Packs 6-bit scale and min of sub-block j into the 12 scale bytes of Q4_K/Q5_K (inverse of <see cref="GetScaleMinK4"/>).</summary>
    public static unsafe void SetScaleMinK4(int j, byte* q, byte scale, byte min)
    {
        if (j < 4)
        {
            q[j] = scale;
            q[j + 4] = min;
        }
        else
        {
            q[j + 4] = (byte)((scale & 0xF) | ((min & 0xF) << 4));
            q[j - 4] |= (byte)((scale >> 4) << 6);
            q[j] |= (byte)((min >> 4) << 6);
        }
    }

    /// <summary>
    /// ggml's Q4_K/Q5_K reference quantizer for one super-block, up to the bit packing: per 32-value sub-block,
    /// weights av_x + |x| (av_x = rms of the sub-block) and <see cref="MakeQkx2Quants"/>; then 6-bit scales and
    /// mins relative to their maxima packed into <paramref name="packed"/> (12 bytes), the fp16 super-block
    /// scales, and every value re-quantized against the rounded scales into <paramref name="levels"/> (levels of a
    /// sub-block whose scale rounds to 0 are kept).
    /// </summary>
    public static unsafe void QuantizeScaleMinSuperBlock(ReadOnlySpan<float> x, int nmax, float rmin, float rdelta, int nstep,
        byte* packed, out ushort d, out ushort dmin, Span<byte> levels)
    {
        Span<byte> aux = stackalloc byte[32];
        Span<float> weights = stackalloc float[32];
        Span<float> scales = stackalloc float[QK / 32];
        Span<float> mins = stackalloc float[QK / 32];
        float maxScale = 0, maxMin = 0;
        for (int j = 0; j < QK / 32; j++)
        {
            ReadOnlySpan<float> xb = x.Slice(32 * j, 32);
            float sumX2 = 0;
            for (int l = 0; l < 32; l++)
                sumX2 += xb[l] * xb[l];
            float avX = MathF.Sqrt(sumX2 / 32);
            for (int l = 0; l < 32; l++)
                weights[l] = avX + MathF.Abs(xb[l]);
            scales[j] = MakeQkx2Quants(nmax, xb, weights, levels.Slice(32 * j, 32), out mins[j], aux, rmin, rdelta, nstep, useMad: false);
            if (scales[j] > maxScale) maxScale = scales[j];
            if (mins[j] > maxMin) maxMin = mins[j];
        }
        float invScale = maxScale > 0 ? 63f / maxScale : 0f;
        float invMin = maxMin > 0 ? 63f / maxMin : 0f;
        for (int j = 0; j < QK / 32; j++)
        {
            byte ls = Math.Min((byte)63, (byte)NearestInt(invScale * scales[j]));
            byte lm = Math.Min((byte)63, (byte)NearestInt(invMin * mins[j]));
            SetScaleMinK4(j, packed, ls, lm);
        }
        d = Float16.FromSingle(maxScale / 63f);
        dmin = Float16.FromSingle(maxMin / 63f);
        float df = Float16.ToSingle(d), dminf = Float16.ToSingle(dmin);
        for (int j = 0; j < QK / 32; j++)
        {
            GetScaleMinK4(j, packed, out byte sc, out byte m);
            float dl = df * sc;
            if (dl == 0)
                continue;
            float ml = dminf * m;
            for (int l = 32 * j; l < 32 * j + 32; l++)
                levels[l] = (byte)Math.Clamp(NearestInt((x[l] + ml) / dl), 0, nmax);
        }
    }

    /// <summary>
    /// The Q4_K/Q5_K 12 scale bytes unpacked to one byte per scale and min (the same as <see cref="GetScaleMinK4"/>):
    /// scales 0-3 and 4-7, then mins 0-3 and 4-7, as the bytes of four uints.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void UnpackScaleMinK4(byte* packed, out uint scales03, out uint scales47, out uint mins03, out uint mins47)
    {
        const uint Low6 = 0x3f3f3f3f, Low4 = 0x0f0f0f0f, Low2 = 0x03030303;
        uint a0 = Unsafe.ReadUnaligned<uint>(packed);
        uint a1 = Unsafe.ReadUnaligned<uint>(packed + 4);
        uint a2 = Unsafe.ReadUnaligned<uint>(packed + 8);
        scales03 = a0 & Low6;
        scales47 = (a2 & Low4) | (((a0 >> 6) & Low2) << 4);
        mins03 = a1 & Low6;
        mins47 = ((a2 >> 4) & Low4) | (((a1 >> 6) & Low2) << 4);
    }

    /// <summary>Packs 256 2-bit levels as Q2_K/Q3_K do: value 128c + 32s + t into bits 2s..2s+1 of byte 32c + t.</summary>
    public static unsafe void Pack2Bit(ReadOnlySpan<byte> levels, byte* qs)
    {
        for (int j = 0; j < QK; j += 128)
            for (int l = 0; l < 32; l++)
                qs[j / 4 + l] = (byte)(levels[j + l] | (levels[j + l + 32] << 2) | (levels[j + l + 64] << 4) | (levels[j + l + 96] << 6));
    }

    /// <summary>Σ of the 8 int32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int HorizontalSum(Vector256<int> v)
    {
        Vector128<int> s = Sse2.Add(v.GetLower(), v.GetUpper());
        s = Sse2.Add(s, Sse2.Shuffle(s, 0b_01_00_11_10));
        s = Sse2.Add(s, Sse2.Shuffle(s, 0b_10_11_00_01));
        return s.ToScalar();
    }

    /// <summary>Σ over 32 bytes of (unsigned a) × (signed b), pairwise to int16 then to 8 int32 lanes, each pair-sum scaled by <paramref name="scales"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> ScaledDot(Vector256<byte> a, Vector256<sbyte> b, Vector256<short> scales) =>
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a, b), scales);

    /// <summary>
    /// Scales of the two 16-value groups of a 32-byte maddubs: lanes 0-7 scale 2k, lanes 8-15 scale 2k+1, picked
    /// (k = 0..3) from <paramref name="eightScales"/>, 8 int16 scales repeated in both 128-bit halves.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> ScalePair(Vector256<short> eightScales, [ConstantExpected(Min = 0, Max = 3)] int k)
    {
        Vector256<byte> pick = Vector256.Create(
            Vector128.Create((ushort)((4 * k) | ((4 * k + 1) << 8))).AsByte(),
            Vector128.Create((ushort)((4 * k + 2) | ((4 * k + 3) << 8))).AsByte());
        return Avx2.Shuffle(eightScales.AsByte(), pick).AsInt16();
    }

    /// <summary>Scales 8h..8h+7 of 16 int16 scales, repeated in both 128-bit halves (the argument of <see cref="ScalePair"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> EightScales(Vector256<short> sixteenScales, [ConstantExpected(Min = 0, Max = 1)] int h) =>
        h == 0 ? Avx2.Permute2x128(sixteenScales, sixteenScales, 0x00) : Avx2.Permute2x128(sixteenScales, sixteenScales, 0x11);
}

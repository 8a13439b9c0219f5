using System.Runtime.InteropServices;
using FsCheck;
using FsCheck.Fluent;
using ManagedLM.Kernels;
using ManagedLM.Kernels.Quants;
using Microsoft.FSharp.Core;

namespace ManagedLM.Tests.Kernels;

/// <summary>
/// Property tests every K-quant block type passes: quantize→dequantize error bounds, AVX2 dot bit-identical
/// to the scalar reference, and Dot against a Q8_K activation equal to the dot of the dequantized rows.
/// Properties run from a fixed FsCheck seed so the suite is deterministic.
/// </summary>
public abstract unsafe class KQuantBlockTests<T> where T : unmanaged, IQuantizableBlock<T>
{
    /// <summary>Byte offsets of the block's fp16 fields, set to finite values in random raw blocks.</summary>
    protected abstract int[] HalfOffsets { get; }

    protected abstract float DotReference(T* x, Q8KBlock* y, int nb);

    protected abstract float DotVector(T* x, Q8KBlock* y, int nb);

    private static int BlockBytes => sizeof(T);

    [Fact]
    public void Block_size_matches_ggml()
    {
        Assert.Equal(GgmlTypes.BlockBytes(T.Type), sizeof(T));
        Assert.Equal(GgmlTypes.BlockSize(T.Type), T.BlockSize);
        Assert.Equal(GgmlType.Q8_K, T.DotType);
    }

    [Fact]
    public void Quantize_then_dequantize_stays_within_error_bounds()
    {
        KQuantProperties.Check(KQuantProperties.Rows, row =>
        {
            float[] x = row.Values(normalScales: true);
            T[] blocks = new T[row.Blocks];
            T.Quantize(x, blocks);
            float[] back = new float[x.Length];
            T.Dequantize(blocks, back);
            var (rmsBound, maxBound) = KQuantProperties.ErrorBounds(T.Type);
            for (int b = 0; b < row.Blocks; b++)
            {
                var (rel, maxRel) = KQuantProperties.Errors(x.AsSpan(256 * b, 256), back.AsSpan(256 * b, 256));
                if (maxRel > maxBound || (row.Gaussian && rel > rmsBound))
                    throw new Exception($"{T.Type} {row}: block {b} rmse/rms {rel:F4} (bound {rmsBound}), max err/amax {maxRel:F4} (bound {maxBound})");
            }
            return true;
        });
    }

    [Fact]
    public void Quantizing_through_Quantize_Row_gives_the_same_bytes_as_the_block_type()
    {
        KQuantProperties.Check(KQuantProperties.Rows, row =>
        {
            float[] x = row.Values();
            T[] blocks = new T[row.Blocks];
            T.Quantize(x, blocks);
            byte[] viaRow = new byte[GgmlTypes.RowBytes(T.Type, x.Length)];
            Quantize.Row(T.Type, x, viaRow);
            float[] a = new float[x.Length], b = new float[x.Length];
            Dequantize.Row(T.Type, viaRow, a);
            T.Dequantize(blocks, b);
            return MemoryMarshal.AsBytes(blocks.AsSpan()).SequenceEqual(viaRow) && a.AsSpan().SequenceEqual(b);
        });
    }

    [Fact]
    public void Vector_dot_equals_scalar_reference_bit_for_bit()
    {
        // Raw random blocks reach every scale and level combination (extremes included), not only those a quantizer emits.
        KQuantProperties.Check(KQuantProperties.Rows, row =>
        {
            var rng = new Random(row.Seed);
            byte[] w = new byte[row.Blocks * BlockBytes];
            rng.NextBytes(w);
            foreach (int b in Enumerable.Range(0, row.Blocks))
                foreach (int offset in HalfOffsets)
                    BitConverter.TryWriteBytes(w.AsSpan(b * BlockBytes + offset), BitConverter.HalfToUInt16Bits((Half)(rng.NextDouble() * 2 - 1)));
            byte[] a = KQuantProperties.Activation(row.Values());
            fixed (byte* pw = w, pa = a)
            {
                float reference = DotReference((T*)pw, (Q8KBlock*)pa, row.Blocks);
                float vector = DotVector((T*)pw, (Q8KBlock*)pa, row.Blocks);
                if (BitConverter.SingleToInt32Bits(reference) != BitConverter.SingleToInt32Bits(vector))
                    throw new Exception($"{T.Type} {row}: reference {reference:R}, vector {vector:R}");
            }
            return true;
        });
    }

    [Fact]
    public void Dot_with_Q8_K_activation_equals_dot_of_dequantized_rows()
    {
        KQuantProperties.Check(KQuantProperties.Rows, row =>
        {
            T[] blocks = new T[row.Blocks];
            T.Quantize(row.Values(), blocks);
            float[] x = new KQuantProperties.Row(row.Blocks, row.Seed + 1, Gaussian: true).Values();
            byte[] a = KQuantProperties.Activation(x);
            float[] wd = new float[x.Length], ad = new float[x.Length];
            T.Dequantize(blocks, wd);
            Q8KBlock.Dequantize(MemoryMarshal.Cast<byte, Q8KBlock>(a), ad);
            double exact = 0, magnitude = 0;
            for (int i = 0; i < x.Length; i++)
            {
                exact += (double)wd[i] * ad[i];
                magnitude += Math.Abs((double)wd[i] * ad[i]);
            }
            float dot = T.Dot(blocks, a);
            // The integer sums are exact; float rounding of scales and per-block products (a few ulp each) remains.
            double tolerance = 1e-5 * magnitude + 1e-30;
            if (Math.Abs(dot - exact) > tolerance)
                throw new Exception($"{T.Type} {row}: Dot {dot:R}, dequantized dot {exact:R}, tolerance {tolerance:G3}");
            return true;
        });
    }

    [Fact]
    public void MatVec_rows_equal_per_row_dots()
    {
        const int Rows = 5, Cols = 512;
        var rng = new Random(11);
        float[] w = new float[Rows * Cols], x = new float[Cols];
        for (int i = 0; i < w.Length; i++) w[i] = (float)(rng.NextDouble() * 2 - 1);
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        long rowBytes = GgmlTypes.RowBytes(T.Type, Cols);
        byte[] weights = new byte[Rows * rowBytes];
        for (int r = 0; r < Rows; r++)
            Quantize.Row(T.Type, w.AsSpan(r * Cols, Cols), weights.AsSpan((int)(r * rowBytes), (int)rowBytes));
        Assert.True(MatVec.Supports(T.Type));
        Assert.Equal(GgmlType.Q8_K, MatVec.ActivationType(T.Type));
        byte[] activation = new byte[MatVec.ActivationBytes(T.Type, Cols)];
        MatVec.PrepareActivation(T.Type, x, activation);
        Assert.Equal(KQuantProperties.Activation(x), activation);
        float[] y = new float[Rows - 1];
        fixed (byte* pw = weights)
            MatVec.Rows(T.Type, pw, rowBytes, Cols, activation, rowStart: 1, y);
        for (int r = 1; r < Rows; r++)
        {
            var row = MemoryMarshal.Cast<byte, T>(weights.AsSpan((int)(r * rowBytes), (int)rowBytes));
            Assert.Equal(T.Dot(row, activation), y[r - 1]);
        }
    }
}

/// <summary>Generators and helpers shared by the K-quant property tests.</summary>
internal static class KQuantProperties
{
    /// <summary>A random row: block count, seed, and whether values are Gaussian (else uniform or heavy-tailed with outliers).</summary>
    public readonly record struct Row(int Blocks, int Seed, bool Gaussian)
    {
        /// <summary>
        /// 256·Blocks values with a random scale from 1e-4 to 1e3, or with <paramref name="normalScales"/> from 0.1 to 1e3,
        /// where the fp16 super-block scales of every type stay normal numbers (smaller values lose precision to
        /// fp16 subnormals, in ggml as here).
        /// </summary>
        public float[] Values(bool normalScales = false)
        {
            var rng = new Random(Seed);
            double scale = normalScales ? Math.Pow(10, rng.NextDouble() * 4 - 1) : Math.Pow(10, rng.NextDouble() * 7 - 4);
            int shape = Gaussian ? 0 : 1 + rng.Next(2);
            var x = new float[256 * Blocks];
            for (int i = 0; i < x.Length; i++)
            {
                double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
                double v = shape switch
                {
                    0 => Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2),
                    1 => 2 * u2 - 1,
                    _ => Math.Tan(Math.PI * (u2 - 0.5)) / 10,
                };
                x[i] = (float)(scale * v);
            }
            return x;
        }
    }

    public static readonly Arbitrary<Row> Rows =
        Gen.Choose(1, 8).Zip(Gen.Choose(0, int.MaxValue)).Zip(Gen.Choose(0, 2))
            .Select(t => new Row(t.Item1.Item1, t.Item1.Item2, t.Item2 != 0)).ToArbitrary();

    /// <summary>Runs a property from a fixed seed (deterministic), 100 cases.</summary>
    public static void Check<TValue>(Arbitrary<TValue> arb, Func<TValue, bool> property)
    {
        var config = Config.QuickThrowOnFailure
            .WithReplay(FSharpOption<Replay>.Some(new Replay(new Rnd(20240611UL), FSharpOption<int>.None)))
            .WithMaxTest(100);
        FsCheck.Check.One(config, Prop.ForAll(arb, property));
    }

    /// <summary>
    /// Quantization error bounds per super-block: rmse(x̂ − x)/rms(x) for Gaussian x, and max|x̂ − x|/max|x| for any x
    /// (Gaussian, uniform, heavy-tailed), with fp16 scales in their normal range. The measured worst over 2000 blocks
    /// of each distribution, plus about 25%.
    /// </summary>
    public static (double RelativeRms, double MaxError) ErrorBounds(GgmlType type) => type switch
    {
        GgmlType.Q2_K => (0.5, 0.5),
        GgmlType.Q3_K => (0.22, 0.33),
        GgmlType.Q4_K => (0.11, 0.15),
        GgmlType.Q5_K => (0.055, 0.085),
        GgmlType.Q6_K => (0.028, 0.035),
        GgmlType.IQ4_XS => (0.12, 0.175),
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    /// <summary>The Q8_K activation bytes of x.</summary>
    public static byte[] Activation(float[] x)
    {
        byte[] a = new byte[GgmlTypes.RowBytes(GgmlType.Q8_K, x.Length)];
        Quantize.Row(GgmlType.Q8_K, x, a);
        return a;
    }

    /// <summary>rmse(y − x)/rms(x) and max|y − x|/max|x| (0 for an all-zero x that y reproduces).</summary>
    public static (double Rel, double MaxRel) Errors(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        double se = 0, ss = 0, maxErr = 0, amax = 0;
        for (int i = 0; i < x.Length; i++)
        {
            double e = (double)y[i] - x[i];
            se += e * e;
            ss += (double)x[i] * x[i];
            maxErr = Math.Max(maxErr, Math.Abs(e));
            amax = Math.Max(amax, Math.Abs(x[i]));
        }
        return ss == 0 ? (se == 0 ? 0 : double.PositiveInfinity, maxErr == 0 ? 0 : double.PositiveInfinity) : (Math.Sqrt(se / ss), maxErr / amax);
    }
}

public unsafe class Q2KBlockTests : KQuantBlockTests<Q2KBlock>
{
    protected override int[] HalfOffsets => [80, 82];
    protected override float DotReference(Q2KBlock* x, Q8KBlock* y, int nb) => Q2KBlock.DotReference(x, y, nb);
    protected override float DotVector(Q2KBlock* x, Q8KBlock* y, int nb) => Q2KBlock.DotAvx2(x, y, nb);
}

public unsafe class Q3KBlockTests : KQuantBlockTests<Q3KBlock>
{
    protected override int[] HalfOffsets => [108];
    protected override float DotReference(Q3KBlock* x, Q8KBlock* y, int nb) => Q3KBlock.DotReference(x, y, nb);
    protected override float DotVector(Q3KBlock* x, Q8KBlock* y, int nb) => Q3KBlock.DotAvx2(x, y, nb);
}

public unsafe class Q4KBlockTests : KQuantBlockTests<Q4KBlock>
{
    protected override int[] HalfOffsets => [0, 2];
    protected override float DotReference(Q4KBlock* x, Q8KBlock* y, int nb) => Q4KBlock.DotReference(x, y, nb);
    protected override float DotVector(Q4KBlock* x, Q8KBlock* y, int nb) => Q4KBlock.DotAvx2(x, y, nb);
}

public unsafe class Q5KBlockTests : KQuantBlockTests<Q5KBlock>
{
    protected override int[] HalfOffsets => [0, 2];
    protected override float DotReference(Q5KBlock* x, Q8KBlock* y, int nb) => Q5KBlock.DotReference(x, y, nb);
    protected override float DotVector(Q5KBlock* x, Q8KBlock* y, int nb) => Q5KBlock.DotAvx2(x, y, nb);
}

public unsafe class Q6KBlockTests : KQuantBlockTests<Q6KBlock>
{
    protected override int[] HalfOffsets => [208];
    protected override float DotReference(Q6KBlock* x, Q8KBlock* y, int nb) => Q6KBlock.DotReference(x, y, nb);
    protected override float DotVector(Q6KBlock* x, Q8KBlock* y, int nb) => Q6KBlock.DotAvx2(x, y, nb);
}

public unsafe class IQ4XSBlockTests : KQuantBlockTests<IQ4XSBlock>
{
    protected override int[] HalfOffsets => [0];
    protected override float DotReference(IQ4XSBlock* x, Q8KBlock* y, int nb) => IQ4XSBlock.DotReference(x, y, nb);
    protected override float DotVector(IQ4XSBlock* x, Q8KBlock* y, int nb) => IQ4XSBlock.DotAvx2(x, y, nb);
}

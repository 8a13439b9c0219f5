using FsCheck;
using FsCheck.Fluent;
using ManagedLM.Kernels;

namespace ManagedLM.Tests.Kernels;

/// <summary>The batched matmul gives, for every activation row, exactly what the matrix × vector kernel gives.</summary>
public unsafe class MatMulTests
{
    public static TheoryData<GgmlType> Types => new()
    {
        GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0,
        GgmlType.IQ4_NL, GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.IQ4_XS,
    };

    [Theory]
    [MemberData(nameof(Types))]
    public void Every_batch_row_equals_the_matrix_vector_product_bit_for_bit(GgmlType type)
    {
        // K-quant rows hold whole 256-value super-blocks; the others any number of 32-value blocks (partial groups of eight too).
        int unit = GgmlTypes.BlockSize(type) == 256 ? 256 : 32, maxUnits = unit == 256 ? 3 : 27;
        var cases = (from units in Gen.Choose(1, maxUnits)
                     from rows in Gen.Choose(1, 9)
                     from batch in Gen.Choose(1, 11)
                     from padding in Gen.Elements(0, 0, 64)
                     from seed in Gen.Choose(0, int.MaxValue)
                     select (Cols: units * unit, Rows: rows, Batch: batch, Padding: padding, Seed: seed)).ToArbitrary();
        KernelGen.Check(cases, c =>
        {
            var rng = new Random(c.Seed);
            long rowBytes = GgmlTypes.RowBytes(type, c.Cols);
            byte[] weights = RandomRows(type, c.Rows, c.Cols, rng);
            float[] values = new float[c.Cols];
            int activationBytes = MatVec.ActivationBytes(type, c.Cols), stride = activationBytes + c.Padding;
            byte[] activations = new byte[c.Batch * stride];
            for (int b = 0; b < c.Batch; b++)
            {
                Fill(values, rng);
                MatVec.PrepareActivation(type, values, activations.AsSpan(b * stride, activationBytes));
            }
            int yStride = c.Rows + 3;
            float[] y = new float[c.Batch * yStride];
            float[] expected = new float[c.Rows];
            fixed (byte* pw = weights)
            {
                MatMul.Rows(type, pw, rowBytes, c.Cols, activations, stride, c.Batch, 0, c.Rows, y, yStride);
                for (int b = 0; b < c.Batch; b++)
                {
                    MatVec.Rows(type, pw, rowBytes, c.Cols, activations.AsSpan(b * stride, activationBytes), 0, expected);
                    for (int i = 0; i < c.Rows; i++)
                    {
                        if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(y[b * yStride + i]))
                            throw new Exception($"{type} {c}: row {i}, batch row {b}: {y[b * yStride + i]:R}, matrix × vector {expected[i]:R}");
                    }
                }
            }
        });
    }

    [Theory]
    [InlineData(GgmlType.F16)]
    [InlineData(GgmlType.BF16)]
    public void Half_tiles_over_a_prompts_rows_equal_the_matrix_vector_product_bit_for_bit(GgmlType type)
    {
        // Many activation rows take the tiled path (blocks of 64 rows, tiles of 2 weight rows × 4): blocks and tiles with
        // remainders on both sides, columns a multiple of 32 or not.
        var cases = (from cols in Gen.Elements(32, 64, 384, 40)
                     from rows in Gen.Choose(1, 7)
                     from batch in Gen.Elements(4, 5, 63, 64, 67, 130)
                     from seed in Gen.Choose(0, int.MaxValue)
                     select (Cols: cols, Rows: rows, Batch: batch, Seed: seed)).ToArbitrary();
        KernelGen.Check(cases, c =>
        {
            var rng = new Random(c.Seed);
            long rowBytes = GgmlTypes.RowBytes(type, c.Cols);
            byte[] weights = RandomRows(type, c.Rows, c.Cols, rng);
            float[] values = new float[c.Cols];
            int stride = MatVec.ActivationBytes(type, c.Cols);
            byte[] activations = new byte[c.Batch * stride];
            for (int b = 0; b < c.Batch; b++)
            {
                Fill(values, rng);
                MatVec.PrepareActivation(type, values, activations.AsSpan(b * stride, stride));
            }
            float[] y = new float[c.Batch * c.Rows];
            float[] expected = new float[c.Rows];
            fixed (byte* pw = weights)
            {
                MatMul.Rows(type, pw, rowBytes, c.Cols, activations, stride, c.Batch, 0, c.Rows, y, c.Rows);
                for (int b = 0; b < c.Batch; b++)
                {
                    MatVec.Rows(type, pw, rowBytes, c.Cols, activations.AsSpan(b * stride, stride), 0, expected);
                    for (int i = 0; i < c.Rows; i++)
                    {
                        if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(y[b * c.Rows + i]))
                            throw new Exception($"{type} {c}: row {i}, batch row {b}: {y[b * c.Rows + i]:R}, matrix × vector {expected[i]:R}");
                    }
                }
            }
        });
    }

    [Fact]
    public void A_row_range_writes_only_its_outputs()
    {
        const int Rows = 6, Cols = 256, Batch = 2;
        var rng = new Random(3);
        long rowBytes = GgmlTypes.RowBytes(GgmlType.Q4_K, Cols);
        byte[] weights = new byte[Rows * rowBytes];
        float[] values = new float[Cols];
        for (int r = 0; r < Rows; r++)
        {
            Fill(values, rng);
            Quantize.Row(GgmlType.Q4_K, values, weights.AsSpan((int)(r * rowBytes), (int)rowBytes));
        }
        int stride = MatVec.ActivationBytes(GgmlType.Q4_K, Cols);
        byte[] activations = new byte[Batch * stride];
        for (int b = 0; b < Batch; b++)
        {
            Fill(values, rng);
            MatVec.PrepareActivation(GgmlType.Q4_K, values, activations.AsSpan(b * stride, stride));
        }
        float[] y = Enumerable.Repeat(float.NaN, Batch * Rows).ToArray();
        float[] full = new float[Batch * Rows];
        fixed (byte* pw = weights)
        {
            MatMul.Rows(GgmlType.Q4_K, pw, rowBytes, Cols, activations, stride, Batch, 2, 3, y.AsSpan(2), Rows);
            MatMul.Rows(GgmlType.Q4_K, pw, rowBytes, Cols, activations, stride, Batch, 0, Rows, full, Rows);
        }
        for (int b = 0; b < Batch; b++)
        {
            for (int i = 0; i < Rows; i++)
            {
                if (i is >= 2 and < 5)
                    Assert.Equal(full[b * Rows + i], y[b * Rows + i]);
                else
                    Assert.True(float.IsNaN(y[b * Rows + i]));
            }
        }
    }

    [Fact]
    public void Buffers_too_small_for_the_batch_are_refused()
    {
        long rowBytes = GgmlTypes.RowBytes(GgmlType.Q8_0, 64);
        byte[] weights = new byte[2 * rowBytes];
        int stride = MatVec.ActivationBytes(GgmlType.Q8_0, 64);
        fixed (byte* pw = weights)
        {
            byte* p = pw;
            Assert.Throws<ArgumentException>(() => MatMul.Rows(GgmlType.Q8_0, p, rowBytes, 64, new byte[stride], stride, 2, 0, 2, new float[4], 2));
            Assert.Throws<ArgumentException>(() => MatMul.Rows(GgmlType.Q8_0, p, rowBytes, 64, new byte[2 * stride], stride, 2, 0, 2, new float[3], 2));
        }
    }

    private static void Fill(float[] values, Random rng)
    {
        float scale = MathF.ScaleB(1, rng.Next(-6, 6));
        for (int i = 0; i < values.Length; i++)
            values[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
    }

    // Rows of random values in the type's layout, [rows][row bytes].
    private static byte[] RandomRows(GgmlType type, int rows, int cols, Random rng)
    {
        long rowBytes = GgmlTypes.RowBytes(type, cols);
        byte[] weights = new byte[rows * rowBytes];
        float[] values = new float[cols];
        for (int r = 0; r < rows; r++)
        {
            Fill(values, rng);
            Quantize.Row(type, values, weights.AsSpan((int)(r * rowBytes), (int)rowBytes));
        }
        return weights;
    }
}

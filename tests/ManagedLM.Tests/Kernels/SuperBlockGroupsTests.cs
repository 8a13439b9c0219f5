using FsCheck;
using FsCheck.Fluent;
using ManagedLM.Kernels;
using ManagedLM.Kernels.Quants;

namespace ManagedLM.Tests.Kernels;

/// <summary>
/// Q4_K rows repacked into groups of eight (<see cref="SuperBlockGroups"/>) give every weight row and activation row exactly
/// the scalar reference dot of the file's layout: the decode kernel (one to three activation rows), the batch tiles, and the
/// scalar reference over the repacked layout, for row ranges that cut groups and padded activation strides.
/// </summary>
public unsafe class SuperBlockGroupsTests
{
    private delegate void Multiply(byte* packed, int rowStart, int rowCount, int cols, byte* activations, int stride, int count, float* y, int yStride);

    [Fact]
    public void The_kernels_equal_the_scalar_reference()
    {
        var cases = (from blocks in Gen.Choose(1, 12)
                     from groups in Gen.Choose(1, 3)
                     from batch in Gen.Choose(1, 11)
                     from cut in Gen.Choose(0, 7)
                     from seed in Gen.Choose(0, int.MaxValue)
                     select (Blocks: blocks, Rows: groups * SuperBlockGroups.GroupRows, Batch: batch, Cut: cut, Seed: seed)).ToArbitrary();
        KernelGen.Check(cases, c =>
        {
            Compare(SuperBlockGroups.MultiplyRows, c.Blocks, c.Rows, c.Batch, c.Cut, c.Seed);
            Compare((p, s, n, cols, a, st, b, y, ys) => SuperBlockGroups.Reference(p, s, n, cols / 256, a, st, b, y, ys), c.Blocks, c.Rows, c.Batch, c.Cut, c.Seed);
        });
    }

    [Fact]
    public void Long_rows_and_wide_batches_equal_the_scalar_reference() => Compare(SuperBlockGroups.MultiplyRows, 22, 136, 70, 5, 11);

    private static void Compare(Multiply multiply, int blocks, int rows, int batch, int cut, int seed)
    {
        var rng = new Random(seed);
        int cols = 256 * blocks;
        long rowBytes = GgmlTypes.RowBytes(GgmlType.Q4_K, cols);
        byte[] weights = new byte[rows * rowBytes];
        float[] values = new float[cols];
        for (int r = 0; r < rows; r++)
        {
            Fill(values, rng);
            Quantize.Row(GgmlType.Q4_K, values, weights.AsSpan((int)(r * rowBytes), (int)rowBytes));
        }
        int stride = MatVec.ActivationBytes(GgmlType.Q4_K, cols) + 32;
        byte[] activations = new byte[batch * stride];
        for (int b = 0; b < batch; b++)
        {
            Fill(values, rng);
            MatVec.PrepareActivation(GgmlType.Q4_K, values, activations.AsSpan(b * stride, stride - 32));
        }
        int rowStart = cut, rowCount = rows - cut - (rows > 8 ? cut / 2 : 0), yStride = rowCount + 3;
        byte[] packed = new byte[MatMul.RepackedBytes(GgmlType.Q4_K, rows, cols)];
        float[] y = new float[batch * yStride];
        fixed (byte* w = weights, a = activations, p = packed)
        fixed (float* py = y)
        {
            MatMul.Repack(GgmlType.Q4_K, w, rowBytes, rows, cols, packed);
            multiply(p, rowStart, rowCount, cols, a, stride, batch, py, yStride);
            for (int b = 0; b < batch; b++)
                for (int r = 0; r < rowCount; r++)
                {
                    float expected = Q4KBlock.DotReference((Q4KBlock*)(w + (rowStart + r) * rowBytes), (Q8KBlock*)(a + b * stride), blocks);
                    float got = y[b * yStride + r];
                    if (BitConverter.SingleToInt32Bits(expected) != BitConverter.SingleToInt32Bits(got))
                        throw new Exception($"{blocks} blocks, {rows} rows from {rowStart}, batch {batch}: row {rowStart + r}, activation {b}: {got:R}, reference {expected:R}");
                }
        }
    }

    // Values of mixed magnitudes, so that scales and mins vary between sub-blocks and rows.
    private static void Fill(float[] values, Random rng)
    {
        float scale = (float)Math.Pow(10, rng.NextDouble() * 4 - 2);
        for (int i = 0; i < values.Length; i++)
            values[i] = (float)(rng.NextDouble() * 2 - 1) * scale * (i % 32 < 8 ? 3 : 1) + (i % 64 < 32 ? 0.3f * scale : 0);
    }
}

using System.Runtime.InteropServices;
using FsCheck.Fluent;
using ManagedLM.Kernels;
using ManagedLM.Kernels.Quants;

namespace ManagedLM.Tests.Kernels.Quants;

/// <summary>
/// The repacked signed-block matrices (eight rows side by side) against the scalar reference dot of the file's layout, bit for
/// bit: the VNNI kernel, its scalar reference over the repacked layout, and <see cref="MatMul.RepackedRows"/>, for any quant
/// bytes, block and batch counts, padded strides and row ranges that cut groups.
/// </summary>
public unsafe class SignedBlockGroupsTests
{
    private delegate void Multiply(byte* packed, int rowStart, int rowCount, int cols, byte* activations, int stride, int count, float* y, int yStride);

    [Fact]
    public void Q4_0_groups_equal_the_reference() => CheckPaths<Q4_0Block, CodeNibbles>();

    [Fact]
    public void Q5_0_groups_equal_the_reference() => CheckPaths<Q5_0Block, FiveBitCodes>();

    [Fact]
    public void Q8_0_groups_equal_the_reference() => CheckPaths<Q8_0Block, ByteQuants>();

    [Fact]
    public void IQ4_NL_groups_equal_the_reference() => CheckPaths<IQ4NLBlock, LevelNibbles>();

    [Theory]
    [InlineData(GgmlType.Q4_0)]
    [InlineData(GgmlType.Q5_0)]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.IQ4_NL)]
    public void Repacked_rows_equal_the_plain_rows(GgmlType type)
    {
        const int rows = 24, cols = 96, batch = 5;
        var rng = new Random(7);
        float[] values = new float[rows * cols];
        foreach (ref float v in values.AsSpan())
            v = (float)(rng.NextDouble() * 2 - 1);
        long rowBytes = GgmlTypes.RowBytes(type, cols);
        byte[] weights = new byte[rows * rowBytes];
        Quantize.Row(type, values, weights);
        byte[] packed = new byte[MatMul.RepackedBytes(type, rows, cols)];
        int stride = MatVec.ActivationBytes(type, cols);
        byte[] activations = new byte[batch * stride];
        for (int b = 0; b < batch; b++)
            MatVec.PrepareActivation(type, values.AsSpan(b * cols, cols), activations.AsSpan(b * stride, stride));
        float[] plain = new float[batch * rows], repacked = new float[batch * rows];
        fixed (byte* w = weights)
        {
            MatMul.Repack(type, w, rowBytes, rows, cols, packed);
            MatMul.Rows(type, w, rowBytes, cols, activations, stride, batch, 3, rows - 3, plain, rows);
        }
        MatMul.RepackedRows(type, packed, rows, cols, activations, stride, batch, 3, rows - 3, repacked, rows);
        Assert.Equal(plain, repacked);
        Assert.True(MatMul.CanRepack(type));
        Assert.False(MatMul.CanRepack(GgmlType.Q5_1));
        Assert.Throws<ArgumentException>(() => MatMul.RepackedBytes(type, rows + 1, cols));
    }

    private static void CheckPaths<T, TQ>() where T : unmanaged, ISignedQuantBlock<T> where TQ : IGroupQuants
    {
        Check<T, TQ>(SignedBlockGroups.MultiplyRows<T, TQ>);
        Check<T, TQ>(SignedBlockGroups.Reference<T, TQ>);
    }

    private static void Check<T, TQ>(Multiply multiply) where T : unmanaged, ISignedQuantBlock<T> where TQ : IGroupQuants
    {
        var cases = (from nb in Gen.Choose(1, 27)
                     from groups in Gen.Choose(1, 3)
                     from batch in Gen.Choose(1, 10)
                     from padding in Gen.Elements(0, 0, 6)
                     from cut in Gen.Choose(0, 7)
                     from seed in Gen.Choose(0, int.MaxValue)
                     select (Blocks: nb, Rows: groups * SignedBlockGroups.GroupRows, Batch: batch, Padding: padding, Cut: cut, Seed: seed)).ToArbitrary();
        KernelGen.Check(cases, c =>
        {
            var (weights, activations, activationBytes, stride) =
                SignedBlockRowsTests.RandomOperands<T>(new Random(c.Seed), c.Rows, c.Blocks, c.Batch, c.Padding);
            int blockBytes = Marshal.SizeOf<T>();
            int cols = c.Blocks * 32, rowStart = c.Cut, rowCount = c.Rows - c.Cut - (c.Rows > 8 ? c.Cut / 2 : 0);
            byte[] packed = new byte[SignedBlockGroups.PackedBytes<TQ>(c.Rows, cols)];
            int yStride = rowCount + 2;
            float[] y = new float[c.Batch * yStride];
            fixed (T* w = weights)
            fixed (byte* p = packed)
            fixed (byte* a = activations)
            fixed (float* py = y)
            {
                SignedBlockGroups.Repack<T, TQ>((byte*)w, (long)c.Blocks * blockBytes, c.Rows, cols, p);
                multiply(p, rowStart, rowCount, cols, a, stride, c.Batch, py, yStride);
            }
            for (int r = 0; r < rowCount; r++)
                for (int b = 0; b < c.Batch; b++)
                {
                    float expected = LegacyDot.SignedReference<T>(weights.AsSpan((rowStart + r) * c.Blocks, c.Blocks), activations.AsSpan(b * stride, activationBytes));
                    float got = y[b * yStride + r];
                    if (BitConverter.SingleToInt32Bits(expected) != BitConverter.SingleToInt32Bits(got))
                        throw new Exception($"{typeof(T).Name} {c}: row {rowStart + r}, activation row {b}: {got:R}, reference {expected:R}");
                }
        });
    }
}

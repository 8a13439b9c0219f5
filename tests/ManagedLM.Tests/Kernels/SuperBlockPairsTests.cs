using FsCheck;
using FsCheck.Fluent;
using ManagedLM.Kernels;
using ManagedLM.Kernels.Quants;

namespace ManagedLM.Tests.Kernels;

/// <summary>
/// The AVX-512 register tiles (two weight rows × pairs of activation rows) give every weight row and activation row
/// exactly the scalar reference's dot: odd row and activation counts, runs of blocks past one run, pairs past one group,
/// rows past one chunk.
/// </summary>
public unsafe class SuperBlockPairsTests
{
    public static TheoryData<GgmlType> Types => new() { GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K };

    [Theory]
    [MemberData(nameof(Types))]
    public void Every_tile_equals_the_scalar_reference(GgmlType type)
    {
        if (!SuperBlockPairs512.Supported)
            return;
        var cases = (from blocks in Gen.Choose(1, 20)
                     from rows in Gen.Choose(1, 7)
                     from batch in Gen.Choose(1, 13)
                     from seed in Gen.Choose(0, int.MaxValue)
                     select (Blocks: blocks, Rows: rows, Batch: batch, Seed: seed)).ToArbitrary();
        KernelGen.Check(cases, c => Compare(type, c.Blocks, c.Rows, c.Batch, c.Seed));
    }

    [Theory]
    [InlineData(GgmlType.Q4_K, 2, 67, 70)]
    [InlineData(GgmlType.Q6_K, 17, 130, 66)]
    public void Chunks_and_groups_equal_the_scalar_reference(GgmlType type, int blocks, int rows, int batch)
    {
        if (SuperBlockPairs512.Supported)
            Compare(type, blocks, rows, batch, 7);
    }

    private static void Compare(GgmlType type, int blocks, int rowCount, int batch, int seed)
    {
        var rng = new Random(seed);
        int cols = 256 * blocks;
        long rowBytes = GgmlTypes.RowBytes(type, cols);
        byte[] weights = new byte[rowCount * rowBytes];
        float[] values = new float[cols];
        for (int r = 0; r < rowCount; r++)
        {
            Fill(values, rng);
            Quantize.Row(type, values, weights.AsSpan((int)(r * rowBytes), (int)rowBytes));
        }
        int stride = MatVec.ActivationBytes(type, cols) + 32;
        byte[] activations = new byte[batch * stride];
        for (int b = 0; b < batch; b++)
        {
            Fill(values, rng);
            MatVec.PrepareActivation(type, values, activations.AsSpan(b * stride, stride - 32));
        }
        int yStride = rowCount + 1;
        float[] y = new float[batch * yStride];
        fixed (byte* w = weights, a = activations)
        fixed (float* py = y)
        {
            Multiply(type, w, rowBytes, rowCount, blocks, a, stride, batch, py, yStride);
            for (int b = 0; b < batch; b++)
                for (int r = 0; r < rowCount; r++)
                {
                    float expected = Reference(type, w + r * rowBytes, (Q8KBlock*)(a + b * stride), blocks);
                    if (BitConverter.SingleToInt32Bits(expected) != BitConverter.SingleToInt32Bits(y[b * yStride + r]))
                        throw new Exception($"{type} {blocks} blocks, {rowCount}×{batch}: row {r}, activation {b}: {y[b * yStride + r]:R}, reference {expected:R}");
                }
        }
    }

    private static void Multiply(GgmlType type, byte* w, long rowBytes, int rows, int nb, byte* a, int stride, int batch, float* y, int yStride)
    {
        switch (type)
        {
            case GgmlType.Q2_K: SuperBlockPairs512.MultiplyRows<Q2KBlock>(w, rowBytes, rows, nb, a, stride, batch, y, yStride); break;
            case GgmlType.Q3_K: SuperBlockPairs512.MultiplyRows<Q3KBlock>(w, rowBytes, rows, nb, a, stride, batch, y, yStride); break;
            case GgmlType.Q4_K: SuperBlockPairs512.MultiplyRows<Q4KBlock>(w, rowBytes, rows, nb, a, stride, batch, y, yStride); break;
            case GgmlType.Q5_K: SuperBlockPairs512.MultiplyRows<Q5KBlock>(w, rowBytes, rows, nb, a, stride, batch, y, yStride); break;
            default: SuperBlockPairs512.MultiplyRows<Q6KBlock>(w, rowBytes, rows, nb, a, stride, batch, y, yStride); break;
        }
    }

    private static float Reference(GgmlType type, byte* w, Q8KBlock* a, int nb) => type switch
    {
        GgmlType.Q2_K => SuperBlockDot.DotReference((Q2KBlock*)w, a, nb),
        GgmlType.Q3_K => SuperBlockDot.DotReference((Q3KBlock*)w, a, nb),
        GgmlType.Q4_K => SuperBlockDot.DotReference((Q4KBlock*)w, a, nb),
        GgmlType.Q5_K => SuperBlockDot.DotReference((Q5KBlock*)w, a, nb),
        _ => SuperBlockDot.DotReference((Q6KBlock*)w, a, nb),
    };

    private static void Fill(float[] values, Random rng)
    {
        float scale = MathF.ScaleB(1, rng.Next(-6, 6));
        for (int i = 0; i < values.Length; i++)
            values[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
    }
}

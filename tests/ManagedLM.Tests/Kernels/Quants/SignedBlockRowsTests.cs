using System.Runtime.InteropServices;
using FsCheck.Fluent;
using ManagedLM.Kernels;
using ManagedLM.Kernels.Quants;

namespace ManagedLM.Tests.Kernels.Quants;

/// <summary>
/// Each matrix × matrix path of the signed 32-value blocks (the VNNI panels and dots, the AVX2 groups) against the scalar reference
/// dot, bit for bit: any quant bytes, odd row, block and batch counts, padded strides.
/// </summary>
public unsafe class SignedBlockRowsTests
{
    private delegate void MultiplyRows(byte* rows, long rowBytes, int rowCount, int nb, byte* activations, int stride, int count, float* y, int yStride);

    [Fact]
    public void Q4_0_paths_equal_the_reference() => CheckPaths<Q4_0Block>();

    [Fact]
    public void Q5_0_paths_equal_the_reference() => CheckPaths<Q5_0Block>();

    [Fact]
    public void Q8_0_paths_equal_the_reference() => CheckPaths<Q8_0Block>();

    [Fact]
    public void IQ4_NL_paths_equal_the_reference() => CheckPaths<IQ4NLBlock>();

    private static void CheckPaths<T>() where T : unmanaged, ISignedQuantBlock<T>
    {
        if (CpuFeatures.AvxVnni)
        {
            Check<T>(SignedBlockPanels.MultiplyRows<T>);
            Check<T>((rows, rowBytes, rowCount, nb, activations, stride, count, y, yStride) =>
            {
                for (int b = 0; b < count; b++)
                    SignedBlockVnniDot.MultiplyRows<T>(rows, rowBytes, rowCount, nb, activations + b * stride, y + b * yStride);
            });
        }
        if (CpuFeatures.Avx2)
            Check<T>(SignedBlockRows.MultiplyRowsAvx2<T>);
        Check<T>(SignedBlockRows.MultiplyRows<T>);
    }

    private static void Check<T>(MultiplyRows multiply) where T : unmanaged, ISignedQuantBlock<T>
    {
        var cases = (from nb in Gen.Choose(1, 27)
                     from rows in Gen.Choose(1, 7)
                     from batch in Gen.Choose(1, 21)
                     from padding in Gen.Elements(0, 0, 6)
                     from seed in Gen.Choose(0, int.MaxValue)
                     select (Blocks: nb, Rows: rows, Batch: batch, Padding: padding, Seed: seed)).ToArbitrary();
        KernelGen.Check(cases, c =>
        {
            var (weights, activations, activationBytes, stride) = RandomOperands<T>(new Random(c.Seed), c.Rows, c.Blocks, c.Batch, c.Padding);
            int blockBytes = Marshal.SizeOf<T>();
            int yStride = c.Rows + 2;
            float[] y = new float[c.Batch * yStride];
            fixed (T* w = weights)
            fixed (byte* a = activations)
            fixed (float* py = y)
                multiply((byte*)w, (long)c.Blocks * blockBytes, c.Rows, c.Blocks, a, stride, c.Batch, py, yStride);
            for (int r = 0; r < c.Rows; r++)
                for (int b = 0; b < c.Batch; b++)
                {
                    float expected = LegacyDot.SignedReference<T>(weights.AsSpan(r * c.Blocks, c.Blocks), activations.AsSpan(b * stride, activationBytes));
                    float got = y[b * yStride + r];
                    if (BitConverter.SingleToInt32Bits(expected) != BitConverter.SingleToInt32Bits(got))
                        throw new Exception($"{typeof(T).Name} {c}: row {r}, activation row {b}: {got:R}, reference {expected:R}");
                }
        });
    }

    /// <summary>
    /// rows × blocks weight blocks of any quant bytes (finite F16 scales), and batch Q8_0 activation rows of random values,
    /// <c>Stride</c> = <c>ActivationBytes</c> + padding bytes apart.
    /// </summary>
    internal static (T[] Weights, byte[] Activations, int ActivationBytes, int Stride) RandomOperands<T>(Random rng, int rows, int blocks, int batch, int padding)
        where T : unmanaged
    {
        int blockBytes = Marshal.SizeOf<T>();
        T[] weights = new T[rows * blocks];
        Span<byte> bytes = MemoryMarshal.AsBytes(weights.AsSpan());
        rng.NextBytes(bytes);
        for (int b = 0; b < weights.Length; b++) // every type starts with its F16 scale: keep it finite
            MemoryMarshal.Write(bytes[(b * blockBytes)..], Float16.FromSingle((float)(rng.NextDouble() * 2 - 1)));
        int activationBytes = blocks * LegacyDot.Q8_0Bytes, stride = activationBytes + padding;
        byte[] activations = new byte[batch * stride];
        float[] values = new float[blocks * 32];
        for (int b = 0; b < batch; b++)
        {
            foreach (ref float v in values.AsSpan())
                v = (float)(rng.NextDouble() * 2 - 1);
            MatVec.PrepareActivation(GgmlType.Q4_0, values, activations.AsSpan(b * stride, activationBytes));
        }
        return (weights, activations, activationBytes, stride);
    }
}

using System.Runtime.InteropServices;
using ManagedLM.Kernels;

namespace ManagedLM.Tests.Kernels;

public class HalfMatVecTests
{
    [Theory]
    [InlineData(GgmlType.F16)]
    [InlineData(GgmlType.BF16)]
    public unsafe void Dispatchers_route_16_bit_floats(GgmlType type)
    {
        Func<float, ushort> narrow = type == GgmlType.F16 ? Float16.FromSingle : BFloat16.FromSingle;
        Func<ushort, float> widen = type == GgmlType.F16 ? Float16.ToSingle : BFloat16.ToSingle;
        var rng = new Random(3);
        const int rows = 5, cols = 100; // not a multiple of 8 or 16: exercises the scalar tails
        float[] w = Enumerable.Range(0, rows * cols).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
        float[] x = Enumerable.Range(0, cols).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
        Assert.True(Dequantize.Supports(type) && Quantize.Supports(type) && MatVec.Supports(type));

        byte[] matrix = new byte[GgmlTypes.RowBytes(type, rows * cols)];
        Quantize.Row(type, w, matrix);
        ushort[] bits = MemoryMarshal.Cast<byte, ushort>(matrix).ToArray();
        Assert.Equal(w.Select(narrow), bits);
        float[] back = new float[w.Length];
        Dequantize.Row(type, matrix, back);
        Assert.Equal(bits.Select(widen), back);

        // As ggml's vec_dot_type: the activation is rounded to the weights' own 16-bit format.
        Assert.Equal(type, MatVec.ActivationType(type));
        byte[] act = new byte[MatVec.ActivationBytes(type, cols)];
        MatVec.PrepareActivation(type, x, act);
        float[] y = new float[rows - 2];
        fixed (byte* pm = matrix)
            MatVec.Rows(type, pm, cols * 2, cols, act, 2, y);
        for (int r = 2; r < rows; r++)
        {
            double expected = 0, magnitude = 0;
            for (int c = 0; c < cols; c++)
            {
                double p = (double)widen(bits[r * cols + c]) * widen(narrow(x[c]));
                expected += p;
                magnitude += Math.Abs(p);
            }
            Assert.True(Math.Abs(expected - y[r - 2]) <= 1e-6 * magnitude, $"row {r}: {y[r - 2]} vs {expected}");
        }
    }
}

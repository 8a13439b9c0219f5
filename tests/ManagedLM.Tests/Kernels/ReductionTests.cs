using FsCheck;
using FsCheck.Fluent;
using ManagedLM.Kernels;

namespace ManagedLM.Tests.Kernels;

/// <summary>Reductions and the kernels built on them: close to a double reference, and independent of the span's address.</summary>
public class ReductionTests
{
    private static Arbitrary<(float[] Values, int Offset)> Rows() =>
        (from n in Gen.Choose(0, 300)
         from scale in Gen.Choose(-10, 10)
         from ints in Gen.ArrayOf(Gen.Choose(-1_000_000, 1_000_000), n)
         from offset in Gen.Choose(1, 15)
         select (ints.Select(i => i / 1e6f * MathF.ScaleB(1, scale)).ToArray(), offset)).ToArbitrary();

    // The values copied to `offset` floats into a larger array: another address alignment.
    private static Span<float> Moved(float[] values, int offset)
    {
        var buffer = new float[values.Length + offset];
        values.CopyTo(buffer, offset);
        return buffer.AsSpan(offset, values.Length);
    }

    [Fact]
    public void Sum_of_squares_is_close_to_double_and_the_same_at_any_address() =>
        KernelGen.Check(Rows(), c =>
        {
            double reference = c.Values.Sum(v => (double)(v * v));
            double sum = Sum.OfSquares(c.Values);
            if (Math.Abs(sum - reference) > 1e-12 * reference + 1e-300)
                throw new Exception($"{sum:R} vs {reference:R}");
            if (Sum.OfSquares(Moved(c.Values, c.Offset)) != sum)
                throw new Exception("the sum depends on the address");
        });

    [Fact]
    public void Chunked_sum_is_close_to_double_and_the_same_at_any_address() =>
        KernelGen.Check(Rows(), c =>
        {
            double reference = c.Values.Sum(v => (double)v), magnitude = c.Values.Sum(v => Math.Abs((double)v));
            double sum = Sum.OfChunks(c.Values);
            if (Math.Abs(sum - reference) > 1e-6 * magnitude + 1e-300)
                throw new Exception($"{sum:R} vs {reference:R}");
            if (Sum.OfChunks(Moved(c.Values, c.Offset)) != sum)
                throw new Exception("the sum depends on the address");
        });

    [Fact]
    public void Softmax_matches_the_double_reference_and_is_the_same_at_any_address() =>
        KernelGen.Check(Rows(), c =>
        {
            float[] x = c.Values.ToArray(), reference = c.Values.ToArray();
            Softmax.InPlace(x);
            Softmax.Reference(reference);
            for (int i = 0; i < x.Length; i++)
            {
                if (Math.Abs(x[i] - reference[i]) > 1e-5f * reference[i] + 1e-7f)
                    throw new Exception($"element {i}: {x[i]:R} vs {reference[i]:R}");
            }
            var moved = Moved(c.Values, c.Offset);
            Softmax.InPlace(moved);
            if (!moved.SequenceEqual(x))
                throw new Exception("softmax depends on the address");
        });

    [Fact]
    public void Maximum_is_the_largest_value_and_NaN_wins() =>
        KernelGen.Check(Rows(), c =>
        {
            if (c.Values.Length == 0)
                return;
            if (Maximum.Of(c.Values) != c.Values.Max())
                throw new Exception($"{Maximum.Of(c.Values):R} vs {c.Values.Max():R}");
            float[] poisoned = c.Values.ToArray();
            poisoned[c.Offset % poisoned.Length] = float.NaN;
            if (!float.IsNaN(Maximum.Of(poisoned)))
                throw new Exception("a NaN was lost");
            poisoned[c.Offset % poisoned.Length] = float.PositiveInfinity;
            if (Maximum.Of(poisoned) != float.PositiveInfinity)
                throw new Exception("+∞ was lost");
        });

    [Fact]
    public void Maximum_of_nothing_is_an_argument_error() =>
        Assert.Throws<ArgumentException>(() => Maximum.Of([]));

    [Fact]
    public void Add_in_place_adds_each_element_exactly() =>
        KernelGen.Check(Rows(), c =>
        {
            float[] y = c.Values.Select((v, i) => v * 0.5f + i).ToArray();
            var x = Moved(c.Values, c.Offset);
            Add.InPlace(x, y);
            for (int i = 0; i < x.Length; i++)
            {
                if (x[i] != c.Values[i] + y[i])
                    throw new Exception($"element {i}: {x[i]:R} vs {c.Values[i] + y[i]:R}");
            }
        });

    [Fact]
    public void Softmax_weighs_an_element_by_its_value_alone()
    {
        // The same logit at every index of rows of every length: the vector tail must give what the body gives.
        for (int n = 1; n <= 40; n++)
        {
            float[] x = Enumerable.Range(0, n).Select(i => i % 3 == 0 ? 0.75f : -2.5f).ToArray();
            Softmax.InPlace(x);
            for (int i = 3; i < n; i++)
                Assert.Equal(x[i % 3], x[i]);
        }
        float[] withInfinity = [float.NegativeInfinity, 1f, float.NegativeInfinity, 1f];
        Softmax.InPlace(withInfinity);
        Assert.Equal([0f, 0.5f, 0f, 0.5f], withInfinity);
    }

    [Fact]
    public void Softmax_of_huge_equal_logits_is_uniform()
    {
        float[] x = [1000f, 1000f, 1000f, 1000f];
        Softmax.InPlace(x);
        Assert.All(x, v => Assert.Equal(0.25f, v));
    }

    [Fact]
    public void RmsNorm_matches_the_double_reference_and_is_the_same_at_any_address() =>
        KernelGen.Check(Rows(), c =>
        {
            if (c.Values.Length == 0)
                return;
            float[] weight = Enumerable.Range(0, c.Values.Length).Select(i => 0.5f + i % 7 / 4f).ToArray();
            float[] y = new float[c.Values.Length];
            RmsNorm.Apply(c.Values, weight, 1e-5f, y);
            double scale = 1 / Math.Sqrt(c.Values.Sum(v => (double)v * v) / c.Values.Length + 1e-5);
            for (int i = 0; i < y.Length; i++)
            {
                double expected = c.Values[i] * scale * weight[i];
                if (Math.Abs(y[i] - expected) > 1e-5 * Math.Abs(expected) + 1e-30)
                    throw new Exception($"element {i}: {y[i]:R} vs {expected:R}");
            }
            float[] moved = new float[y.Length];
            RmsNorm.Apply(Moved(c.Values, c.Offset), weight, 1e-5f, moved);
            if (!moved.AsSpan().SequenceEqual(y))
                throw new Exception("RmsNorm depends on the address");
            // The vector lanes round as the scalar form does: (x·scale)·weight, each product to F32.
            float s = RmsNorm.Scale(c.Values, 1e-5f);
            for (int i = 0; i < y.Length; i++)
            {
                if (BitConverter.SingleToInt32Bits(y[i]) != BitConverter.SingleToInt32Bits(c.Values[i] * s * weight[i]))
                    throw new Exception($"element {i}: {y[i]:R}, scalar {c.Values[i] * s * weight[i]:R}");
            }
        });
}

using System.Runtime.Intrinsics;
using FsCheck;
using FsCheck.Fluent;
using ManagedLM.Kernels;

namespace ManagedLM.Tests.Kernels;

public class AttentionSoftmaxTests
{
    // Score rows of attention's lengths: spreads from tiny to past exp's underflow, with ties, −∞ and NaN now and then.
    private static Arbitrary<float[]> Scores() =>
        (from n in Gen.Frequency((3, Gen.Choose(1, 40)), (2, Gen.Choose(41, 600)))
         from spread in Gen.Elements(0.01f, 1f, 10f, 100f, 1000f)
         from values in Gen.ArrayOf(Gen.Frequency(
             (40, Gen.Choose(-1_000_000, 1_000_000).Select(i => i / 1_000_000f * spread)),
             (2, Gen.Constant(spread / 2)),
             (1, Gen.Constant(float.NegativeInfinity))), n)
         select values).ToArbitrary();

    private static bool SameBits(float a, float b) =>
        BitConverter.SingleToUInt32Bits(a) == BitConverter.SingleToUInt32Bits(b) || (float.IsNaN(a) && float.IsNaN(b));

    [Fact]
    public void Every_width_gives_the_scalar_bits() =>
        KernelGen.Check(Scores(), x =>
        {
            float max = Maximum.Of(x);
            float[] scalar = x.ToArray();
            float sum = AttentionSoftmax.ExpShifted(scalar, max, false, false);
            foreach (var (use512, use256) in new[] { (true, false), (false, true) })
            {
                if ((use512 && !Vector512.IsHardwareAccelerated) || (use256 && !Vector256.IsHardwareAccelerated))
                    continue;
                float[] vector = x.ToArray();
                Assert.True(SameBits(sum, AttentionSoftmax.ExpShifted(vector, max, use512, use256)), $"sum, 512-bit {use512}");
                for (int i = 0; i < x.Length; i++)
                    Assert.True(SameBits(scalar[i], vector[i]), $"[{i}] of {x.Length}: {vector[i]:R}, scalar {scalar[i]:R} (512-bit {use512})");
            }
        });

    [Fact]
    public void Matches_the_double_reference() =>
        KernelGen.Check(Scores(), x =>
        {
            float[] actual = x.ToArray(), expected = x.ToArray();
            AttentionSoftmax.InPlace(actual, false);
            if (x.All(float.IsNegativeInfinity))
                expected.AsSpan().Fill(1f / x.Length);
            else
                Softmax.Reference(expected);
            // x − max rounds in float (up to 87·2^-24 relative error after exp), then a 2-ulp exp and the sum.
            for (int i = 0; i < x.Length; i++)
                Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-5f * expected[i] + 1e-37f, $"[{i}] {actual[i]:R}, reference {expected[i]:R}");
        });

    [Fact]
    public void Exp_is_within_two_ulp_down_to_underflow()
    {
        for (float x = 0; x >= -87f; x -= 0.000731f * (1 - x))
        {
            double expected = Math.Exp(x);
            float actual = AttentionSoftmax.Exp(x);
            Assert.True(Math.Abs(actual - expected) <= 2.5 * Math.ScaleB(1, Math.ILogB(expected) - 23), $"exp({x:R}) = {actual:R}, expected {expected:R}");
        }
        Assert.Equal(1f, AttentionSoftmax.Exp(0f));
        Assert.Equal(0f, AttentionSoftmax.Exp(float.NegativeInfinity));
        Assert.True(float.IsNaN(AttentionSoftmax.Exp(float.NaN)));
    }

    [Fact]
    public void Rounds_the_weights_to_F16_when_asked()
    {
        float[] x = Enumerable.Range(0, 37).Select(i => MathF.Sin(i)).ToArray(), rounded = x.ToArray();
        AttentionSoftmax.InPlace(x, false);
        AttentionSoftmax.InPlace(rounded, true);
        for (int i = 0; i < x.Length; i++)
            Assert.Equal(Float16.ToSingle(Float16.FromSingle(x[i])), rounded[i]);
    }
}

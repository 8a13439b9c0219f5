using FsCheck.Fluent;
using ManagedLM.Kernels;

namespace ManagedLM.Tests.Kernels;

public class BFloat16Tests
{
    [Theory]
    [InlineData(0x0000_0000u, 0x0000)] // +0
    [InlineData(0x8000_0000u, 0x8000)] // −0
    [InlineData(0x3F80_0000u, 0x3F80)] // 1
    [InlineData(0x3F80_8000u, 0x3F80)] // 1 + 2^-8: tie, to even (down)
    [InlineData(0x3F81_8000u, 0x3F82)] // tie, to even (up)
    [InlineData(0x3F80_8001u, 0x3F81)] // just above the tie
    [InlineData(0x3F80_7FFFu, 0x3F80)] // just below the tie
    [InlineData(0x7F7F_FFFFu, 0x7F80)] // float.MaxValue rounds to +∞
    [InlineData(0x7F80_0000u, 0x7F80)] // +∞
    [InlineData(0xFF80_0000u, 0xFF80)] // −∞
    [InlineData(0x0000_8000u, 0x0000)] // subnormal tie, to even: kept, not flushed
    [InlineData(0x0001_8000u, 0x0002)]
    [InlineData(0x0000_FFFFu, 0x0001)]
    [InlineData(0x8001_0000u, 0x8001)] // negative subnormal, exact
    [InlineData(0x007F_FFFFu, 0x0080)] // largest subnormal rounds into the normals
    [InlineData(0x7FC0_0000u, 0x7FC0)] // quiet NaN
    [InlineData(0x7F80_0001u, 0x7FC0)] // signaling NaN: quieted
    [InlineData(0xFF81_0000u, 0xFFC1)] // sign and top payload kept
    [InlineData(0x7FFF_FFFFu, 0x7FFF)] // NaN never rounds into the sign bit
    public void Rounds_as_ggml_compute_fp32_to_bf16(uint single, int bf16)
    {
        float value = BitConverter.UInt32BitsToSingle(single);
        Assert.Equal((ushort)bf16, BFloat16.FromSingle(value));
        var row = new ushort[19];
        BFloat16.FromSingle(Enumerable.Repeat(value, 19).ToArray(), row);
        Assert.All(row, h => Assert.Equal((ushort)bf16, h));
    }

    [Fact]
    public void Widening_puts_the_bits_on_top()
    {
        Assert.Equal(1f, BFloat16.ToSingle(0x3F80));
        Assert.Equal(-2f, BFloat16.ToSingle(0xC000));
        Assert.Equal(float.PositiveInfinity, BFloat16.ToSingle(0x7F80));
        Assert.Equal(0x0001_0000u, BitConverter.SingleToUInt32Bits(BFloat16.ToSingle(0x0001)));
    }

    [Fact]
    public void Random_finite_floats_round_to_the_nearest_bf16_ties_to_even() =>
        KernelGen.Check(Gen.Choose(int.MinValue, int.MaxValue).ToArbitrary(), bits =>
        {
            float value = BitConverter.Int32BitsToSingle(bits);
            ushort r = BFloat16.FromSingle(value);
            if (float.IsNaN(value))
            {
                Assert.True(float.IsNaN(BFloat16.ToSingle(r)));
                Assert.Equal(0x40, r & 0x40);
                return;
            }
            // Neighbours toward and away from zero bracket the value; r is the nearer one, the even one on a tie.
            // Past the largest finite bf16 the next step up is infinity, which stands at 2^128 for rounding.
            uint u = (uint)bits;
            ushort down = (ushort)(u >> 16), up = (ushort)(down + 1);
            double upValue = (up & 0x7FFF) == 0x7F80 ? Math.CopySign(Math.ScaleB(1.0, 128), value) : BFloat16.ToSingle(up);
            double toDown = Math.Abs((double)value - BFloat16.ToSingle(down)), toUp = Math.Abs((double)value - upValue);
            ushort expected = float.IsInfinity(value) ? down
                : toDown < toUp ? down : toUp < toDown ? up : (ushort)((down & 1) == 0 ? down : up);
            Assert.Equal(expected, r);
        });

    [Fact]
    public void Row_conversions_match_the_scalar_ones() =>
        HalfFormatChecks.RowsMatchScalar(BFloat16.FromSingle, BFloat16.ToSingle,
            (s, d) => BFloat16.FromSingle(s, d), (s, d) => BFloat16.ToSingle(s, d));

    [Fact]
    public void Dot_is_within_float_rounding_of_the_double_reference() =>
        HalfFormatChecks.DotMatchesReference(BFloat16.FromSingle, (a, x) => BFloat16.Dot(a, x), BFloat16.ToSingle);
}

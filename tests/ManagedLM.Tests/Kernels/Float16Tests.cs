using FsCheck.Fluent;
using ManagedLM.Kernels;

namespace ManagedLM.Tests.Kernels;

public class Float16Tests
{
    [Fact]
    public void Widening_every_half_matches_System_Half()
    {
        for (int h = 0; h < 65536; h++)
        {
            float ours = Float16.ToSingle((ushort)h);
            float expected = (float)BitConverter.UInt16BitsToHalf((ushort)h);
            if (float.IsNaN(expected))
            {
                // NaN keeps its sign and payload: the F16 mantissa moves to the top of the F32 one.
                uint bits = ((uint)(h & 0x8000) << 16) | 0x7F80_0000u | ((uint)(h & 0x3FF) << 13);
                Assert.Equal(bits, BitConverter.SingleToUInt32Bits(ours));
            }
            else
            {
                Assert.Equal(BitConverter.SingleToUInt32Bits(expected), BitConverter.SingleToUInt32Bits(ours));
            }
        }
    }

    [Fact]
    public void Every_non_NaN_half_survives_a_round_trip()
    {
        for (int h = 0; h < 65536; h++)
        {
            if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF) != 0)
                continue;
            Assert.Equal((ushort)h, Float16.FromSingle(Float16.ToSingle((ushort)h)));
        }
    }

    [Theory]
    [InlineData(0x0000_0000u, 0x0000)] // +0
    [InlineData(0x8000_0000u, 0x8000)] // −0
    [InlineData(0x3F80_0000u, 0x3C00)] // 1
    [InlineData(0xC000_0000u, 0xC000)] // −2
    [InlineData(0x3F80_1000u, 0x3C00)] // 1 + 2^-11: tie, to even (down)
    [InlineData(0x3F80_3000u, 0x3C02)] // 1 + 3·2^-11: tie, to even (up)
    [InlineData(0x3F80_1001u, 0x3C01)] // just above the tie
    [InlineData(0x477F_E000u, 0x7BFF)] // 65504, the largest half
    [InlineData(0x477F_EFFFu, 0x7BFF)] // just below 65520
    [InlineData(0x477F_F000u, 0x7C00)] // 65520 rounds to infinity
    [InlineData(0x7F7F_FFFFu, 0x7C00)] // float.MaxValue
    [InlineData(0x7F80_0000u, 0x7C00)] // +∞
    [InlineData(0xFF80_0000u, 0xFC00)] // −∞
    [InlineData(0x3880_0000u, 0x0400)] // 2^-14, smallest normal half
    [InlineData(0x387F_FFFFu, 0x0400)] // just below: rounds up into the normals
    [InlineData(0x387F_C000u, 0x03FF)] // 1023·2^-24, largest subnormal
    [InlineData(0x3380_0000u, 0x0001)] // 2^-24, smallest subnormal
    [InlineData(0x3300_0000u, 0x0000)] // 2^-25: tie between 0 and 1, to even
    [InlineData(0x3300_0001u, 0x0001)] // just above
    [InlineData(0x33C0_0000u, 0x0002)] // 3·2^-25: tie between 1 and 2, to even
    [InlineData(0x3420_0000u, 0x0002)] // 5·2^-25: tie between 2 and 3, to even
    [InlineData(0x0000_0001u, 0x0000)] // F32 subnormal
    [InlineData(0x8000_0001u, 0x8000)]
    public void Rounds_to_nearest_even_like_F16C(uint single, int half)
    {
        float value = BitConverter.UInt32BitsToSingle(single);
        Assert.Equal((ushort)half, Float16.FromSingle(value));
        Assert.Equal(BitConverter.HalfToUInt16Bits((Half)value), Float16.FromSingle(value));
        var row = new ushort[17];
        Float16.FromSingle(Enumerable.Repeat(value, 17).ToArray(), row);
        Assert.All(row, h => Assert.Equal((ushort)half, h));
    }

    [Theory]
    [InlineData(0x7FC0_0000u, 0x7E00)] // quiet NaN
    [InlineData(0xFFC0_0000u, 0xFE00)] // sign kept
    [InlineData(0x7F80_0001u, 0x7E00)] // signaling NaN: quieted, low payload bits dropped
    [InlineData(0x7FA0_0000u, 0x7F00)] // top payload bits kept
    public void NaN_is_quieted_and_keeps_its_top_payload_bits(uint single, int half)
    {
        float value = BitConverter.UInt32BitsToSingle(single);
        Assert.Equal((ushort)half, Float16.FromSingle(value));
        var row = new ushort[16];
        Float16.FromSingle(Enumerable.Repeat(value, 16).ToArray(), row);
        Assert.All(row, h => Assert.Equal((ushort)half, h));
    }

    [Fact]
    public void Random_floats_round_as_System_Half_does() =>
        KernelGen.Check(Gen.Choose(int.MinValue, int.MaxValue).ToArbitrary(), bits =>
        {
            float value = BitConverter.Int32BitsToSingle(bits);
            ushort ours = Float16.FromSingle(value);
            if (float.IsNaN(value))
                Assert.True(float.IsNaN(Float16.ToSingle(ours)));
            else
                Assert.Equal(BitConverter.HalfToUInt16Bits((Half)value), ours);
        });

    [Fact]
    public void Sweep_of_F32_patterns_rounds_as_System_Half_does()
    {
        foreach (float[] chunk in HalfFormatChecks.SweepChunks())
        {
            foreach (float value in chunk)
            {
                if (!float.IsNaN(value))
                    Assert.Equal(BitConverter.HalfToUInt16Bits((Half)value), Float16.FromSingle(value));
            }
        }
    }

    [Fact]
    public void Row_conversions_match_the_scalar_ones() =>
        HalfFormatChecks.RowsMatchScalar(Float16.FromSingle, Float16.ToSingle,
            (s, d) => Float16.FromSingle(s, d), (s, d) => Float16.ToSingle(s, d));

    [Fact]
    public void Rounding_a_row_equals_the_scalar_round_trip()
    {
        foreach (float[] chunk in HalfFormatChecks.SweepChunks())
        {
            var rounded = new float[chunk.Length];
            Float16.Round(chunk, rounded);
            for (int i = 0; i < chunk.Length; i++)
            {
                uint expected = BitConverter.SingleToUInt32Bits(Float16.ToSingle(Float16.FromSingle(chunk[i])));
                Assert.True(expected == BitConverter.SingleToUInt32Bits(rounded[i]), $"0x{BitConverter.SingleToUInt32Bits(chunk[i]):X8}");
            }
        }
    }

    [Fact]
    public void Widening_sixteen_at_a_time_matches_the_scalar_widening()
    {
        if (!System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated)
            return;
        var all = Enumerable.Range(0, 65536).Select(i => (ushort)i).ToArray();
        var wide = new float[16];
        for (int i = 0; i < all.Length; i += 16)
        {
            System.Runtime.Intrinsics.Vector512.CopyTo(Float16.Widen512(System.Runtime.Intrinsics.Vector256.Create<ushort>(all.AsSpan(i, 16))), wide);
            for (int j = 0; j < 16; j++)
                Assert.Equal(BitConverter.SingleToUInt32Bits(Float16.ToSingle(all[i + j])), BitConverter.SingleToUInt32Bits(wide[j]));
        }
    }

    [Fact]
    public void Dot_is_within_float_rounding_of_the_double_reference() =>
        HalfFormatChecks.DotMatchesReference(Float16.FromSingle, (a, x) => Float16.Dot(a, x), Float16.ToSingle);
}

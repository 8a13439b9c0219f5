using ManagedLM.Kernels.Quants;

namespace ManagedLM.Tests.Kernels;

public class KQuantsHelperTests
{
    [Fact]
    public void HalfToSingle_equals_the_Half_conversion_for_all_65536_values()
    {
        for (int bits = 0; bits <= ushort.MaxValue; bits++)
        {
            float expected = (float)BitConverter.UInt16BitsToHalf((ushort)bits);
            float actual = KQuants.HalfToSingle((ushort)bits);
            if (float.IsNaN(expected))
                Assert.True(float.IsNaN(actual), $"0x{bits:X4}");
            else
                Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(actual), $"0x{bits:X4}: {expected:R} vs {actual:R}");
        }
    }

    [Fact]
    public void NearestInt_rounds_half_to_even_like_ggml()
    {
        Assert.Equal(2, KQuants.NearestInt(2.5f));
        Assert.Equal(4, KQuants.NearestInt(3.5f));
        Assert.Equal(-2, KQuants.NearestInt(-2.5f));
        Assert.Equal(-3, KQuants.NearestInt(-2.6f));
        Assert.Equal(4194303, KQuants.NearestInt(4194303f));
        var rng = new Random(5);
        for (int i = 0; i < 10000; i++)
        {
            float x = (float)((rng.NextDouble() * 2 - 1) * 4e6);
            Assert.Equal((int)MathF.Round(x, MidpointRounding.ToEven), KQuants.NearestInt(x));
        }
    }
}

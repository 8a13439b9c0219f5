using ManagedLM.Kernels.Quants;

namespace ManagedLM.Tests.Kernels;

public class KQuantsHelperTests
{
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

using FsCheck;
using FsCheck.Fluent;
using ManagedLM.Kernels;

namespace ManagedLM.Tests.Kernels;

public class GeGluTests
{
    [Fact]
    public void Gelu_is_the_tanh_formula_rounded_through_f16_as_llama_cpp_tabulates_it() =>
        KernelGen.Check(Gen.Choose(-12_000_000, 12_000_000).Select(i => i / 1_000_000f).ToArbitrary(), g =>
        {
            float expected = g <= -10f ? 0f : g >= 10f ? g
                : Float16.ToSingle(Float16.FromSingle(GeGlu.Reference(Float16.ToSingle(Float16.FromSingle(g)))));
            Assert.Equal(expected, GeGlu.Gelu(g));
            // The table is the formula to F16 precision.
            Assert.True(Math.Abs(GeGlu.Gelu(g) - GeGlu.Reference(g)) <= 2e-3f * Math.Max(1f, Math.Abs(g)), $"gelu({g})");
        });

    [Fact]
    public void Apply_gates_up_by_gelu_of_gate_in_place()
    {
        float[] gate = [-11f, -1f, 0f, 0.5f, 3f, 12f], up = [2f, 2f, 2f, 2f, 2f, 0.5f];
        float[] expected = gate.Select((g, i) => GeGlu.Gelu(g) * up[i]).ToArray();
        GeGlu.Apply(gate, up, gate);
        Assert.Equal(expected, gate);
        Assert.Equal(0f, gate[0]);
        Assert.Equal(6f, gate[5]);
        Assert.Throws<ArgumentException>(() => GeGlu.Apply(new float[3], new float[2], new float[3]));
    }
}

public class RopeFrequenciesTests
{
    [Fact]
    public void Plain_and_linear_rope_match_the_inverse_frequency_angles()
    {
        var plain = RopeFrequencies.Create(64, 10000f, [], RopeScaling.None);
        var linear = RopeFrequencies.Create(64, 10000f, [], RopeScaling.None with { FrequencyScale = 0.25f });
        float[] cos = new float[32], sin = new float[32], cos2 = new float[32], sin2 = new float[32];
        var inverse = Rope.InverseFrequencies(64, 10000f, []);
        Rope.Angles(17, plain, cos, sin);
        Rope.Angles(17, 1f, inverse, cos2, sin2);
        Assert.Equal(cos2, cos);
        Assert.Equal(sin2, sin);
        Rope.Angles(17, linear, cos, sin);
        Rope.Angles(17, 0.25f, inverse, cos2, sin2);
        Assert.Equal(cos2, cos);
        Assert.Equal(sin2, sin);
    }

    [Fact]
    public void Yarn_mixes_extrapolated_and_interpolated_angles_over_the_correction_ramp()
    {
        // synth-llama-yarn's parameters (synthetic/README.md): 64 dims, base 500000, factor 4, original context 256:
        // correction range [0, 10], so ramp_i = 1 − clamp(i / 10, 0, 1), and cos, sin × (1 + 0.1 ln 4).
        var f = RopeFrequencies.Create(64, 500000f, [], new RopeScaling(0.25f, ExtrapolationFactor: 1, OriginalContext: 256));
        Assert.Equal(1f + 0.1f * MathF.Log(4f), f.Magnitude, 6);
        float[] cos = new float[32], sin = new float[32];
        Rope.Angles(100, f, cos, sin);
        for (int i = 0; i < 32; i++)
        {
            double ext = 100 * Math.Pow(500000, -2.0 * i / 64), ramp = 1 - Math.Clamp(i / 10.0, 0, 1);
            double theta = ext / 4 * (1 - ramp) + ext * ramp;
            Assert.Equal(Math.Cos(theta) * f.Magnitude, cos[i], 5);
            Assert.Equal(Math.Sin(theta) * f.Magnitude, sin[i], 5);
        }
    }
}

using FsCheck;
using FsCheck.Fluent;
using ManagedLM.Kernels;

namespace ManagedLM.Tests.Kernels;

/// <summary>RoPE and SwiGLU against double-precision references, over random shapes, values and tails.</summary>
public class ElementwiseKernelTests
{
    [Fact]
    public void Rope_rotates_each_pair_as_the_double_reference_in_both_layouts() =>
        KernelGen.Check((from heads in Gen.Choose(1, 4)
                         from halfDim in Gen.Choose(1, 40)
                         from rotHalf in Gen.Choose(1, 40)
                         from position in Gen.Choose(0, 100_000)
                         from neox in Gen.Elements(false, true)
                         from seed in Gen.Choose(0, int.MaxValue)
                         select (Heads: heads, HeadDim: 2 * halfDim, Half: Math.Min(rotHalf, halfDim), Position: position, NeoX: neox, Seed: seed)).ToArbitrary(), c =>
        {
            var rng = new Random(c.Seed);
            float[] x = Enumerable.Range(0, c.Heads * c.HeadDim).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
            float[] inv = Rope.InverseFrequencies(2 * c.Half, 10000f, []);
            float[] cos = new float[c.Half], sin = new float[c.Half];
            Rope.Angles(c.Position, 1f, inv, cos, sin);
            float[] y = x.ToArray();
            Rope.Apply(y, c.HeadDim, cos, sin, c.NeoX ? RopeLayout.NeoX : RopeLayout.Normal);
            for (int h = 0; h < c.Heads; h++)
            {
                int o = h * c.HeadDim;
                for (int i = 0; i < c.Half; i++)
                {
                    int a = o + (c.NeoX ? i : 2 * i), b = o + (c.NeoX ? i + c.Half : 2 * i + 1);
                    double angle = c.Position * (double)inv[i];
                    double ea = x[a] * Math.Cos(angle) - x[b] * Math.Sin(angle), eb = x[a] * Math.Sin(angle) + x[b] * Math.Cos(angle);
                    if (Math.Abs(y[a] - ea) > 1e-5 || Math.Abs(y[b] - eb) > 1e-5)
                        throw new Exception($"{c}: pair {i} of head {h}: ({y[a]}, {y[b]}) vs ({ea}, {eb})");
                }
                for (int d = 2 * c.Half; d < c.HeadDim; d++)
                {
                    int at = c.NeoX ? -1 : o + d; // NeoX rotates i and i+half of the rotated part only
                    if (at >= 0 && y[at] != x[at])
                        throw new Exception($"{c}: dimension {d} past the rotated part changed");
                }
            }
        });

    [Fact]
    public void SwiGlu_matches_the_reference_over_any_length() =>
        KernelGen.Check((from n in Gen.Choose(0, 70)
                         from seed in Gen.Choose(0, int.MaxValue)
                         select (N: n, Seed: seed)).ToArbitrary(), c =>
        {
            var rng = new Random(c.Seed);
            float[] gate = Enumerable.Range(0, c.N).Select(_ => (float)(rng.NextDouble() * 40 - 20)).ToArray();
            float[] up = Enumerable.Range(0, c.N).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
            float[] y = new float[c.N];
            SwiGlu.Apply(gate, up, y);
            for (int i = 0; i < c.N; i++)
            {
                double expected = gate[i] / (1 + Math.Exp(-gate[i])) * up[i];
                if (Math.Abs(y[i] - expected) > 1e-5 * Math.Abs(expected) + 1e-6)
                    throw new Exception($"{c}: element {i}: {y[i]} vs {expected}");
            }
        });

    [Fact]
    public void SwiGlu_refuses_mismatched_lengths() =>
        Assert.Throws<ArgumentException>(() => SwiGlu.Apply(new float[3], new float[4], new float[3]));
}

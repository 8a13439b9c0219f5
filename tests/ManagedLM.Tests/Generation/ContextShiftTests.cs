using ManagedLM.Generation;
using ManagedLM.Inference;
using ManagedLM.Kernels;
using ManagedLM.Model;
using ManagedLM.Sampling;

namespace ManagedLM.Tests.Generation;

/// <summary>
/// The context shift's cache: the kept rows untouched, the moved rows' values moved as they are and their keys what RoPE
/// gives at the new position (checked against a rotation computed independently, in double, from the absolute angles),
/// so the logits after a shift are those of a cache built that way. A layer's first keys and values depend only on the
/// token and its position, so there the shifted cache also equals a fresh prefill of the kept tokens.
/// </summary>
public class ContextShiftTests
{
    private static readonly int[] OnceUponATime = [1, 403, 407, 261, 378];

    // Keys after a shift vs the independent rotation: |Δ| ≤ KeyTolerance · max(1, |k|) (float angles vs double; seen ≤ 1e-6).
    private const float KeyTolerance = 2e-6f;
    // Logits after a shift vs a generator holding the independently rotated cache, F32 caches (seen ≤ 5e-6).
    private const float LogitTolerance = 1e-4f;

    /// <summary>A generator of context <paramref name="context"/> filled to the brim by a greedy continuation.</summary>
    private static Generator Full(TransformerModel model, int context, KvCacheType type = KvCacheType.F32)
    {
        var g = model.CreateGenerator(new GeneratorOptions { ContextLength = context, KvCacheType = type, Sampling = SamplingOptions.Greedy });
        var r = g.Complete(OnceUponATime, new GenerationOptions { MaxTokens = 10 * context, IgnoreEndOfGeneration = true });
        Assert.Equal(StopReason.ContextFull, r.StopReason);
        Assert.Equal(context, g.Position);
        return g;
    }

    private static (float[][][] Keys, float[][][] Values) Snapshot(KvCache cache, int length)
    {
        var keys = new float[cache.LayerCount][][];
        var values = new float[cache.LayerCount][][];
        for (int l = 0; l < cache.LayerCount; l++)
        {
            keys[l] = new float[length][];
            values[l] = new float[length][];
            for (int p = 0; p < length; p++)
            {
                keys[l][p] = new float[cache.RowLength];
                values[l][p] = new float[cache.RowLength];
                cache.ReadRow(l, p, keys[l][p], values[l][p]);
            }
        }
        return (keys, values);
    }

    // Rotates a roped key from position `from` to position `to`: undoes θ(from), applies θ(to), in double.
    private static float[] Rerope(float[] key, ModelConfig c, RopeFrequencies f, int from, int to)
    {
        var k = (float[])key.Clone();
        var inverse = f.Inverse;
        var scale = f.PositionScale;
        for (int h = 0; h < k.Length; h += c.HeadDim)
        {
            for (int i = 0; i < inverse.Length; i++)
            {
                int ia = c.RopeLayout == RopeLayout.Normal ? h + 2 * i : h + i;
                int ib = c.RopeLayout == RopeLayout.Normal ? h + 2 * i + 1 : h + i + inverse.Length;
                double a = k[ia], b = k[ib];
                double back = -(from * scale[i] * inverse[i]), forth = to * scale[i] * inverse[i];
                (a, b) = (a * Math.Cos(back) - b * Math.Sin(back), a * Math.Sin(back) + b * Math.Cos(back));
                (a, b) = (a * Math.Cos(forth) - b * Math.Sin(forth), a * Math.Sin(forth) + b * Math.Cos(forth));
                k[ia] = (float)a;
                k[ib] = (float)b;
            }
        }
        return k;
    }

    /// <summary>The cache a shift should leave: kept rows as they were, later rows moved down, keys re-roped (unless told not to).</summary>
    private static (float[][][] Keys, float[][][] Values) Expected(TransformerModel model, (float[][][] Keys, float[][][] Values) before,
        int keep, int discard, int length, int context, bool rotate = true)
    {
        var c = model.Config;
        int layers = before.Keys.Length;
        var keys = new float[layers][][];
        var values = new float[layers][][];
        for (int l = 0; l < layers; l++)
        {
            var f = model.Rope.For(model.Rope.VariantOf(l), context);
            keys[l] = new float[length - discard][];
            values[l] = new float[length - discard][];
            for (int p = 0; p < length - discard; p++)
            {
                int from = p < keep ? p : p + discard;
                values[l][p] = before.Values[l][from];
                keys[l][p] = p < keep || !rotate ? before.Keys[l][from] : Rerope(before.Keys[l][from], c, f, from, p);
            }
        }
        return (keys, values);
    }

    private static float MaxRelative(float[] expected, float[] actual)
    {
        float worst = 0;
        for (int i = 0; i < expected.Length; i++)
            worst = Math.Max(worst, Math.Abs(expected[i] - actual[i]) / Math.Max(1, Math.Abs(expected[i])));
        return worst;
    }

    private static float MaxAbs(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        float worst = 0;
        for (int i = 0; i < a.Length; i++)
            worst = Math.Max(worst, Math.Abs(a[i] - b[i]));
        return worst;
    }

    /// <summary>The logits after <paramref name="next"/> on a generator holding <paramref name="tokens"/> with exactly these cache rows.</summary>
    private static float[] LogitsWithCache(TransformerModel model, int context, KvCacheType type, IReadOnlyList<int> tokens,
        (float[][][] Keys, float[][][] Values) rows, int next)
    {
        using var g = model.CreateGenerator(new GeneratorOptions { ContextLength = context, KvCacheType = type });
        g.Prefill(tokens.ToArray());   // the history; its rows are replaced below
        for (int l = 0; l < rows.Keys.Length; l++)
            for (int p = 0; p < tokens.Count; p++)
                g.Cache.Write(l, p, rows.Keys[l][p], rows.Values[l][p]);
        return g.Step(next).ToArray();
    }

    // llama: normal pairs; qwen3: NeoX with q/k norms; gemma3: local and global RoPE per layer (linear scaling on the
    // global one) and a sliding window; YaRN and longrope: a magnitude on cos and sin that a moved key already carries;
    // longrope at 64 positions uses its short factors and at 256 its long ones, with partial rotary dims.
    [Theory]
    [InlineData("stories260K.gguf", 64)]
    [InlineData("synthetic/synth-qwen3-Q4_K_M.gguf", 64)]
    [InlineData("synthetic/synth-gemma3-Q8_0.gguf", 64)]
    [InlineData("synthetic/synth-llama-yarn-Q8_0.gguf", 64)]
    [InlineData("synthetic/synth-phi3-longrope-Q8_0.gguf", 64)]
    [InlineData("synthetic/synth-phi3-longrope-Q8_0.gguf", 256)]
    public void A_shift_moves_values_and_rerotates_keys_and_the_next_logits_follow_from_that_cache(string file, int context)
    {
        using var model = TransformerModel.Load(TestData.Model(file));
        using var g = Full(model, context);
        var before = Snapshot(g.Cache, context);
        int[] tokens = [.. g.Tokens];
        int keep = 5, discard = (context - keep) / 2;

        g.ShiftContext(keep, discard);

        Assert.Equal([.. tokens[..keep], .. tokens[(keep + discard)..]], g.Tokens);
        Assert.Equal(context - discard, g.Position);
        var after = Snapshot(g.Cache, g.Position);
        var expected = Expected(model, before, keep, discard, context, context);
        for (int l = 0; l < after.Keys.Length; l++)
        {
            // A sliding layer (gemma3's layer 0) keeps only its window: older positions read as zeros, which no query sees.
            for (int p = g.Cache.HeldFrom(l); p < g.Position; p++)
            {
                Assert.Equal(expected.Values[l][p], after.Values[l][p]);
                if (p < keep)
                    Assert.Equal(expected.Keys[l][p], after.Keys[l][p]);
                else
                    Assert.True(MaxRelative(expected.Keys[l][p], after.Keys[l][p]) <= KeyTolerance, $"layer {l} position {p}: {MaxRelative(expected.Keys[l][p], after.Keys[l][p])}");
            }
        }

        int next = 300;
        float[] shifted = g.Step(next).ToArray();
        float[] oracle = LogitsWithCache(model, context, KvCacheType.F32, g.Tokens.Take(g.Position - 1).ToArray(), expected, next);
        float gap = MaxAbs(oracle, shifted);
        Assert.True(gap <= LogitTolerance, $"max |Δlogit| {gap} after the shift");
        // The comparison has teeth: keys moved without their rotation give other logits.
        float[] unrotated = LogitsWithCache(model, context, KvCacheType.F32, g.Tokens.Take(g.Position - 1).ToArray(),
            Expected(model, before, keep, discard, context, context, rotate: false), next);
        Assert.True(MaxAbs(oracle, unrotated) > 100 * LogitTolerance, $"unrotated keys differ by only {MaxAbs(oracle, unrotated)}");
    }

    [Fact]
    public void The_first_layer_of_a_shifted_cache_equals_a_fresh_prefill_of_the_kept_tokens()
    {
        using var model = TransformerModel.Load(TestData.Model("stories260K.gguf"));
        using var g = Full(model, 64);
        g.ShiftContext(1, 31);
        using var fresh = model.CreateGenerator(new GeneratorOptions { ContextLength = 64, KvCacheType = KvCacheType.F32 });
        fresh.Prefill(g.Tokens.ToArray());
        var shifted = Snapshot(g.Cache, g.Position);
        var recomputed = Snapshot(fresh.Cache, fresh.Position);
        for (int p = 0; p < g.Position; p++)
        {
            Assert.Equal(recomputed.Values[0][p], shifted.Values[0][p]);
            Assert.True(MaxRelative(recomputed.Keys[0][p], shifted.Keys[0][p]) <= KeyTolerance, $"position {p}");
        }
        // Deeper layers saw the discarded tokens: there the moved rows differ from a fresh prefill (a shift approximates).
        Assert.NotEqual(recomputed.Values[1][20], shifted.Values[1][20]);
    }

    [Fact]
    public void An_F16_cache_shifts_within_its_rounding()
    {
        using var model = TransformerModel.Load(TestData.Model("stories260K.gguf"));
        using var g = Full(model, 64, KvCacheType.F16);
        var before = Snapshot(g.Cache, 64);
        g.ShiftContext(1, 31);
        var expected = Expected(model, before, 1, 31, 64, 64);
        var after = Snapshot(g.Cache, g.Position);
        for (int l = 0; l < after.Keys.Length; l++)
        {
            for (int p = 0; p < g.Position; p++)
            {
                Assert.Equal(expected.Values[l][p], after.Values[l][p]);   // F16 → F32 → F16 is exact
                Assert.True(MaxRelative(expected.Keys[l][p], after.Keys[l][p]) <= 1e-3f, $"layer {l} position {p}");   // F16's half ulp
            }
        }
    }

    [Fact]
    public void ShiftContext_checks_its_bounds()
    {
        using var model = TransformerModel.Load(TestData.Model("stories260K.gguf"));
        using var g = model.CreateGenerator(new GeneratorOptions { ContextLength = 64 });
        g.Prefill(OnceUponATime);
        Assert.Throws<ArgumentOutOfRangeException>("keep", () => g.ShiftContext(-1, 1));
        Assert.Throws<ArgumentOutOfRangeException>("keep", () => g.ShiftContext(6, 1));
        Assert.Throws<ArgumentOutOfRangeException>("discard", () => g.ShiftContext(1, 0));
        var e = Assert.Throws<ArgumentOutOfRangeException>("discard", () => g.ShiftContext(1, 5));
        Assert.Contains("[1, 4]", e.Message);
        g.ShiftContext(1, 4);   // everything after the BOS: nothing to move
        Assert.Equal([1], g.Tokens);
    }
}

using System.Runtime.InteropServices;
using ManagedLM.Kernels;
using ManagedLM.Kernels.Quants;

namespace ManagedLM.Tests.Kernels.Quants;

/// <summary>Blocks worked out by hand from ggml's formulas (quantize_row_*_ref, dequantize_row_*, vec_dot_*).</summary>
public class LegacyKnownAnswerTests
{
    [Fact]
    public void Q8_0_rounds_halves_away_from_zero()
    {
        // amax 127 → d = 1, 1/d = 1: q = roundf(x), where rint would give 0, 2 and −2 for 0.5, 2.5 and −2.5.
        float[] x = Block((0, 0.5f), (1, -0.5f), (2, 1.5f), (3, 2.5f), (4, -2.5f), (5, 126.4f), (6, -127f), (7, 0.49999997f), (8, 10f));
        byte[] expected = [0x00, 0x3C, .. Pad(32, 1, 0xFF, 2, 3, 0xFD, 126, 0x81, 0, 10)];
        Assert.Equal(expected, Quantized<Q8_0Block>(x));
        Assert.Equal(Block((0, 1), (1, -1), (2, 2), (3, 3), (4, -3), (5, 126), (6, -127), (8, 10)), Dequantized<Q8_0Block>(expected));
    }

    [Fact]
    public void Q8_0_rounds_every_half_away_from_zero_in_every_lane()
    {
        // 127 pins d = 1; the other 31 values are ±(k + ½), which roundf takes to ±(k + 1).
        float[] x = Enumerable.Range(0, 32).Select(j => j == 0 ? 127f : (j % 2 == 0 ? 1 : -1) * (j * 4 + 0.5f)).ToArray();
        byte[] expected = [0x00, 0x3C, .. x.Select(v => (byte)(sbyte)MathF.Round(v, MidpointRounding.AwayFromZero))];
        Assert.Equal((sbyte)-5, (sbyte)expected[3]); // x[1] = −4.5
        Assert.Equal(expected, Quantized<Q8_0Block>(x));
    }

    [Fact]
    public void Q8_0_scale_is_rounded_to_F16()
    {
        // d = 100/127 = 0.78740157 → F16 0x3A4D = 0.78759765625; the extreme comes back as 127·d.
        float[] x = Block((0, 100f), (1, -50f));
        byte[] q = Quantized<Q8_0Block>(x);
        Assert.Equal(new byte[] { 0x4D, 0x3A, 127, 0xC0 /* −50·127/100 → −64 */ }, q[..4]);
        Assert.Equal(100.02490234375f, Dequantized<Q8_0Block>(q)[0]);
        Assert.Equal(new byte[34], Quantized<Q8_0Block>(new float[32]));
    }

    [Fact]
    public void Q8_1_stores_the_scaled_sum()
    {
        float[] x = Block((0, 0.5f), (1, -0.5f), (2, 1.5f), (3, 2.5f), (4, -2.5f), (5, 126.4f), (6, -127f), (7, 0.49999997f), (8, 10f));
        // Σq = 1 − 1 + 2 + 3 − 3 + 126 − 127 + 0 + 10 = 11; s = F16(11·1) = 0x4980.
        byte[] expected = [0x00, 0x3C, 0x80, 0x49, .. Pad(32, 1, 0xFF, 2, 3, 0xFD, 126, 0x81, 0, 10)];
        Assert.Equal(expected, Quantized<Q8_1Block>(x));
    }

    [Fact]
    public void Q4_0_block()
    {
        // max (largest magnitude) = −8 → d = 1; q = min(15, trunc(x + 8.5)), zeros → 8.
        float[] x = Block((0, -8f), (1, 7.4f), (2, 0.5f), (3, -0.5f), (4, 0.49f), (16, 7f), (17, 6.5f));
        byte[] expected = [0x00, 0x3C, 0xF0, 0xFF, 0x89, .. Enumerable.Repeat((byte)0x88, 13)];
        Assert.Equal(expected, Quantized<Q4_0Block>(x));
        Assert.Equal(Block((0, -8), (1, 7), (2, 1), (16, 7), (17, 7)), Dequantized<Q4_0Block>(expected));
    }

    [Fact]
    public void Q4_0_positive_extreme_gives_a_negative_scale_and_clamps_its_opposite()
    {
        // max = 8 → d = −1: 8 → q 0 (value 8); −8 → 16.5 → clamped to 15 (value −7); 3 → 5 (value 3).
        float[] x = Block((0, 8f), (1, -8f), (2, 3f));
        byte[] q = Quantized<Q4_0Block>(x);
        Assert.Equal(new byte[] { 0x00, 0xBC, 0x80, 0x8F, 0x85 }, q[..5]);
        Assert.Equal(Block((0, 8), (1, -7), (2, 3)), Dequantized<Q4_0Block>(q));
    }

    [Fact]
    public void Q5_0_block()
    {
        // max = −16 → d = 1; q = min(31, trunc(x + 16.5)); fifth bits in qh, element j at bit j.
        float[] x = Block((0, -16f), (1, 15f), (2, 15.6f), (3, 0.5f), (16, -0.5f), (17, 3f));
        byte[] expected = [0x00, 0x3C, 0xFE, 0xFF, 0xFF, 0xFF, 0x00, 0x3F, 0x0F, 0x01, .. new byte[12]];
        Assert.Equal(expected, Quantized<Q5_0Block>(x));
        Assert.Equal(Block((0, -16), (1, 15), (2, 15), (3, 1), (17, 3)), Dequantized<Q5_0Block>(expected));
    }

    [Fact]
    public void Q4_1_block()
    {
        // min −1, max 14 → d = 1, m = −1; q = min(15, trunc(x + 1 + 0.5)).
        float[] x = Block((0, -1f), (1, 14f), (2, 0f), (3, 0.5f), (4, 0.49f), (16, 13.2f));
        for (int j = 5; j < 32; j++)
            if (j != 16)
                x[j] = 1;
        byte[] expected = [0x00, 0x3C, 0x00, 0xBC, 0xE0, 0x2F, 0x21, 0x22, 0x21, .. Enumerable.Repeat((byte)0x22, 11)];
        Assert.Equal(expected, Quantized<Q4_1Block>(x));
        float[] y = Dequantized<Q4_1Block>(expected);
        Assert.Equal([-1f, 14f, 0f, 1f, 0f, 1f], y[..6]);
        Assert.Equal(13f, y[16]);
    }

    [Fact]
    public void Q5_1_block()
    {
        // min 0, max 31 → d = 1, m = 0; q = trunc(x + 0.5).
        float[] x = Block((0, 0f), (1, 31f), (2, 16f), (3, 15.5f), (16, 17.49f));
        for (int j = 4; j < 32; j++)
            if (j != 16)
                x[j] = 5;
        byte[] expected = [0x00, 0x3C, 0x00, 0x00, 0x0E, 0x00, 0x01, 0x00, 0x10, 0x5F, 0x50, 0x50, .. Enumerable.Repeat((byte)0x55, 12)];
        Assert.Equal(expected, Quantized<Q5_1Block>(x));
        float[] y = Dequantized<Q5_1Block>(expected);
        Assert.Equal([0f, 31f, 16f, 16f, 5f], y[..5]);
        Assert.Equal(17f, y[16]);
    }

    [Fact]
    public void IQ4_NL_values_on_the_levels_come_back_exactly()
    {
        // x = level·c: indices are exact, and Σw·q·x / Σw·q² = c because every term scales by the same power of two.
        foreach (float c in new[] { 1f, -0.5f })
        {
            float[] x = Enumerable.Range(0, 32).Select(j => IQ4NLBlock.Values[j % 16] * c).ToArray();
            byte[] expected = [0, 0, .. Enumerable.Range(0, 16).Select(j => (byte)(j | (j << 4)))];
            MemoryMarshal.Write(expected, Float16.FromSingle(c));
            Assert.Equal(expected, Quantized<IQ4NLBlock>(x));
            Assert.Equal(x, Dequantized<IQ4NLBlock>(expected));
        }
        Assert.Equal(0xB800, Float16.FromSingle(-0.5f));
    }

    [Fact]
    public void IQ4_NL_takes_the_upper_level_at_a_midpoint_and_refits_the_scale()
    {
        // d₀ = −127/−127 = 1. −115.5 is the midpoint of −127 and −104: the upper level (index 1); 0 → level 1 (index 8).
        // Refit with w = x²: Σw·q·x = fl(260144640 + 160243088) = 420387712, Σw·q² = fl(260144640 + 144288144) = 404432768,
        // d = 1.03945… → F16 0x3C28 (1.0390625).
        float[] x = Block((0, -127f), (1, -115.5f));
        byte[] expected = [0x28, 0x3C, 0x80, 0x81, .. Enumerable.Repeat((byte)0x88, 14)];
        Assert.Equal(expected, Quantized<IQ4NLBlock>(x));
        Assert.Equal(1, IQ4NLBlock.NearestLevel(-115.5f));
        Assert.Equal(0, IQ4NLBlock.NearestLevel(-115.50001f));
        Assert.Equal(8, IQ4NLBlock.NearestLevel(0f));
        Assert.Equal(15, IQ4NLBlock.NearestLevel(1000f));
        Assert.Equal(0, IQ4NLBlock.NearestLevel(float.NaN));
    }

    [Fact]
    public void Q4_0_dot_with_a_Q8_0_activation()
    {
        // Weights of the Q4_0 block above: Σ(q − 8) = −8 + 7 + 1 + 7 + 7 = 14. Activation all ones: q = 127,
        // d = F16(1/127) = 0.00787353515625. Dot = 14·127·1·0.00787353515625 = 13.9991455078125 exactly.
        byte[] w = Quantized<Q4_0Block>(Block((0, -8f), (1, 7.4f), (2, 0.5f), (3, -0.5f), (4, 0.49f), (16, 7f), (17, 6.5f)));
        byte[] a = new byte[34];
        Quantize.Row(GgmlType.Q8_0, Enumerable.Repeat(1f, 32).ToArray(), a);
        Assert.Equal(0.00787353515625f, Float16.ToSingle(MemoryMarshal.Read<ushort>(a)));
        var blocks = MemoryMarshal.Cast<byte, Q4_0Block>(w);
        Assert.Equal(13.9991455078125f, Q4_0Block.Dot(blocks, a));
        Assert.Equal(13.9991455078125f, LegacyDot.SignedReference(blocks, a));
    }

    [Fact]
    public void Q4_1_dot_carries_the_offset_through_the_activation_sum()
    {
        // Weights d = 1, m = −1 with all quants 2 (values 1); activation all 0.5: q = 127, d = F16(0.5/127),
        // s = F16(32·127·d). Dot = Σ d_w·d_a·q_w·q_a + m·s = d_a·127·64 − s.
        float[] wx = Block((0, -1f), (1, 14f));
        for (int j = 2; j < 32; j++)
            wx[j] = 1;
        byte[] w = Quantized<Q4_1Block>(wx);
        byte[] a = new byte[36];
        Quantize.Row(GgmlType.Q8_1, Enumerable.Repeat(0.5f, 32).ToArray(), a);
        float da = Float16.ToSingle(MemoryMarshal.Read<ushort>(a)), s = Float16.ToSingle(MemoryMarshal.Read<ushort>(a.AsSpan(2)));
        Assert.Equal(Float16.FromSingle(32 * 127 * da), MemoryMarshal.Read<ushort>(a.AsSpan(2)));
        int sumi = 0 * 127 + 15 * 127 + 30 * 2 * 127;
        float expected = MathF.FusedMultiplyAdd(-1f, s, MathF.FusedMultiplyAdd(sumi, da, 0f));
        Assert.Equal(expected, Q4_1Block.Dot(MemoryMarshal.Cast<byte, Q4_1Block>(w), a));
    }

    /// <summary>32 values, zero except the listed (index, value) pairs.</summary>
    private static float[] Block(params (int Index, float Value)[] values)
    {
        var x = new float[32];
        foreach (var (i, v) in values)
            x[i] = v;
        return x;
    }

    /// <summary><paramref name="length"/> bytes: the given ones first, then zeros.</summary>
    private static byte[] Pad(int length, params byte[] bytes)
    {
        var b = new byte[length];
        bytes.CopyTo(b, 0);
        return b;
    }

    private static byte[] Quantized<T>(float[] x) where T : unmanaged, IQuantizableBlock<T>
    {
        var q = new T[x.Length / 32];
        T.Quantize(x, q);
        return MemoryMarshal.AsBytes<T>(q).ToArray();
    }

    private static float[] Dequantized<T>(byte[] bytes) where T : unmanaged, IQuantBlock<T>
    {
        var y = new float[bytes.Length / GgmlTypes.BlockBytes(T.Type) * 32];
        T.Dequantize(MemoryMarshal.Cast<byte, T>(bytes), y);
        return y;
    }
}

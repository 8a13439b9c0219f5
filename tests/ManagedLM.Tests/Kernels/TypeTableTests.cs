using ManagedLM.Kernels;

namespace ManagedLM.Tests.Kernels;

/// <summary>The type table: a row for every ggml type with ggml's geometry, and kernels exactly where ManagedLM has them.</summary>
public unsafe class TypeTableTests
{
    // ggml's type_traits (blck_size, type_size) for every type id ggml defines.
    private static readonly Dictionary<GgmlType, (int BlockSize, int BlockBytes)> Ggml = new()
    {
        [GgmlType.F32] = (1, 4), [GgmlType.F16] = (1, 2), [GgmlType.Q4_0] = (32, 18), [GgmlType.Q4_1] = (32, 20),
        [GgmlType.Q5_0] = (32, 22), [GgmlType.Q5_1] = (32, 24), [GgmlType.Q8_0] = (32, 34), [GgmlType.Q8_1] = (32, 36),
        [GgmlType.Q2_K] = (256, 84), [GgmlType.Q3_K] = (256, 110), [GgmlType.Q4_K] = (256, 144), [GgmlType.Q5_K] = (256, 176),
        [GgmlType.Q6_K] = (256, 210), [GgmlType.Q8_K] = (256, 292), [GgmlType.IQ2_XXS] = (256, 66), [GgmlType.IQ2_XS] = (256, 74),
        [GgmlType.IQ3_XXS] = (256, 98), [GgmlType.IQ1_S] = (256, 50), [GgmlType.IQ4_NL] = (32, 18), [GgmlType.IQ3_S] = (256, 110),
        [GgmlType.IQ2_S] = (256, 82), [GgmlType.IQ4_XS] = (256, 136), [GgmlType.I8] = (1, 1), [GgmlType.I16] = (1, 2),
        [GgmlType.I32] = (1, 4), [GgmlType.I64] = (1, 8), [GgmlType.F64] = (1, 8), [GgmlType.IQ1_M] = (256, 56),
        [GgmlType.BF16] = (1, 2), [GgmlType.TQ1_0] = (256, 54), [GgmlType.TQ2_0] = (256, 66), [GgmlType.MXFP4] = (32, 17),
    };

    // The activation form of each type that multiplies: ggml's vec_dot_type.
    private static readonly Dictionary<GgmlType, GgmlType> DotTypes = new()
    {
        [GgmlType.F32] = GgmlType.F32, [GgmlType.F16] = GgmlType.F16, [GgmlType.BF16] = GgmlType.BF16,
        [GgmlType.Q4_0] = GgmlType.Q8_0, [GgmlType.Q5_0] = GgmlType.Q8_0, [GgmlType.Q8_0] = GgmlType.Q8_0, [GgmlType.IQ4_NL] = GgmlType.Q8_0,
        [GgmlType.Q4_1] = GgmlType.Q8_1, [GgmlType.Q5_1] = GgmlType.Q8_1, [GgmlType.Q8_1] = GgmlType.Q8_1,
        [GgmlType.Q2_K] = GgmlType.Q8_K, [GgmlType.Q3_K] = GgmlType.Q8_K, [GgmlType.Q4_K] = GgmlType.Q8_K, [GgmlType.Q5_K] = GgmlType.Q8_K,
        [GgmlType.Q6_K] = GgmlType.Q8_K, [GgmlType.IQ4_XS] = GgmlType.Q8_K,
    };

    [Fact]
    public void Every_type_id_ggml_defines_has_its_geometry_and_no_other_id_is_known()
    {
        Assert.Equal(Ggml.Keys.Order(), Enum.GetValues<GgmlType>().Order());
        foreach (var (type, (blockSize, blockBytes)) in Ggml)
        {
            Assert.True(GgmlTypes.IsKnown((uint)type), $"{type}");
            Assert.Equal((blockSize, blockBytes), (GgmlTypes.BlockSize(type), GgmlTypes.BlockBytes(type)));
            Assert.Equal(type.ToString(), GgmlTypes.Name(type));
        }
        foreach (uint id in new uint[] { 4, 5, 31, 32, 33, 36, 37, 38, 40, 1000, uint.MaxValue })
        {
            Assert.False(GgmlTypes.IsKnown(id), $"id {id}");
            Assert.Equal($"type {id}", GgmlTypes.Name((GgmlType)id));
            var e = Assert.Throws<NotSupportedException>(() => GgmlTypes.BlockSize((GgmlType)id));
            Assert.Equal($"Unknown ggml type id {id}.", e.Message);
            Assert.False(MatVec.Supports((GgmlType)id) || Dequantize.Supports((GgmlType)id) || Quantize.Supports((GgmlType)id));
        }
    }

    [Fact]
    public void Exactly_the_types_with_kernels_multiply_and_each_takes_ggmls_activation_form()
    {
        foreach (var type in Enum.GetValues<GgmlType>())
        {
            Assert.True(DotTypes.ContainsKey(type) == MatVec.Supports(type), $"{type}");
            if (DotTypes.TryGetValue(type, out var dotType))
                Assert.Equal(dotType, MatVec.ActivationType(type));
            else
                Assert.Throws<NotSupportedException>(() => MatVec.ActivationType(type));
        }
        Assert.Equal(DotTypes.Values.Distinct().Order(), MatVec.ActivationTypes.ToArray().Order());
    }

    [Fact]
    public void Every_type_that_multiplies_and_Q8_K_dequantizes_and_quantizes()
    {
        foreach (var type in Enum.GetValues<GgmlType>())
        {
            bool expected = DotTypes.ContainsKey(type) || type == GgmlType.Q8_K;
            Assert.True(expected == Dequantize.Supports(type), $"{type} dequantize");
            Assert.True(expected == Quantize.Supports(type), $"{type} quantize");
        }
    }

    [Fact]
    public void Types_without_a_kernel_are_refused_by_name()
    {
        byte[] bytes = new byte[66];
        float[] values = new float[256];
        Assert.Equal("Dequantizing IQ2_XXS is not supported.", Assert.Throws<NotSupportedException>(() => Dequantize.Row(GgmlType.IQ2_XXS, bytes, values)).Message);
        Assert.Equal("Quantizing to IQ2_XXS is not supported.", Assert.Throws<NotSupportedException>(() => Quantize.Row(GgmlType.IQ2_XXS, values, bytes)).Message);
        fixed (byte* p = bytes)
        {
            byte* w = p;
            Assert.Equal("Matrix multiplication with Q8_K weights is not supported.",
                Assert.Throws<NotSupportedException>(() => MatVec.Rows(GgmlType.Q8_K, w, 292, 256, new byte[292], 0, new float[1])).Message);
            Assert.Equal("Matrix multiplication with IQ2_XXS weights is not supported.",
                Assert.Throws<NotSupportedException>(() => MatMul.Rows(GgmlType.IQ2_XXS, w, 66, 256, new byte[292], 292, 1, 0, 1, new float[1], 1)).Message);
        }
    }

    [Theory]
    [InlineData(GgmlType.F32)]
    [InlineData(GgmlType.F16)]
    [InlineData(GgmlType.Q4_0)]
    [InlineData(GgmlType.Q4_K)]
    public void A_matrix_vector_product_refuses_a_short_activation(GgmlType type)
    {
        const int Cols = 256;
        byte[] weights = new byte[GgmlTypes.RowBytes(type, Cols)];
        byte[] activation = new byte[MatVec.ActivationBytes(type, Cols) - 1];
        fixed (byte* p = weights)
        {
            byte* w = p;
            Assert.Throws<ArgumentException>(() => MatVec.Rows(type, w, weights.Length, Cols, activation, 0, new float[1]));
        }
    }
}

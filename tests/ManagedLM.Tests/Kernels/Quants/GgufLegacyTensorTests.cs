using ManagedLM.Gguf;
using ManagedLM.Kernels;

namespace ManagedLM.Tests.Kernels.Quants;

/// <summary>Byte-exact compatibility with the tensors llama.cpp wrote into the stories260K files.</summary>
public class GgufLegacyTensorTests
{
    /// <summary>Each file with the type most of its matrices have.</summary>
    public static TheoryData<string, GgmlType> Files => new()
    {
        { "stories260K-F16.gguf", GgmlType.F16 },
        { "stories260K-mix-Q4_0.gguf", GgmlType.Q4_0 },
        { "stories260K-mix-Q5_0.gguf", GgmlType.Q5_0 },
        { "stories260K-mix-Q8_0.gguf", GgmlType.Q8_0 },
    };

    /// <summary>
    /// llama.cpp made these files from the F32 weights of stories260K.gguf with its reference quantizers
    /// (<c>quantize_row_*_ref</c>, F32→F16 by round-to-nearest-even): ours must give the very same bytes.
    /// </summary>
    [Theory]
    [MemberData(nameof(Files))]
    public void Quantizing_the_F32_weights_gives_the_file_bytes(string file, GgmlType mainType)
    {
        using var original = GgufFile.Open(TestData.Model("stories260K.gguf"));
        using var gguf = GgufFile.Open(TestData.Model(file));
        var types = new List<GgmlType>();
        foreach (var t in gguf.Tensors.Where(t => t.Type != GgmlType.F32))
        {
            var source = original.GetTensor(t.Name);
            Assert.Equal(GgmlType.F32, source.Type);
            float[] weights = new float[source.ElementCount];
            Dequantize.Row(GgmlType.F32, original.GetTensorData(source), weights);
            byte[] ours = new byte[t.ByteSize];
            Quantize.Row(t.Type, weights, ours);
            AssertSameBytes(gguf.GetTensorData(t), ours, t);
            types.Add(t.Type);
        }
        Assert.True(types.Count(t => t == mainType) >= 5, $"{file}: {types.Count(t => t == mainType)} {mainType} tensors");
    }

    /// <summary>
    /// Dequantizing a tensor and quantizing the values again gives back the file's bytes, row by row. This holds
    /// for F16 (exact widening) and for Q4_0/Q5_0/Q8_0: the block's extreme value dequantizes to exactly
    /// ±qmax·d, so the re-derived scale is d itself and every value lies on its own level (see the type tests
    /// for Q4_1, Q5_1 and IQ4_NL, and for Q8_1 whose S field is the one part that does not come back).
    /// </summary>
    [Theory]
    [MemberData(nameof(Files))]
    public void Dequantizing_and_requantizing_every_tensor_gives_the_file_bytes(string file, GgmlType mainType)
    {
        using var gguf = GgufFile.Open(TestData.Model(file));
        var types = new HashSet<GgmlType>();
        foreach (var t in gguf.Tensors.Where(t => t.Type != GgmlType.F32))
        {
            int cols = (int)t.Columns;
            long rowBytes = GgmlTypes.RowBytes(t.Type, cols);
            ReadOnlySpan<byte> data = gguf.GetTensorData(t);
            float[] row = new float[cols];
            byte[] again = new byte[rowBytes];
            for (long r = 0; r < t.Rows; r++)
            {
                ReadOnlySpan<byte> stored = data.Slice((int)(r * rowBytes), (int)rowBytes);
                Dequantize.Row(t.Type, stored, row);
                Assert.All(row, v => Assert.True(float.IsFinite(v)));
                Quantize.Row(t.Type, row, again);
                AssertSameBytes(stored, again, t, r);
            }
            types.Add(t.Type);
        }
        Assert.Contains(mainType, types);
    }

    private static void AssertSameBytes(ReadOnlySpan<byte> expected, ReadOnlySpan<byte> actual, GgufTensorInfo t, long row = -1)
    {
        int i = 0;
        while (i < expected.Length && expected[i] == actual[i])
            i++;
        Assert.True(i == expected.Length && expected.Length == actual.Length,
            $"{t}{(row >= 0 ? $" row {row}" : "")}: first difference at byte {i} of {expected.Length}");
    }
}

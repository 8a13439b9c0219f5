using ManagedLM.Gguf;
using ManagedLM.Kernels;

namespace ManagedLM.Tests.Gguf;

/// <summary>Malformed files raise <see cref="GgufFormatException"/> (offset and what was expected) and nothing else.</summary>
public class GgufMalformedTests
{
    private static readonly Action<RawGguf> OneKv = g => g.Key("a", GgufValueType.UInt32).U32(7);
    private static readonly Action<RawGguf> NoKv = _ => { };
    private static readonly Action<RawGguf> OneTensor = g => g.TensorInfo("t", GgmlType.F32, 0, 4);
    private static readonly Action<RawGguf> NoTensor = _ => { };

    /// <summary>Header, key/values, tensor infos, padding to 32 and <paramref name="dataBytes"/> of data.</summary>
    private static byte[] Build(ulong kvCount, Action<RawGguf> kvs, ulong tensorCount, Action<RawGguf> infos, int dataBytes = 32)
    {
        var g = new RawGguf().Header(tensorCount, kvCount);
        kvs(g);
        infos(g);
        if (tensorCount > 0)
            g.PadTo(32).Zeros(dataBytes);
        return g.ToArray();
    }

    // One uint32 "a" = 7 and one F32 tensor "t" of 4 elements. Byte offsets: 0 magic, 4 version, 8 tensor count,
    // 16 key/value count, 24 key length, 32 key, 33 value type, 37 value, 41 tensor name length, 50 dimension count,
    // 54 ne0, 62 tensor type, 66 tensor offset, 74 end of infos, 96 data section, 128 end.
    private static byte[] Valid() => Build(1, OneKv, 1, OneTensor);

    private static byte[] Patched(int at, params byte[] bytes)
    {
        byte[] file = Valid();
        bytes.CopyTo(file, at);
        return file;
    }

    private static byte[] Nested(int depth)
    {
        var g = new RawGguf().Header(0, 1).Key("deep", GgufValueType.Array);
        for (int i = 1; i < depth; i++)
            g.ArrayOf(GgufValueType.Array, 1);
        return g.ArrayOf(GgufValueType.UInt8, 1).U8(0).ToArray();
    }

    public static TheoryData<string, byte[], long, string> Cases() => new()
    {
        { "empty file", [], 0, "expected magic \"GGUF\" (4 bytes), but the file ends at byte 0" },
        { "wrong magic", Patched(0, (byte)'G', (byte)'G', (byte)'M', (byte)'L'), 0, "expected magic \"GGUF\" (0x46554747), found 0x4C4D4747" },
        { "version 1", Patched(4, 1, 0, 0, 0), 4, "expected version 2 or 3, found 1" },
        { "version 4", Patched(4, 4, 0, 0, 0), 4, "expected version 2 or 3, found 4" },
        { "big-endian", Patched(4, 0, 0, 0, 3), 4, "(a big-endian GGUF file, which is not supported)" },
        { "truncated in the header", Valid()[..12], 8, "expected tensor count (8 bytes), but the file ends at byte 12" },
        { "truncated in a key", Build(1, g => g.Key("general.architecture", GgufValueType.String).Str("llama"), 0, NoTensor)[..37], 24, "metadata key length 20 runs past the end of the file (5 bytes left)" },
        { "truncated in a key length", Build(2, g => g.Key("general.architecture", GgufValueType.String).Str("llama").Key("b", GgufValueType.UInt8).U8(1), 0, NoTensor)[..72], 69, "expected metadata key length (8 bytes), but the file ends at byte 72" },
        { "truncated in a value", Valid()[..39], 37, "expected uint32 value (4 bytes), but the file ends at byte 39" },
        { "truncated in a tensor info", Valid()[..70], 66, "expected tensor data offset (8 bytes), but the file ends at byte 70" },
        { "truncated before a tensor info", Valid()[..60], 8, "tensor count 1 is larger than the rest of the file can hold (at most 0): a corrupt count or a truncated file" },
        { "truncated before the data section", Valid()[..80], 80, "expected the data section at byte 96 (after padding to 32), but the file ends at byte 80" },
        { "truncated in tensor data", Valid()[..100], 41, "tensor \"t\": data [0, 0+16) lies outside the data section of 4 bytes" },
        { "key/value count larger than the file", Patched(16, 255, 255, 255, 255, 255, 255, 255, 255), 16, "metadata key/value count 18446744073709551615 is larger than the rest of the file can hold" },
        { "tensor count larger than the file", Patched(8, 0, 0, 0, 0, 1, 0, 0, 0), 8, "tensor count 4294967296 is larger than the rest of the file can hold (at most 3)" },
        { "key length larger than the file", Patched(24, 0xE8, 3, 0, 0, 0, 0, 0, 0), 24, "metadata key length 1000 runs past the end of the file (96 bytes left)" },
        { "string value length larger than the file", Build(1, g => g.Key("s", GgufValueType.String).U64(ulong.MaxValue), 0, NoTensor), 37, "string value length 18446744073709551615 runs past the end of the file" },
        { "array length larger than the file", Build(1, g => g.Key("u", GgufValueType.Array).ArrayOf(GgufValueType.UInt32, 1UL << 40), 0, NoTensor), 41, "array length 1099511627776 is larger than the rest of the file can hold (at most 0)" },
        { "tensor data outside the file", Build(1, OneKv, 1, g => g.TensorInfo("t", GgmlType.F32, 1UL << 40, 4)), 41, "data [1099511627776, 1099511627776+16) lies outside the data section of 32 bytes" },
        { "tensor offset above 2^63", Build(1, OneKv, 1, g => g.TensorInfo("t", GgmlType.F32, 1UL << 63, 4)), 66, "data offset 9223372036854775808 is out of range" },
        { "misaligned tensor", Build(1, OneKv, 1, g => g.TensorInfo("t", GgmlType.F32, 8, 4)), 41, "tensor \"t\": data offset 8 is not a multiple of the alignment 32" },
        { "overlapping tensors", Build(0, NoKv, 2, g => g.TensorInfo("a", GgmlType.F32, 0, 16).TensorInfo("b", GgmlType.F32, 32, 16), 128), 128, "tensor \"b\" overlaps tensor \"a\"" },
        { "removed tensor type id", Patched(62, 4, 0, 0, 0), 62, "tensor \"t\": unknown tensor type id 4" },
        { "unknown tensor type id", Patched(62, 99, 0, 0, 0), 62, "tensor \"t\": unknown tensor type id 99" },
        { "unknown value type", Patched(33, 13, 0, 0, 0), 33, "expected metadata value type 0..12, found 13" },
        { "unknown array element type", Build(1, g => g.Key("u", GgufValueType.Array).ArrayOf((GgufValueType)99, 0), 0, NoTensor), 37, "expected array element type 0..12, found 99" },
        { "dimension product overflows", Build(0, NoKv, 1, g => g.TensorInfo("t", GgmlType.F32, 0, 1UL << 32, 1UL << 32)), 24, "tensor \"t\": element count of shape [4294967296, 4294967296] overflows" },
        { "byte size overflows", Build(0, NoKv, 1, g => g.TensorInfo("t", GgmlType.F32, 0, 1UL << 62)), 24, "tensor \"t\": byte size of shape [4611686018427387904] overflows" },
        { "dimension above 2^63", Build(0, NoKv, 1, g => g.TensorInfo("t", GgmlType.F32, 0, ulong.MaxValue)), 37, "tensor \"t\": dimension 0 is 18446744073709551615, larger than 2^63-1" },
        { "five dimensions", Build(0, NoKv, 1, g => g.TensorInfo("t", GgmlType.F32, 0, 1, 1, 1, 1, 1)), 33, "tensor \"t\": expected at most 4 dimensions, found 5" },
        { "row not whole blocks", Build(0, NoKv, 1, g => g.TensorInfo("t", GgmlType.Q4_0, 0, 33)), 24, "row length 33 is not a multiple of the Q4_0 block size 32" },
        { "alignment 0", Build(1, g => g.Key("general.alignment", GgufValueType.UInt32).U32(0), 0, NoTensor), 49, "expected general.alignment to be a power of two, found 0" },
        { "alignment 48", Build(1, g => g.Key("general.alignment", GgufValueType.UInt32).U32(48), 0, NoTensor), 49, "expected general.alignment to be a power of two, found 48" },
        { "alignment of another type", Build(1, g => g.Key("general.alignment", GgufValueType.Int32).U32(32), 0, NoTensor), 49, "expected general.alignment to be a uint32, found Int32" },
        { "duplicate key", Build(2, g => { OneKv(g); OneKv(g); }, 0, NoTensor), 41, "duplicate metadata key \"a\"" },
        { "duplicate tensor name", Build(0, NoKv, 2, g => { OneTensor(g); g.TensorInfo("t", GgmlType.F32, 32, 4); }, 64), 57, "duplicate tensor name \"t\"" },
        { "invalid bool", Build(1, g => g.Key("b", GgufValueType.Bool).U8(2), 0, NoTensor), 37, "expected a bool (0 or 1), found 2" },
        { "invalid bool in an array", Build(1, g => g.Key("b", GgufValueType.Array).ArrayOf(GgufValueType.Bool, 2).U8(1).U8(0xFF), 0, NoTensor), 50, "expected a bool (0 or 1), found 255" },
        { "arrays nested too deep", Nested(GgufFile.MaxArrayNesting + 1), 24 + 8 + 4 + 4 + 12 * GgufFile.MaxArrayNesting, "arrays nested deeper than 8 levels" },
        { "key not UTF-8", Build(1, g => g.Str([0x61, 0xC3, 0x28]).U32((uint)GgufValueType.UInt8).U8(0), 0, NoTensor), 32, "metadata key is not valid UTF-8" },
        { "tensor name not UTF-8", Build(0, NoKv, 1, g => g.Str([0xFF]).U32(1).U64(4).U32(0).U64(0)), 32, "tensor name is not valid UTF-8" },
    };

    [Fact]
    public void The_base_file_of_the_cases_is_valid()
    {
        using var f = GgufFile.Parse(Valid());
        Assert.Equal(7u, f.Metadata.Get("a").Value);
        Assert.Equal(96, f.DataOffset);
        Assert.Equal(16, f.GetTensorData(f.GetTensor("t")).Length);
        using var deepest = GgufFile.Parse(Nested(GgufFile.MaxArrayNesting));
        Assert.Equal(GgufValueType.Array, deepest.Metadata.Get("deep").AsArray!.ElementType);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Malformed_file_names_the_offset_and_what_was_expected(string description, byte[] file, long offset, string expected)
    {
        var ex = Assert.Throws<GgufFormatException>(() => GgufFile.Parse(file).Dispose());
        Assert.True(ex.Message.Contains(expected, StringComparison.Ordinal), $"{description}: {ex.Message}");
        Assert.Equal(offset, ex.Offset);
        Assert.StartsWith($"Invalid GGUF at byte {offset}: ", ex.Message);
    }

    [Fact]
    public void Metadata_accessors_of_the_wrong_type_raise_GgufFormatException()
    {
        var metadata = new List<KeyValuePair<string, GgufValue>>
        {
            KeyValuePair.Create("u32", GgufValue.Of(7u)),
            KeyValuePair.Create("u64.big", GgufValue.Of(ulong.MaxValue)),
            KeyValuePair.Create("i64.big", GgufValue.Of(1L << 40)),
            KeyValuePair.Create("s", GgufValue.Of("text")),
            KeyValuePair.Create("u8", GgufValue.Of((byte)1)),
            KeyValuePair.Create("uints", GgufValue.Of(GgufArray.Of(new[] { 1u, 3_000_000_000u }))),
            KeyValuePair.Create("strings", GgufValue.Of(GgufArray.Of(new[] { "a" }))),
            KeyValuePair.Create("nested", GgufValue.Of(GgufArray.Of(new[] { GgufArray.Of(new[] { 1 }) }))),
        };
        using var f = GgufFile.Parse(GgufWriter.ToBytes(metadata, []));
        var m = f.Metadata;
        Assert.Contains("\"uints\" should be an array of Int32, found an array of UInt32", Assert.Throws<GgufFormatException>(() => m.GetArray<int>("uints")).Message);
        Assert.Throws<GgufFormatException>(() => m.GetArrayOrNull<object>("strings"));
        Assert.Throws<GgufFormatException>(() => m.GetArray<string>("s"));
        Assert.Contains("\"u32\" should be a string, found UInt32", Assert.Throws<GgufFormatException>(() => m.GetString("u32")).Message);
        Assert.Contains("should be an integer", Assert.Throws<GgufFormatException>(() => m.GetInt64("u64.big")).Message);
        Assert.Contains("= 1099511627776 is outside [-2147483648, 2147483647]", Assert.Throws<GgufFormatException>(() => m.GetInt32("i64.big")).Message);
        Assert.Throws<GgufFormatException>(() => m.GetInt32OrNull("s"));
        Assert.Throws<GgufFormatException>(() => m.GetSingle("s"));
        Assert.Throws<GgufFormatException>(() => m.GetSingle("u64.big"));
        Assert.Throws<GgufFormatException>(() => m.GetBoolean("u8", false));
        Assert.Throws<GgufFormatException>(() => m.GetInt32ArrayOrNull("strings"));
        Assert.Throws<GgufFormatException>(() => m.GetInt32ArrayOrNull("nested"));
        Assert.Contains("with int32 values", Assert.Throws<GgufFormatException>(() => m.GetInt32ArrayOrNull("uints")).Message);
        Assert.Contains("missing required metadata key \"absent\"", Assert.Throws<GgufFormatException>(() => m.Get("absent")).Message);
        Assert.Equal(7, m.GetInt32("u32"));
        Assert.Equal(7f, m.GetSingle("u32"));
        Assert.Equal(["a"], m.GetArray<string>("strings"));
        Assert.Equal(new uint[] { 1, 3_000_000_000 }, m.GetArray<uint>("uints"));
    }

    [Fact]
    public void Tensor_pointers_are_only_given_for_the_files_own_tensors()
    {
        using var a = GgufFile.Parse(Valid());
        using var b = GgufFile.Parse(Build(0, NoKv, 1, g => g.TensorInfo("t", GgmlType.F32, 0, 8)));
        var ex = Assert.Throws<ArgumentException>(() => a.GetTensorData(b.GetTensor("t")).Length);
        Assert.Contains("does not belong to this file", ex.Message);
    }

    // Cut every shared file at 64 points spread over the header, key/values, tensor infos and data: a cut
    // before the end of the last tensor's data is rejected with GgufFormatException; a cut in the trailing
    // padding loses nothing and is accepted (as llama.cpp accepts it).
    [Theory]
    [MemberData(nameof(SharedGgufFiles.Names), MemberType = typeof(SharedGgufFiles))]
    public void Truncated_shared_file_is_rejected(string relative)
    {
        byte[] bytes = SharedGgufFiles.Bytes(relative);
        long kvEnd, infosEnd, needed;
        using (var full = GgufFile.Parse(bytes))
        {
            kvEnd = full.TensorInfosOffset;
            infosEnd = full.TensorInfosEnd;
            needed = Math.Max(infosEnd, full.Tensors.Select(t => t.FileOffset + t.ByteSize).DefaultIfEmpty(0).Max());
        }
        bool hasData = infosEnd < bytes.Length;
        var cuts = new SortedSet<long> { 0, 1, 3, 4, 7, 8, 16, 23 };
        Spread(cuts, 24, kvEnd, hasData ? 24 : 48);
        Spread(cuts, kvEnd, infosEnd, 8);
        if (hasData)
        {
            Spread(cuts, infosEnd, bytes.Length, 23);
            cuts.Add(needed - 1);
        }
        Assert.InRange(cuts.Count, 48, 64);

        int rejected = 0;
        foreach (long cut in cuts)
        {
            var truncated = bytes.AsMemory(0, (int)cut);
            if (cut < needed)
            {
                var ex = Assert.Throws<GgufFormatException>(() => GgufFile.Parse(truncated).Dispose());
                Assert.InRange(ex.Offset, 0, cut);
                rejected++;
            }
            else
            {
                using var f = GgufFile.Parse(truncated);
                AssertTensorsInBounds(f);
            }
        }
        Assert.True(rejected >= 48, $"{relative}: only {rejected} cuts were inside the file's content");
    }

    private static void Spread(SortedSet<long> points, long from, long to, int count)
    {
        for (int i = 0; i < count && to > from; i++)
            points.Add(from + (to - from) * i / count);
    }

    private static void AssertTensorsInBounds(GgufFile f)
    {
        foreach (var t in f.Tensors)
        {
            Assert.InRange(t.FileOffset, f.DataOffset, f.FileSize);
            Assert.InRange(t.ByteSize, 0, f.FileSize - t.FileOffset);
            var data = f.GetTensorData(t);
            if (data.Length > 0)
                Assert.True(data[0] + data[^1] >= 0);
        }
    }

    // Seeded mutations of the header, key/value and tensor-info bytes: every parse either succeeds with all
    // tensor data inside the file (and accessors failing only with GgufFormatException) or throws GgufFormatException.
    [Theory]
    [MemberData(nameof(SharedGgufFiles.Names), MemberType = typeof(SharedGgufFiles))]
    public void Mutated_shared_file_parses_or_raises_GgufFormatException(string relative)
    {
        byte[] bytes = SharedGgufFiles.Bytes(relative).ToArray();
        long kvEnd, infosEnd;
        long[] valueOffsets;
        using (var full = GgufFile.Parse(bytes))
        {
            kvEnd = full.TensorInfosOffset;
            infosEnd = full.TensorInfosEnd;
            valueOffsets = full.Metadata.Select(e => e.Offset).ToArray();
        }
        int cases = SharedGgufFiles.IsLarge(relative) ? 24 : 400;
        var rng = new Random(relative.Length * 7919 + relative[^6]);
        int accepted = 0, rejected = 0;
        for (int c = 0; c < cases; c++)
        {
            var saved = new List<(int At, byte[] Original)>();
            var described = new List<string>();
            int mutations = 1 + rng.Next(3);
            for (int m = 0; m < mutations; m++)
            {
                int at = (int)PickPosition(rng, kvEnd, infosEnd, valueOffsets);
                described.Add(Mutate(rng, bytes, at, saved));
            }
            try
            {
                using var f = GgufFile.Parse(bytes);
                AssertTensorsInBounds(f);
                ExerciseAccessors(f.Metadata, rng);
                accepted++;
            }
            catch (GgufFormatException ex)
            {
                Assert.InRange(ex.Offset, 0, bytes.Length);
                rejected++;
            }
            catch (Exception ex)
            {
                Assert.Fail($"{relative} case {c} ({string.Join("; ", described)}): {ex}");
            }
            for (int i = saved.Count - 1; i >= 0; i--)
                saved[i].Original.CopyTo(bytes, saved[i].At);
        }
        Assert.True(accepted > 0 && rejected > 0, $"{relative}: {accepted} accepted, {rejected} rejected");
    }

    private static long PickPosition(Random rng, long kvEnd, long infosEnd, long[] valueOffsets)
    {
        int region = rng.Next(10);
        if (region == 0)
            return rng.Next(24);
        if (region <= 3 && valueOffsets.Length > 0)
            return Math.Clamp(valueOffsets[rng.Next(valueOffsets.Length)] + rng.Next(-16, 24), 0, infosEnd - 1);
        if (region <= 6 || infosEnd == kvEnd)
            return rng.NextInt64(24, kvEnd);
        return rng.NextInt64(kvEnd, infosEnd);
    }

    private static readonly ulong[] HugeValues = [ulong.MaxValue, long.MaxValue, 1UL << 63, 1UL << 40, 1UL << 32, uint.MaxValue, 0x7FFF_FFFF];

    private static string Mutate(Random rng, byte[] bytes, int at, List<(int, byte[])> saved)
    {
        int kind = rng.Next(6);
        int width = kind switch { 4 => 8, 5 => 4, _ => 1 };
        at = Math.Min(at, bytes.Length - width);
        saved.Add((at, bytes.AsSpan(at, width).ToArray()));
        var span = bytes.AsSpan(at, width);
        switch (kind)
        {
            case 0: span[0] ^= (byte)(1 << rng.Next(8)); return $"flip bit at {at}";
            case 1: span[0] = (byte)rng.Next(256); return $"random byte at {at}";
            case 2: span[0] = 0xFF; return $"0xFF at {at}";
            case 3: span[0] = 0; return $"0x00 at {at}";
            case 4:
            {
                ulong v = rng.Next(3) == 0 ? (ulong)rng.NextInt64() : HugeValues[rng.Next(HugeValues.Length)];
                BitConverter.TryWriteBytes(span, v);
                return $"u64 {v} at {at}";
            }
            default:
            {
                uint v = rng.Next(2) == 0 ? (uint)rng.Next(48) : (uint)HugeValues[rng.Next(HugeValues.Length)];
                BitConverter.TryWriteBytes(span, v);
                return $"u32 {v} at {at}";
            }
        }
    }

    // One accessor per entry, picked at random: each may fail, but only with GgufFormatException.
    private static void ExerciseAccessors(GgufMetadata m, Random rng)
    {
        foreach (var e in m)
        {
            try
            {
                _ = rng.Next(7) switch
                {
                    0 => m.GetString(e.Key).Length,
                    1 => m.GetInt32(e.Key),
                    2 => m.GetInt64(e.Key),
                    3 => m.GetSingle(e.Key),
                    4 => m.GetArray<string>(e.Key).Length,
                    5 => m.GetInt32ArrayOrNull(e.Key)?.Length ?? 0,
                    _ => e.Value.Describe().Length,
                };
            }
            catch (GgufFormatException)
            {
            }
        }
    }
}

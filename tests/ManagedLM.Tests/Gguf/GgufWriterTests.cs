using FsCheck;
using FsCheck.Fluent;
using ManagedLM.Gguf;
using ManagedLM.Kernels;

namespace ManagedLM.Tests.Gguf;

public class GgufWriterTests
{
    private static KeyValuePair<string, GgufValue> Kv(string key, GgufValue value) => KeyValuePair.Create(key, value);

    private static GgufFile ReadBack(IEnumerable<KeyValuePair<string, GgufValue>> metadata, params (GgufTensorSpec, byte[])[] tensors) =>
        GgufFile.Parse(GgufWriter.ToBytes(metadata, tensors));

    private static byte[] Pattern(long length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    // All shared files were written by gguf-py (the vocab-only ones without tensors, so unpadded at the end),
    // which lays files out as GgufWriter does: each copies byte for byte.
    [Theory]
    [MemberData(nameof(SharedGgufFiles.Names), MemberType = typeof(SharedGgufFiles))]
    public void Shared_file_copies_byte_for_byte(string relative)
    {
        byte[] original = SharedGgufFiles.Bytes(relative);
        using var source = GgufFile.Parse(original);
        using var output = new MemoryStream();
        GgufWriter.Copy(source, output);
        byte[] copy = output.ToArray();

        using (var reread = GgufFile.Parse(copy))
            GgufAssert.SameContent(source, reread);
        Assert.Equal(original.Length, copy.Length);
        int firstDifference = original.AsSpan().CommonPrefixLength(copy);
        Assert.True(firstDifference == original.Length, $"copy differs from byte {firstDifference}");
    }

    [Fact]
    public void Every_scalar_type_round_trips()
    {
        var metadata = new List<KeyValuePair<string, GgufValue>>
        {
            Kv("u8", GgufValue.Of(byte.MaxValue)),
            Kv("i8", GgufValue.Of(sbyte.MinValue)),
            Kv("u16", GgufValue.Of(ushort.MaxValue)),
            Kv("i16", GgufValue.Of(short.MinValue)),
            Kv("u32", GgufValue.Of(uint.MaxValue)),
            Kv("i32", GgufValue.Of(int.MinValue)),
            Kv("f32", GgufValue.Of(-0.0f)),
            Kv("f32.nan", GgufValue.Of(BitConverter.UInt32BitsToSingle(0x7FC0_1234))),
            Kv("bool.true", GgufValue.Of(true)),
            Kv("bool.false", GgufValue.Of(false)),
            Kv("string", GgufValue.Of("héllo, 世界 🙂\n\t\"q\"")),
            Kv("string.empty", GgufValue.Of("")),
            Kv("string.nul", GgufValue.Of("a\0b")),
            Kv("u64", GgufValue.Of(ulong.MaxValue)),
            Kv("i64", GgufValue.Of(long.MinValue)),
            Kv("f64", GgufValue.Of(double.Epsilon)),
            Kv("f64.inf", GgufValue.Of(double.NegativeInfinity)),
            Kv("ключ.ü", GgufValue.Of(1u)),
        };
        using var f = ReadBack(metadata);
        Assert.Equal(metadata.Select(p => p.Key), f.Metadata.Keys);
        foreach (var (key, value) in metadata)
            GgufAssert.SameValue(value, f.Metadata.Get(key), key);
        Assert.Empty(f.Tensors);
    }

    [Fact]
    public void Every_array_type_round_trips_including_empty_and_nested()
    {
        var metadata = new List<KeyValuePair<string, GgufValue>>
        {
            Kv("u8", GgufValue.Of(new GgufArray(GgufValueType.UInt8, new byte[] { 0, 1, 255 }))),
            Kv("i8", GgufValue.Of(new GgufArray(GgufValueType.Int8, new sbyte[] { -128, 0, 127 }))),
            Kv("u16", GgufValue.Of(new GgufArray(GgufValueType.UInt16, new ushort[] { 0, 65535 }))),
            Kv("i16", GgufValue.Of(new GgufArray(GgufValueType.Int16, new short[] { -32768, 32767 }))),
            Kv("u32", GgufValue.Of(GgufArray.Of(new uint[] { 0, uint.MaxValue }))),
            Kv("i32", GgufValue.Of(GgufArray.Of(new[] { int.MinValue, -1, 0, int.MaxValue }))),
            Kv("f32", GgufValue.Of(GgufArray.Of(new[] { 1.5f, float.NaN, float.NegativeInfinity, -0.0f }))),
            Kv("bool", GgufValue.Of(new GgufArray(GgufValueType.Bool, new[] { true, false, true }))),
            Kv("string", GgufValue.Of(GgufArray.Of(new[] { "", "a", "▁the", "\u0000", "🙂" }))),
            Kv("u64", GgufValue.Of(new GgufArray(GgufValueType.UInt64, new[] { ulong.MaxValue, 0UL }))),
            Kv("i64", GgufValue.Of(new GgufArray(GgufValueType.Int64, new[] { long.MinValue, long.MaxValue }))),
            Kv("f64", GgufValue.Of(new GgufArray(GgufValueType.Float64, new[] { Math.PI, -0.0 }))),
            Kv("empty.f32", GgufValue.Of(GgufArray.Of(Array.Empty<float>()))),
            Kv("empty.string", GgufValue.Of(GgufArray.Of(Array.Empty<string>()))),
            Kv("empty.nested", GgufValue.Of(GgufArray.Of(Array.Empty<GgufArray>()))),
            Kv("nested", GgufValue.Of(GgufArray.Of(new[]
            {
                GgufArray.Of(new[] { "x", "" }),
                GgufArray.Of(new[] { 1, 2, 3 }),
                GgufArray.Of(Array.Empty<float>()),
                GgufArray.Of(new[] { GgufArray.Of(new uint[] { 7 }), GgufArray.Of(Array.Empty<GgufArray>()) }),
            }))),
            Kv("deepest", GgufValue.Of(Nest(GgufArray.Of(new[] { 42 }), GgufFile.MaxArrayNesting - 1))),
        };
        using var f = ReadBack(metadata);
        Assert.Equal(metadata.Select(p => p.Key), f.Metadata.Keys);
        foreach (var (key, value) in metadata)
            GgufAssert.SameValue(value, f.Metadata.Get(key), key);
    }

    private static GgufArray Nest(GgufArray inner, int levels)
    {
        for (int i = 0; i < levels; i++)
            inner = GgufArray.Of(new[] { inner });
        return inner;
    }

    [Fact]
    public void Random_metadata_round_trips()
    {
        var strings = ArbMap.Default.ArbFor<string>().Generator.Where(s => s is not null && !HasLoneSurrogate(s));
        var entry = Gen.OneOf(
            strings.Select(s => GgufValue.Of(s)),
            ArbMap.Default.ArbFor<int[]>().Generator.Select(a => GgufValue.Of(GgufArray.Of(a))),
            ArbMap.Default.ArbFor<double>().Generator.Select(d => GgufValue.Of(d)),
            strings.ArrayOf().Select(a => GgufValue.Of(GgufArray.Of(a))),
            ArbMap.Default.ArbFor<long>().Generator.Select(v => GgufValue.Of(v)));
        var metadata = entry.ListOf().Select(values => values.Select((v, i) => Kv($"k{i}", v)).ToList());
        Prop.ForAll(metadata.ToArbitrary(), pairs =>
        {
            using var f = ReadBack(pairs);
            Assert.Equal(pairs.Count, f.Metadata.Count);
            foreach (var (key, value) in pairs)
                GgufAssert.SameValue(value, f.Metadata.Get(key), key);
        }).Check(ManagedLM.Tests.Kernels.KernelGen.Fixed);
    }

    private static bool HasLoneSurrogate(string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
                i++;
            else if (char.IsSurrogate(s[i]))
                return true;
        }
        return false;
    }

    [Fact]
    public void Tensors_are_aligned_in_declared_order_and_read_back()
    {
        var specs = new[]
        {
            new GgufTensorSpec("a.f32", GgmlType.F32, new long[] { 3 }),
            new GgufTensorSpec("b.q4k", GgmlType.Q4_K, new long[] { 256, 2 }),
            new GgufTensorSpec("c.empty", GgmlType.F16, new long[] { 8, 0 }),
            new GgufTensorSpec("d.q8", GgmlType.Q8_0, new long[] { 64, 1, 1, 3 }),
        };
        var data = specs.Select((s, i) => Pattern(GgmlTypes.RowBytes(s.Type, s.Shape[0]) * s.Shape.Skip(1).Aggregate(1L, (x, y) => x * y), i)).ToArray();
        using var f = ReadBack([Kv("general.architecture", GgufValue.Of("test"))], specs.Zip(data).ToArray());

        Assert.Equal(0, f.DataOffset % 32);
        Assert.Equal(new long[] { 0, 32, 32 + 288, 32 + 288 }, f.Tensors.Select(t => t.Offset));
        for (int i = 0; i < specs.Length; i++)
        {
            Assert.Equal(specs[i].Name, f.Tensors[i].Name);
            Assert.Equal(specs[i].Type, f.Tensors[i].Type);
            Assert.Equal(specs[i].Shape, f.Tensors[i].Shape);
            Assert.True(f.GetTensorData(f.Tensors[i]).SequenceEqual(data[i]));
        }
        // The last tensor is padded too: 6 Q8_0 blocks of 34 bytes = 204, padded to 224.
        Assert.Equal(f.DataOffset + 32 + 288 + 224, f.FileSize);
    }

    [Fact]
    public void Custom_alignment_is_honoured()
    {
        var spec = new GgufTensorSpec("t", GgmlType.F32, new long[] { 5 });
        using var f = ReadBack(
            [Kv("general.alignment", GgufValue.Of(64u))],
            (spec, Pattern(20, 1)), (spec with { Name = "u" }, Pattern(20, 2)));
        Assert.Equal(64u, f.Alignment);
        Assert.Equal(0, f.DataOffset % 64);
        Assert.Equal(64, f.Tensors[1].Offset);
        Assert.Equal(f.DataOffset + 128, f.FileSize);
    }

    [Fact]
    public void Chunked_writes_to_an_unseekable_stream_equal_whole_writes()
    {
        var specs = new[] { new GgufTensorSpec("x", GgmlType.F32, new long[] { 100, 3 }), new GgufTensorSpec("y", GgmlType.Q4_0, new long[] { 32, 5 }) };
        byte[][] data = [Pattern(1200, 1), Pattern(90, 2)];
        byte[] whole = GgufWriter.ToBytes([Kv("k", GgufValue.Of(1))], specs.Zip(data));

        var sink = new MemoryStream();
        using (var writer = new GgufWriter(new ForwardOnlyStream(sink), [Kv("k", GgufValue.Of(1))], specs))
        {
            Assert.Equal("x", writer.NextTensor?.Name);
            for (int at = 0; at < 1200; at += 7)
                writer.WriteTensorChunk("x", data[0].AsSpan(at, Math.Min(7, 1200 - at)));
            Assert.Equal("y", writer.NextTensor?.Name);
            writer.WriteTensorChunk("y", data[1].AsSpan(0, 50));
            writer.WriteTensorChunk("y", data[1].AsSpan(50));
            Assert.Null(writer.NextTensor);
            writer.Finish();
            Assert.Equal(whole.Length, writer.FileSize);
        }
        Assert.Equal(whole, sink.ToArray());
    }

    [Fact]
    public void Create_writes_a_file_that_Open_reads()
    {
        string path = Path.Combine(Path.GetTempPath(), $"managedlm-writer-{Guid.NewGuid():N}.gguf");
        try
        {
            var spec = new GgufTensorSpec("w", GgmlType.Q6_K, new long[] { 256, 4 });
            byte[] data = Pattern(4 * 210, 3);
            using (var writer = GgufWriter.Create(path, [Kv("general.name", GgufValue.Of("on disk"))], [spec]))
            {
                writer.WriteTensor("w", data);
                writer.Finish();
            }
            using var f = GgufFile.Open(path);
            Assert.Equal("on disk", f.Metadata.GetString("general.name"));
            Assert.True(f.GetTensorData(f.GetTensor("w")).SequenceEqual(data));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Copy_with_edited_metadata_and_a_subset_of_tensors()
    {
        using var source = GgufFile.Parse(SharedGgufFiles.Bytes("stories260K.gguf"));
        var metadata = source.Metadata.ToKeyValueList();
        int nameAt = metadata.FindIndex(p => p.Key == "general.name");
        metadata[nameAt] = Kv("general.name", GgufValue.Of("edited"));
        metadata.RemoveAll(p => p.Key == "tokenizer.ggml.scores");
        metadata.Add(Kv("test.added", GgufValue.Of(GgufArray.Of(new[] { "z" }))));
        using var output = new MemoryStream();
        GgufWriter.Copy(source, output, metadata, t => !t.Name.StartsWith("blk.4.", StringComparison.Ordinal));

        using var copy = GgufFile.Parse(output.ToArray());
        Assert.Equal("edited", copy.Metadata.GetString("general.name"));
        Assert.False(copy.Metadata.ContainsKey("tokenizer.ggml.scores"));
        Assert.Equal(["z"], copy.Metadata.GetArray<string>("test.added"));
        Assert.Equal(metadata.Select(p => p.Key), copy.Metadata.Keys);
        Assert.Equal(source.Tensors.Count(t => !t.Name.StartsWith("blk.4.", StringComparison.Ordinal)), copy.Tensors.Count);
        Assert.Null(copy.FindTensor("blk.4.attn_q.weight"));
        foreach (var t in copy.Tensors)
            Assert.True(copy.GetTensorData(t).SequenceEqual(source.GetTensorData(source.GetTensor(t.Name))), t.Name);
    }

    [Fact]
    public void Zero_byte_tensors_need_no_data()
    {
        var specs = new[] { new GgufTensorSpec("empty", GgmlType.F32, new long[] { 0 }), new GgufTensorSpec("full", GgmlType.F32, new long[] { 1 }) };
        using var skipped = new MemoryStream();
        using (var writer = new GgufWriter(skipped, [], specs, leaveOpen: true))
        {
            writer.WriteTensor("full", new byte[4]);
            writer.Finish();
        }
        using var explicitly = new MemoryStream();
        using (var writer = new GgufWriter(explicitly, [], specs, leaveOpen: true))
        {
            writer.WriteTensor("empty", []);
            writer.WriteTensor("full", new byte[4]);
            writer.Finish();
        }
        Assert.Equal(skipped.ToArray(), explicitly.ToArray());
        using var f = GgufFile.Parse(skipped.ToArray());
        Assert.Equal(0, f.GetTensor("empty").ByteSize);
    }

    [Fact]
    public void A_writer_disposed_before_all_data_leaves_a_file_the_reader_rejects()
    {
        using var output = new MemoryStream();
        var spec = new GgufTensorSpec("t", GgmlType.F32, new long[] { 64 });
        using (var writer = new GgufWriter(output, [], [spec], leaveOpen: true))
        {
            writer.WriteTensorChunk("t", new byte[100]);
            var ex = Assert.Throws<InvalidOperationException>(writer.Finish);
            Assert.Contains("\"t\" (100 of 256 bytes written)", ex.Message);
        }
        var error = Assert.Throws<GgufFormatException>(() => GgufFile.Parse(output.ToArray()));
        Assert.Contains("outside the data section", error.Message);
    }

    // Declarations the writer refuses before writing anything.
    public static TheoryData<string, Action> InvalidDeclarations() => new()
    {
        { "Duplicate metadata key \"a\"", () => Declare([Kv("a", GgufValue.Of(1)), Kv("a", GgufValue.Of(2))]) },
        { "metadata key is null or empty", () => Declare([Kv("", GgufValue.Of(1))]) },
        { "must be a uint32 power of two; got UInt32 48", () => Declare([Kv("general.alignment", GgufValue.Of(48u))]) },
        { "must be a uint32 power of two; got UInt32 0", () => Declare([Kv("general.alignment", GgufValue.Of(0u))]) },
        { "must be a uint32 power of two; got Int32 32", () => Declare([Kv("general.alignment", GgufValue.Of(32))]) },
        { "string element 1 is null", () => Declare([Kv("s", GgufValue.Of(GgufArray.Of(new[] { "a", null! })))]) },
        { "array element 0 is null", () => Declare([Kv("n", GgufValue.Of(GgufArray.Of(new GgufArray[1])))]) },
        { "nests arrays deeper than 8 levels", () => Declare([Kv("deep", GgufValue.Of(Nest(GgufArray.Of(new[] { 1 }), GgufFile.MaxArrayNesting)))]) },
        { "no UTF-8 form", () => Declare([Kv("s", GgufValue.Of("a\uD800b"))]) },
        { "Duplicate tensor name \"t\"", () => Declare([], F32("t", 4), F32("t", 4)) },
        { "at most 63 are allowed", () => Declare([], F32(new string('n', 64), 4)) },
        { "has an empty name", () => Declare([], F32("", 4)) },
        { "has 5 dimensions; at most 4", () => Declare([], new GgufTensorSpec("t", GgmlType.F32, new long[] { 1, 1, 1, 1, 1 })) },
        { "dimension 1 is negative (-2)", () => Declare([], new GgufTensorSpec("t", GgmlType.F32, new long[] { 4, -2 })) },
        { "row length 100 is not a multiple of the Q4_K block size 256", () => Declare([], new GgufTensorSpec("t", GgmlType.Q4_K, new long[] { 100 })) },
        { "unknown tensor type id 4", () => Declare([], new GgufTensorSpec("t", (GgmlType)4, new long[] { 32 })) },
        { "element count of shape [4294967296, 4294967296] overflows", () => Declare([], new GgufTensorSpec("t", GgmlType.F32, new long[] { 1L << 32, 1L << 32 })) },
        { "byte size of shape [4611686018427387904] overflows", () => Declare([], new GgufTensorSpec("t", GgmlType.F32, new long[] { 1L << 62 })) },
    };

    private static GgufTensorSpec F32(string name, long n) => new(name, GgmlType.F32, new[] { n });

    private static void Declare(List<KeyValuePair<string, GgufValue>> metadata, params GgufTensorSpec[] tensors) =>
        new GgufWriter(new MemoryStream(), metadata, tensors).Dispose();

    [Theory]
    [MemberData(nameof(InvalidDeclarations))]
    public void Invalid_declarations_are_refused_before_anything_is_written(string expected, Action declare)
    {
        var ex = Assert.ThrowsAny<ArgumentException>(declare);
        Assert.Contains(expected, ex.Message);
    }

    [Fact]
    public void Data_of_the_wrong_length_or_order_is_refused()
    {
        var specs = new[] { F32("a", 4), F32("b", 2), F32("c", 1) };
        using var output = new MemoryStream();
        using var writer = new GgufWriter(output, [], specs, leaveOpen: true);
        long start = output.Length;

        Assert.Contains("takes 16 bytes; got 12", Assert.Throws<ArgumentException>(() => writer.WriteTensor("a", new byte[12])).Message);
        Assert.Contains("\"b\" is out of order: the data of \"a\" (declared #0) comes first",
            Assert.Throws<ArgumentException>(() => writer.WriteTensor("b", new byte[8])).Message);
        Assert.Contains("No tensor named \"zz\"", Assert.Throws<ArgumentException>(() => writer.WriteTensor("zz", new byte[8])).Message);
        Assert.Equal(start, output.Length);

        writer.WriteTensorChunk("a", new byte[10]);
        Assert.Contains("partly written in chunks (10 of 16 bytes)", Assert.Throws<ArgumentException>(() => writer.WriteTensor("a", new byte[16])).Message);
        Assert.Contains("A chunk of 7 bytes runs past the end of tensor \"a\" (10 of 16 bytes written)",
            Assert.Throws<ArgumentException>(() => writer.WriteTensorChunk("a", new byte[7])).Message);
        writer.WriteTensorChunk("a", new byte[6]);
        Assert.Contains("already written", Assert.Throws<ArgumentException>(() => writer.WriteTensor("a", new byte[16])).Message);
        writer.WriteTensor("b", new byte[8]);
        writer.WriteTensor("c", new byte[4]);
        writer.Finish();
        Assert.Throws<InvalidOperationException>(() => writer.WriteTensor("c", new byte[4]));
    }

    /// <summary>A write-only stream that cannot seek or report its length, like a pipe.</summary>
    private sealed class ForwardOnlyStream(Stream inner) : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);
        public override void Write(ReadOnlySpan<byte> buffer) => inner.Write(buffer);
    }
}

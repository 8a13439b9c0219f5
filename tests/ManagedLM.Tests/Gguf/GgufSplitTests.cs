using ManagedLM.Generation;
using ManagedLM.Gguf;
using ManagedLM.Model;
using ManagedLM.Sampling;

namespace ManagedLM.Tests.Gguf;

/// <summary>
/// Split models as llama.cpp's gguf-split writes them (<c>NAME-00001-of-00003.gguf</c> ...): <see cref="GgufWriter.WriteSplits"/>
/// writes them, <see cref="GgufFile.OpenModel"/> and <see cref="TransformerModel.Load(string, ModelOptions?)"/> open them as one model.
/// </summary>
public sealed class GgufSplitTests : IDisposable
{
    private static readonly ModelOptions InPlace = new() { RepackWeights = false, LargePages = false, WarmUp = false };

    private readonly string _dir = Directory.CreateTempSubdirectory("managedlm-split-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static KeyValuePair<string, GgufValue> Kv(string key, GgufValue value) => KeyValuePair.Create(key, value);

    // The shared model written as three splits of 16 tensors (stories260K has 48): their paths in order.
    private IReadOnlyList<string> SplitInThree(string model = "stories260K.gguf", string name = "model")
    {
        using var source = GgufFile.Open(TestData.Model(model));
        return GgufWriter.WriteSplits(source, Path.Combine(_dir, name), maxTensors: (source.Tensors.Count + 2) / 3);
    }

    // Rewrites one split in place with edited metadata and tensors.
    private static void Rewrite(string path, Action<List<KeyValuePair<string, GgufValue>>> editMetadata,
        Func<GgufFile, IEnumerable<(GgufTensorSpec, byte[])>>? tensors = null)
    {
        byte[] bytes;
        using (var split = GgufFile.Open(path))
        {
            var metadata = split.Metadata.ToKeyValueList();
            editMetadata(metadata);
            bytes = GgufWriter.ToBytes(metadata,
                tensors?.Invoke(split) ?? split.Tensors.Select(t => (GgufTensorSpec.From(t), split.GetTensorData(t).ToArray())).ToList());
        }
        File.WriteAllBytes(path, bytes);
    }

    private static void Set(List<KeyValuePair<string, GgufValue>> metadata, string key, GgufValue value) =>
        metadata[metadata.FindIndex(kv => kv.Key == key)] = Kv(key, value);

    [Theory]
    [InlineData("stories260K.gguf")]
    [InlineData("stories260K-mix-Q4_0.gguf")]
    public void A_model_split_in_three_gives_the_same_logits_and_tokens_as_the_whole_file(string file)
    {
        var paths = SplitInThree(file);
        Assert.Equal(3, paths.Count);
        foreach (var options in new[] { InPlace, new ModelOptions { WarmUp = false } })
        {
            using var whole = TransformerModel.Load(TestData.Model(file), options);
            using var split = TransformerModel.Load(paths[0], options);
            Assert.Equal(whole.Config, split.Config);
            Assert.Equal("model", split.Name); // the id in APIs: without "-00001-of-00003"

            var generatorOptions = new GeneratorOptions { Threads = 2, Sampling = SamplingOptions.Greedy };
            using var a = whole.CreateGenerator(generatorOptions);
            using var b = split.CreateGenerator(generatorOptions);
            int[] prompt = [1, 403, 407, 261, 378]; // "Once upon a time"
            Assert.Equal(a.Prefill(prompt).ToArray(), b.Prefill(prompt).ToArray());
            var tokens = new List<int>();
            for (int i = 0; i < 8; i++)
            {
                int token = a.Sample();
                Assert.Equal(token, b.Sample());
                tokens.Add(token);
                Assert.Equal(a.Step(token).ToArray(), b.Step(token).ToArray());
            }
            if (file == "stories260K.gguf") // the manifest's greedy continuation
                Assert.StartsWith(", there was a little girl", whole.Tokenizer.Decode(tokens.ToArray()));
        }
    }

    [Fact]
    public void The_splits_are_laid_out_as_gguf_split_writes_them()
    {
        var paths = SplitInThree();
        Assert.Equal(["model-00001-of-00003.gguf", "model-00002-of-00003.gguf", "model-00003-of-00003.gguf"], paths.Select(Path.GetFileName));
        using var source = GgufFile.Open(TestData.Model("stories260K.gguf"));
        string[] splitKeys = [GgufFile.SplitNoKey, GgufFile.SplitCountKey, GgufFile.SplitTensorsCountKey];
        for (int i = 0; i < 3; i++)
        {
            using var split = GgufFile.Open(paths[i]);
            // All of the model's metadata in the first, then the split keys; the others hold the split keys only.
            Assert.Equal(i == 0 ? source.Metadata.Keys.Concat(splitKeys) : splitKeys, split.Metadata.Keys);
            GgufAssert.SameValue(GgufValue.Of((ushort)i), split.Metadata.Get(GgufFile.SplitNoKey), GgufFile.SplitNoKey);
            GgufAssert.SameValue(GgufValue.Of((ushort)3), split.Metadata.Get(GgufFile.SplitCountKey), GgufFile.SplitCountKey);
            GgufAssert.SameValue(GgufValue.Of(48), split.Metadata.Get(GgufFile.SplitTensorsCountKey), GgufFile.SplitTensorsCountKey);
            Assert.Equal(source.Tensors.Skip(16 * i).Take(16).Select(t => t.Name), split.Tensors.Select(t => t.Name));
            Assert.All(split.Tensors, t => Assert.Equal(0, t.Split)); // opened alone, each is a file of its own
        }
    }

    [Fact]
    public void OpenModel_from_any_split_is_one_file_with_every_tensor_in_its_split()
    {
        var paths = SplitInThree();
        using var source = GgufFile.Open(TestData.Model("stories260K.gguf"));
        foreach (string given in paths)
        {
            using var model = GgufFile.OpenModel(given);
            Assert.Equal(3, model.SplitCount);
            Assert.Equal(paths, model.SplitPaths);
            Assert.Equal(paths[0], model.Path);
            Assert.Equal(paths.Sum(p => new FileInfo(p).Length), model.FileSize);
            Assert.Equal(source.Metadata.Keys.Concat([GgufFile.SplitNoKey, GgufFile.SplitCountKey, GgufFile.SplitTensorsCountKey]), model.Metadata.Keys);
            Assert.Equal(source.Metadata.GetArray<string>("tokenizer.ggml.tokens"), model.Metadata.GetArray<string>("tokenizer.ggml.tokens"));
            Assert.Equal(source.Tensors.Select(t => t.Name), model.Tensors.Select(t => t.Name));
            Assert.Equal(Enumerable.Range(0, 48).Select(i => i / 16), model.Tensors.Select(t => t.Split));
            foreach (var t in model.Tensors)
            {
                Assert.Same(t, model.GetTensor(t.Name));
                Assert.True(model.GetTensorData(t).SequenceEqual(source.GetTensorData(source.GetTensor(t.Name))), t.Name);
            }
            foreach (var t in model.Tensors)
                model.ReleasePages(t);
            Assert.True(model.GetTensorData(model.Tensors[^1]).SequenceEqual(source.GetTensorData(source.Tensors[^1])));
        }
    }

    [Fact]
    public void A_single_file_opens_with_OpenModel_as_with_Open()
    {
        using var single = GgufFile.OpenModel(TestData.Model("stories260K.gguf"));
        Assert.Equal(1, single.SplitCount);
        Assert.Equal([TestData.Model("stories260K.gguf")], single.SplitPaths);
        Assert.Equal(new FileInfo(TestData.Model("stories260K.gguf")).Length, single.FileSize);
        Assert.All(single.Tensors, t => Assert.Equal(0, t.Split));

        // gguf-split writes split.count 1 when everything fits one file: that is a single file too.
        using var source = GgufFile.Open(TestData.Model("stories260K.gguf"));
        var one = GgufWriter.WriteSplits(source, Path.Combine(_dir, "one"), maxTensors: 100);
        Assert.Equal([Path.Combine(_dir, "one-00001-of-00001.gguf")], one);
        using var file = GgufFile.OpenModel(one[0]);
        Assert.Equal(1, file.SplitCount);
        Assert.Equal(source.Tensors.Select(t => t.Name), file.Tensors.Select(t => t.Name));
        using var model = TransformerModel.Load(one[0], InPlace);
        Assert.Equal(one[0], model.Path);
    }

    [Fact]
    public void A_missing_split_names_the_file()
    {
        var paths = SplitInThree();
        File.Delete(paths[1]);
        var ex = Assert.Throws<FileNotFoundException>(() => TransformerModel.Load(paths[0]));
        Assert.Equal(paths[1], ex.FileName);
        Assert.Contains($"Split 2 of 3 of the model {paths[0]} is missing: {paths[1]}", ex.Message);
    }

    [Fact]
    public void A_split_count_that_disagrees_is_a_format_error_in_that_file()
    {
        var paths = SplitInThree();
        Rewrite(paths[2], m => Set(m, GgufFile.SplitCountKey, GgufValue.Of((ushort)4)));
        var ex = Assert.Throws<GgufFormatException>(() => TransformerModel.Load(paths[0]));
        Assert.Equal(paths[2], ex.FilePath);
        Assert.Contains($"split.count is 4, but it is 3 in {paths[0]}", ex.Message);
        using (var split = GgufFile.Open(paths[2]))
            Assert.Equal(split.Metadata.FindEntry(GgufFile.SplitCountKey)!.Offset, ex.Offset);
    }

    [Fact]
    public void A_tensor_in_two_splits_is_a_format_error()
    {
        var paths = SplitInThree();
        string name;
        using (var first = GgufFile.Open(paths[0]))
        {
            var copied = first.Tensors[3];
            name = copied.Name;
            byte[] data = first.GetTensorData(copied).ToArray();
            Rewrite(paths[2], _ => { },
                split => split.Tensors.Select(t => (GgufTensorSpec.From(t), split.GetTensorData(t).ToArray())).Append((GgufTensorSpec.From(copied), data)).ToList());
        }
        var ex = Assert.Throws<GgufFormatException>(() => TransformerModel.Load(paths[0]));
        Assert.Equal(paths[2], ex.FilePath);
        Assert.Contains($"duplicate tensor name \"{name}\": split 1 ({paths[0]}) has a tensor of that name too", ex.Message);
        using (var third = GgufFile.Open(paths[2]))
            Assert.Equal(third.GetTensor(name).InfoOffset, ex.Offset);
    }

    [Fact]
    public void Splits_holding_other_than_split_tensors_count_tensors_are_a_format_error()
    {
        var paths = SplitInThree();
        Rewrite(paths[2], _ => { }, split => split.Tensors.Skip(1).Select(t => (GgufTensorSpec.From(t), split.GetTensorData(t).ToArray())).ToList());
        var ex = Assert.Throws<GgufFormatException>(() => GgufFile.OpenModel(paths[1]));
        Assert.Equal(paths[0], ex.FilePath);
        Assert.Contains("split.tensors.count is 48, but the 3 splits hold 47 tensors", ex.Message);
    }

    [Fact]
    public void A_split_whose_split_no_disagrees_with_its_name_is_a_format_error()
    {
        var paths = SplitInThree();
        Rewrite(paths[1], m => Set(m, GgufFile.SplitNoKey, GgufValue.Of((ushort)2)));
        var ex = Assert.Throws<GgufFormatException>(() => GgufFile.OpenModel(paths[0]));
        Assert.Equal(paths[1], ex.FilePath);
        Assert.Contains("split.no is 2, but the file is named as split 2 of 3 (split.no 1)", ex.Message);
    }

    public static TheoryData<string, Action<List<KeyValuePair<string, GgufValue>>>, string> BadSplitKeys() => new()
    {
        { "count too large", m => Set(m, GgufFile.SplitCountKey, GgufValue.Of(5000u)), "split.count is 5000; at most 1024 files are supported" },
        { "count not an integer", m => Set(m, GgufFile.SplitCountKey, GgufValue.Of("3")), "expected split.count to be a non-negative integer, found String" },
        { "count negative", m => Set(m, GgufFile.SplitCountKey, GgufValue.Of(-3)), "expected split.count to be a non-negative integer, found -3" },
        { "no out of range", m => Set(m, GgufFile.SplitNoKey, GgufValue.Of((ushort)3)), "split.no is 3; expected 0 to 2 (split.count 3)" },
        { "no missing", m => m.RemoveAll(kv => kv.Key == GgufFile.SplitNoKey), "missing metadata key \"split.no\"" },
        { "tensors count missing", m => m.RemoveAll(kv => kv.Key == GgufFile.SplitTensorsCountKey), "missing metadata key \"split.tensors.count\"" },
    };

    [Theory]
    [MemberData(nameof(BadSplitKeys))]
    public void Bad_split_keys_in_the_first_split_are_format_errors(string what, Action<List<KeyValuePair<string, GgufValue>>> edit, string expected)
    {
        var paths = SplitInThree();
        Rewrite(paths[0], edit);
        var ex = Assert.Throws<GgufFormatException>(() => TransformerModel.Load(paths[0]));
        Assert.True(ex.Message.Contains(expected, StringComparison.Ordinal), $"{what}: {ex.Message}");
        Assert.Equal(paths[0], ex.FilePath);
        Assert.InRange(ex.Offset, 24, new FileInfo(paths[0]).Length);
    }

    [Fact]
    public void A_split_file_not_named_as_its_split_keys_say_is_a_format_error()
    {
        var paths = SplitInThree();
        string renamed = Path.Combine(_dir, "model.gguf");
        File.Move(paths[0], renamed);
        var ex = Assert.Throws<GgufFormatException>(() => TransformerModel.Load(renamed));
        Assert.Contains("the file is split 1 of 3, so its name should end in \"-00001-of-00003.gguf\"", ex.Message);
        Assert.Contains("but it is \"model.gguf\"", ex.Message);
    }

    [Fact]
    public void A_malformed_later_split_is_a_format_error_naming_that_file()
    {
        var paths = SplitInThree();
        byte[] bytes = File.ReadAllBytes(paths[1]);
        File.WriteAllBytes(paths[1], bytes.AsSpan(0, bytes.Length - 100).ToArray());
        var ex = Assert.Throws<GgufFormatException>(() => TransformerModel.Load(paths[0]));
        Assert.Equal(paths[1], ex.FilePath);
        Assert.StartsWith($"Invalid GGUF at byte ", ex.Message);
        Assert.Contains($" of {paths[1]}: tensor ", ex.Message);
        Assert.Contains("lies outside the data section", ex.Message);
    }

    [Fact]
    public void Splits_by_size_keep_each_file_under_the_limit_unless_one_tensor_is_larger()
    {
        using var source = GgufFile.Open(TestData.Model("stories260K.gguf"));
        const long limit = 100_000; // token_embd.weight (and output.weight) are 131072 bytes: a file each
        var paths = GgufWriter.WriteSplits(source, Path.Combine(_dir, "sized"), maxBytes: limit);
        using var model = GgufFile.OpenModel(paths[0]);
        Assert.Equal(paths.Count, model.SplitCount);
        Assert.True(paths.Count > 3);
        for (int i = 0; i < paths.Count; i++)
        {
            var inSplit = model.Tensors.Where(t => t.Split == i).ToList();
            Assert.NotEmpty(inSplit);
            long bytes = inSplit.Sum(t => GgufFile.AlignUp(t.ByteSize, 32));
            Assert.True(bytes <= limit || inSplit.Count == 1, $"split {i}: {inSplit.Count} tensors of {bytes} bytes");
        }
        Assert.Equal(source.Tensors.Select(t => t.Name), model.Tensors.Select(t => t.Name));
    }

    [Fact]
    public void WriteSplits_takes_exactly_one_positive_limit()
    {
        using var source = GgufFile.Open(TestData.Model("stories260K.gguf"));
        string prefix = Path.Combine(_dir, "x");
        Assert.Throws<ArgumentException>(() => GgufWriter.WriteSplits(source, prefix));
        Assert.Throws<ArgumentException>(() => GgufWriter.WriteSplits(source, prefix, maxTensors: 1, maxBytes: 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => GgufWriter.WriteSplits(source, prefix, maxTensors: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => GgufWriter.WriteSplits(source, prefix, maxBytes: -1));
        Assert.Empty(Directory.EnumerateFiles(_dir));
    }
}

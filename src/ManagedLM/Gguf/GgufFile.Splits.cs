namespace ManagedLM.Gguf;

// Split models, as llama.cpp's gguf-split writes them: NAME-00001-of-0000N.gguf ... NAME-0000N-of-0000N.gguf, each a
// complete GGUF file whose tensor offsets are relative to its own data section. The first holds the model's metadata;
// every one holds split.no (0-based), split.count and split.tensors.count (the tensors of all the splits together).
public sealed unsafe partial class GgufFile
{
    /// <summary>The metadata key of a split's index among the model's files, 0-based (uint16 as gguf-split writes it).</summary>
    public const string SplitNoKey = "split.no";
    /// <summary>The metadata key of the number of files of a split model (uint16).</summary>
    public const string SplitCountKey = "split.count";
    /// <summary>The metadata key of the number of tensors in all the files of a split model together (int32).</summary>
    public const string SplitTensorsCountKey = "split.tensors.count";
    /// <summary>Most files a split model may have.</summary>
    public const int MaxSplits = 1024;

    /// <summary>Number of files: <c>split.count</c> for a split model opened with <see cref="OpenModel"/>, else 1.</summary>
    public int SplitCount => _memories.Length;
    /// <summary>The path of each file in split order (the one path of a single file; none when parsed from memory).</summary>
    public IReadOnlyList<string> SplitPaths { get; }

    /// <summary>
    /// Opens a model's GGUF file, or all the files of a split model (<c>split.count</c> &gt; 1) given any one of them,
    /// named as gguf-split names them: <c>PREFIX-00001-of-0000N.gguf</c> ... <c>PREFIX-0000N-of-0000N.gguf</c>, in one
    /// folder. The result is one <see cref="GgufFile"/>: the first split's metadata, every split's tensors in split order,
    /// each tensor's data in its own split's file. A file without split keys (or with <c>split.count</c> 1) opens as
    /// <see cref="Open"/> opens it.
    /// </summary>
    /// <exception cref="GgufFormatException">A file is not valid GGUF; its split keys are missing, of the wrong type,
    /// out of range or disagree with its name or with the other splits; a tensor name is in two splits; or the splits hold
    /// other than <c>split.tensors.count</c> tensors. For a split model the message names the file.</exception>
    /// <exception cref="FileNotFoundException">The file, or one of the other splits, does not exist (the message names it).</exception>
    public static GgufFile OpenModel(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var given = Open(path);
        var files = new List<GgufFile> { given };
        try
        {
            var countEntry = given.Metadata.FindEntry(SplitCountKey);
            long count = countEntry is null ? 1 : SplitInteger(countEntry, path);
            if (count <= 1)
                return given; // as llama.cpp: one file (gguf-split writes split.count 1 when everything fits in one)
            if (count > MaxSplits)
                throw new GgufFormatException(countEntry!.Offset, $"{SplitCountKey} is {count}; at most {MaxSplits} files are supported", path);
            int n = (int)count;
            int no = SplitNo(given, n, path);
            string prefix = SplitPrefix(path, no, n) ?? throw new GgufFormatException(given.Metadata.FindEntry(SplitNoKey)!.Offset,
                $"the file is split {no + 1} of {n}, so its name should end in \"{SplitSuffix(no, n)}\" (the other splits are found by that name), " +
                $"but it is \"{System.IO.Path.GetFileName(path)}\"", path);

            var splits = new GgufFile[n];
            splits[no] = given;
            for (int i = 0; i < n; i++)
            {
                if (i == no)
                    continue;
                string splitPath = SplitPath(prefix, i, n);
                if (!File.Exists(splitPath))
                    throw new FileNotFoundException($"Split {i + 1} of {n} of the model {path} is missing: {splitPath} does not exist.", splitPath);
                GgufFile split;
                try
                {
                    split = Open(splitPath);
                }
                catch (GgufFormatException e)
                {
                    throw e.InFile(splitPath);
                }
                files.Add(split);
                splits[i] = split;
                var entry = split.Metadata.FindEntry(SplitCountKey)
                    ?? throw new GgufFormatException(split.TensorInfosOffset, $"missing metadata key \"{SplitCountKey}\": every split of a split model has it ({n} in {path})", splitPath);
                long other = SplitInteger(entry, splitPath);
                if (other != n)
                    throw new GgufFormatException(entry.Offset, $"{SplitCountKey} is {other}, but it is {n} in {path}: the files are not splits of one model", splitPath);
                int otherNo = SplitNo(split, n, splitPath);
                if (otherNo != i)
                    throw new GgufFormatException(split.Metadata.FindEntry(SplitNoKey)!.Offset, $"{SplitNoKey} is {otherNo}, but the file is named as split {i + 1} of {n} ({SplitNoKey} {i})", splitPath);
            }
            return new GgufFile(splits, SplitTensors(splits));
        }
        catch
        {
            DisposeAll(files);
            throw;
        }
    }

    /// <summary>The name gguf-split gives split <paramref name="split"/> (0-based) of <paramref name="count"/>: <c>PREFIX-00001-of-00003.gguf</c> for split 0 of 3.</summary>
    public static string SplitPath(string prefix, int split, int count)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, MaxSplits);
        ArgumentOutOfRangeException.ThrowIfNegative(split);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(split, count);
        return prefix + SplitSuffix(split, count);
    }

    // The path without "-0000k-of-0000n.gguf", or null when it does not end so (llama.cpp's llama_split_prefix).
    private static string? SplitPrefix(string path, int split, int count)
    {
        string suffix = SplitSuffix(split, count);
        return path.Length > suffix.Length && path.EndsWith(suffix, StringComparison.Ordinal) ? path[..^suffix.Length] : null;
    }

    private static string SplitSuffix(int split, int count) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"-{split + 1:D5}-of-{count:D5}.gguf");

    private GgufFile(GgufFile[] splits, GgufTensorInfo[] tensors)
    {
        var first = splits[0];
        _memories = splits.Select(s => s._memories[0]).ToArray();
        FileSize = splits.Sum(s => s.FileSize);
        Path = first.Path;
        SplitPaths = Array.AsReadOnly(splits.Select(s => s.Path!).ToArray());
        Version = first.Version;
        Alignment = first.Alignment;
        DataOffset = first.DataOffset;
        Metadata = first.Metadata;
        TensorInfosOffset = first.TensorInfosOffset;
        TensorInfosEnd = first.TensorInfosEnd;
        Tensors = Array.AsReadOnly(tensors);
        _tensorsByName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    // Every split's tensors in split order, each knowing its split: names unique across the splits, and as many as the
    // first split's split.tensors.count says (the other splits' copies of the key, where present, say the same).
    private static GgufTensorInfo[] SplitTensors(GgufFile[] splits)
    {
        var first = splits[0];
        string firstPath = first.Path!;
        var expectedEntry = first.Metadata.FindEntry(SplitTensorsCountKey)
            ?? throw new GgufFormatException(first.TensorInfosOffset, $"missing metadata key \"{SplitTensorsCountKey}\" (the number of tensors in all {splits.Length} splits)", firstPath);
        long expected = SplitInteger(expectedEntry, firstPath);
        var tensors = new List<GgufTensorInfo>();
        var splitOf = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < splits.Length; i++)
        {
            var split = splits[i];
            if (i > 0 && split.Metadata.FindEntry(SplitTensorsCountKey) is { } entry && SplitInteger(entry, split.Path!) != expected)
                throw new GgufFormatException(entry.Offset, $"{SplitTensorsCountKey} is {entry.Value}, but it is {expected} in {firstPath}", split.Path);
            foreach (var t in split.Tensors)
            {
                if (!splitOf.TryAdd(t.Name, i))
                    throw new GgufFormatException(t.InfoOffset,
                        $"duplicate tensor name \"{t.Name}\": split {splitOf[t.Name] + 1} ({splits[splitOf[t.Name]].Path}) has a tensor of that name too", split.Path);
                tensors.Add(t.InSplit(i));
            }
        }
        if (tensors.Count != expected)
            throw new GgufFormatException(expectedEntry.Offset, $"{SplitTensorsCountKey} is {expected}, but the {splits.Length} splits hold {tensors.Count} tensors", firstPath);
        return tensors.ToArray();
    }

    // split.no: present, an integer, and below the split count.
    private static int SplitNo(GgufFile file, int count, string path)
    {
        var entry = file.Metadata.FindEntry(SplitNoKey)
            ?? throw new GgufFormatException(file.TensorInfosOffset, $"missing metadata key \"{SplitNoKey}\" in a file of a split model ({SplitCountKey} {count})", path);
        long no = SplitInteger(entry, path);
        if (no < 0 || no >= count)
            throw new GgufFormatException(entry.Offset, $"{SplitNoKey} is {no}; expected 0 to {count - 1} ({SplitCountKey} {count})", path);
        return (int)no;
    }

    // A split key's value: any integer type (gguf-split writes uint16 and int32).
    private static long SplitInteger(GgufMetadataEntry entry, string path) =>
        entry.Value.AsInt64 is long v && v >= 0 ? v
        : throw new GgufFormatException(entry.Offset,
            $"expected {entry.Key} to be a non-negative integer, found {(entry.Value.IsInteger ? entry.Value.ToString() : entry.Value.Type.ToString())}", path);

    private static void DisposeAll(List<GgufFile> files)
    {
        foreach (var f in files)
            f.Dispose();
    }
}

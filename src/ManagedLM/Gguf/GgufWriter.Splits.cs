namespace ManagedLM.Gguf;

public sealed unsafe partial class GgufWriter
{
    /// <summary>
    /// Writes <paramref name="source"/> as a split model, as llama.cpp's gguf-split does: files
    /// <c>PREFIX-00001-of-0000N.gguf</c> ... <c>PREFIX-0000N-of-0000N.gguf</c> (overwritten where they exist), the tensors
    /// in source order, each file a complete GGUF file. The first holds all of the source's metadata, then
    /// <c>split.no</c> (uint16, 0-based), <c>split.count</c> (uint16) and <c>split.tensors.count</c> (int32); the others
    /// hold only those three keys. <see cref="GgufFile.OpenModel"/> opens the result as one model. Give one limit:
    /// </summary>
    /// <param name="source">The model to split (a split model itself is split anew: its split keys are replaced).</param>
    /// <param name="outputPrefix">The path of the files without <c>-00001-of-0000N.gguf</c>.</param>
    /// <param name="maxTensors">Most tensors in one file (gguf-split's <c>--split-max-tensors</c>).</param>
    /// <param name="maxBytes">Most tensor bytes in one file, each tensor counted padded to 32 bytes (gguf-split's
    /// <c>--split-max-size</c>); a tensor larger than that gets a file of its own.</param>
    /// <returns>The paths written, in split order. On failure the files written so far are deleted.</returns>
    /// <exception cref="ArgumentException">Not exactly one limit, a limit below 1, or more than <see cref="GgufFile.MaxSplits"/> files.</exception>
    public static IReadOnlyList<string> WriteSplits(GgufFile source, string outputPrefix, int? maxTensors = null, long? maxBytes = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentException.ThrowIfNullOrEmpty(outputPrefix);
        var plan = PlanSplits(source.Tensors, maxTensors, maxBytes);
        if (plan.Count > GgufFile.MaxSplits)
            throw new ArgumentException($"The limit gives {plan.Count} files; at most {GgufFile.MaxSplits} are allowed.", maxTensors is null ? nameof(maxBytes) : nameof(maxTensors));

        var modelMetadata = source.Metadata.ToKeyValueList();
        modelMetadata.RemoveAll(kv => kv.Key is GgufFile.SplitNoKey or GgufFile.SplitCountKey or GgufFile.SplitTensorsCountKey);
        var written = new List<string>(plan.Count);
        try
        {
            for (int i = 0; i < plan.Count; i++)
            {
                var metadata = i == 0 ? new List<KeyValuePair<string, GgufValue>>(modelMetadata) : [];
                metadata.Add(KeyValuePair.Create(GgufFile.SplitNoKey, GgufValue.Of((ushort)i)));
                metadata.Add(KeyValuePair.Create(GgufFile.SplitCountKey, GgufValue.Of((ushort)plan.Count)));
                metadata.Add(KeyValuePair.Create(GgufFile.SplitTensorsCountKey, GgufValue.Of(source.Tensors.Count)));
                string path = GgufFile.SplitPath(outputPrefix, i, plan.Count);
                written.Add(path);
                using var writer = Create(path, metadata, plan[i].Select(GgufTensorSpec.From));
                foreach (var t in plan[i])
                    writer.CopyTensor(source, t);
                writer.Finish();
            }
        }
        catch
        {
            foreach (string path in written)
            {
                try
                {
                    File.Delete(path);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                }
            }
            throw;
        }
        return written.AsReadOnly();
    }

    // gguf-split's plan: a new file every maxTensors tensors, or when the next tensor (padded to 32 bytes) would take the
    // file's tensor bytes past maxBytes (unless the file has no tensor yet). No tensors at all: one file without any.
    private static List<List<GgufTensorInfo>> PlanSplits(IReadOnlyList<GgufTensorInfo> tensors, int? maxTensors, long? maxBytes)
    {
        if ((maxTensors is null) == (maxBytes is null))
            throw new ArgumentException("Give exactly one limit: the most tensors or the most bytes in one file.", nameof(maxTensors));
        if (maxTensors < 1)
            throw new ArgumentOutOfRangeException(nameof(maxTensors), maxTensors, "The most tensors in one file must be at least 1.");
        if (maxBytes < 1)
            throw new ArgumentOutOfRangeException(nameof(maxBytes), maxBytes, "The most bytes in one file must be at least 1.");
        var plan = new List<List<GgufTensorInfo>> { new() };
        long bytes = 0;
        foreach (var t in tensors)
        {
            var current = plan[^1];
            long padded = GgufFile.AlignUp(t.ByteSize, GgufFile.DefaultAlignment);
            bool full = maxTensors is int n ? current.Count == n : current.Count > 0 && padded > maxBytes!.Value - bytes;
            if (full)
            {
                current = [];
                plan.Add(current);
                bytes = 0;
            }
            current.Add(t);
            bytes += padded;
        }
        return plan;
    }
}

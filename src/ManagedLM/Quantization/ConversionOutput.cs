using ManagedLM.Gguf;

namespace ManagedLM.Quantization;

/// <summary>Pieces shared by the writers of converted models (<see cref="ModelQuantizer"/>, the synthesizer).</summary>
public static class ConversionOutput
{
    /// <summary>Version of the quantized block formats (ggml's GGML_QNT_VERSION).</summary>
    public const uint QuantizationVersion = 2;
    public const string QuantizationVersionKey = "general.quantization_version";
    public const string FileTypeKey = "general.file_type";

    /// <summary>Appends <c>general.quantization_version</c> and <c>general.file_type</c>, in that order, as llama-quantize leaves them.</summary>
    public static void AddFileType(List<KeyValuePair<string, GgufValue>> metadata, LlamaFileType fileType)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        metadata.Add(KeyValuePair.Create(QuantizationVersionKey, GgufValue.Of(QuantizationVersion)));
        metadata.Add(KeyValuePair.Create(FileTypeKey, GgufValue.Of((uint)fileType)));
    }

    /// <summary>
    /// Writes a file through <paramref name="write"/> into <c><paramref name="path"/>.part</c> and renames it to
    /// <paramref name="path"/> once complete, so that a failed or interrupted run never leaves a truncated model.
    /// </summary>
    public static T WriteFile<T>(string path, Func<Stream, T> write)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(write);
        string full = Path.GetFullPath(path);
        if (Path.GetDirectoryName(full) is { } dir)
            Directory.CreateDirectory(dir);
        string partial = full + ".part";
        try
        {
            T result;
            using (var stream = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
                result = write(stream);
            File.Move(partial, full, overwrite: true);
            return result;
        }
        catch
        {
            File.Delete(partial);
            throw;
        }
    }
}

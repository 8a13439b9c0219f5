namespace ManagedLM.Gguf;

/// <summary>A GGUF file is malformed: the message names the byte offset and what was expected there.</summary>
public sealed class GgufFormatException : Exception
{
    /// <summary>Byte offset in the file where the problem was found.</summary>
    public long Offset { get; }
    /// <summary>
    /// The file the offset is in, where the message names it: one of the files of a split model
    /// (<see cref="GgufFile.OpenModel"/>); null for a single file or bytes parsed from memory.
    /// </summary>
    public string? FilePath { get; }
    /// <summary>What was expected, without the location.</summary>
    internal string Detail { get; }

    /// <summary>A format error at byte <paramref name="offset"/>; the message says what was expected there.</summary>
    public GgufFormatException(long offset, string message)
        : this(offset, message, filePath: null)
    {
    }

    /// <summary>A format error at byte <paramref name="offset"/> of the file <paramref name="filePath"/>.</summary>
    public GgufFormatException(long offset, string message, string? filePath)
        : this(offset, message, filePath, inner: null)
    {
    }

    private GgufFormatException(long offset, string message, string? filePath, Exception? inner)
        : base(filePath is null ? $"Invalid GGUF at byte {offset}: {message}" : $"Invalid GGUF at byte {offset} of {filePath}: {message}", inner)
    {
        Offset = offset;
        FilePath = filePath;
        Detail = message;
    }

    /// <summary>This error with the file it is in named in its message (itself when it names one already).</summary>
    internal GgufFormatException InFile(string? filePath) =>
        FilePath is not null || filePath is null ? this : new GgufFormatException(Offset, Detail, filePath, this);
}

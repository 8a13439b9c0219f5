namespace ManagedLM.Gguf;

/// <summary>A GGUF file is malformed: the message names the byte offset and what was expected there.</summary>
public sealed class GgufFormatException : Exception
{
    /// <summary>Byte offset in the file where the problem was found.</summary>
    public long Offset { get; }

    /// <summary>A format error at byte <paramref name="offset"/>; the message says what was expected there.</summary>
    public GgufFormatException(long offset, string message)
        : base($"Invalid GGUF at byte {offset}: {message}")
    {
        Offset = offset;
    }
}

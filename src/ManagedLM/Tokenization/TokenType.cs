namespace ManagedLM.Tokenization;

/// <summary>Token types as GGUF stores them in <c>tokenizer.ggml.token_type</c>.</summary>
public enum TokenType
{
    Undefined = 0,
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

/// <summary>Per-token attributes (llama.cpp's llama_token_attr): the type plus flags set by name heuristics.</summary>
[Flags]
internal enum TokenAttributes
{
    Undefined = 0,
    Unknown = 1 << 0,
    Unused = 1 << 1,
    Normal = 1 << 2,
    Control = 1 << 3,
    UserDefined = 1 << 4,
    Byte = 1 << 5,
    /// <summary>Whitespace to the left of the special token is dropped when it is parsed from text.</summary>
    LStrip = 1 << 7,
    /// <summary>Whitespace to the right of the special token is dropped when it is parsed from text.</summary>
    RStrip = 1 << 8,
}

namespace ManagedLM.Grammars;

/// <summary>
/// A JSON Schema cannot be turned into a grammar: it is malformed, uses a keyword or keyword combination the converter
/// does not support, or would produce an unbounded grammar. The message names the keyword and <see cref="Path"/>.
/// </summary>
public sealed class JsonSchemaException : ArgumentException
{
    /// <summary>A problem with the keyword at <paramref name="path"/> (a JSON pointer into the schema, "#" for the root).</summary>
    public JsonSchemaException(string path, string message)
        : base($"JSON schema at {path}: {message}")
    {
        Path = path;
    }

    /// <summary>JSON pointer of the schema location the problem was found at, e.g. <c>#/properties/age/minimum</c>.</summary>
    public string Path { get; }
}

namespace ManagedLM.Grammars;

/// <summary>What one position of a lowered grammar holds.</summary>
internal enum GrammarElementKind : byte
{
    /// <summary>End of an alternative.</summary>
    End,
    /// <summary>A reference to the rule whose index is the value.</summary>
    RuleRef,
    /// <summary>The single code point that is the value.</summary>
    Char,
    /// <summary>Any code point of the character class whose index is the value.</summary>
    Class,
}

internal readonly record struct GrammarElement(GrammarElementKind Kind, int Value);

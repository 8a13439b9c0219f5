using ManagedLM.Grammars;

namespace ManagedLM.Tests.Grammars;

/// <summary>Checks a schema's grammar against the test validator: on given instances, and on random sentences.</summary>
internal static class JsonSchemaAssert
{
    /// <summary>
    /// The grammar accepts every instance of <paramref name="valid"/> and rejects every one of <paramref name="invalid"/>
    /// (the validator agreeing on both), and each of <paramref name="samples"/> random sentences validates.
    /// </summary>
    public static void GrammarMatches(string schema, IEnumerable<string> valid, IEnumerable<string> invalid, int samples = 200, int seed = 1234)
    {
        var grammar = new JsonSchemaGbnfRecognizer(JsonSchemaGrammar.ToGbnf(schema));
        foreach (var instance in valid)
        {
            Assert.True(JsonSchemaTestValidator.IsValid(schema, instance), $"test data: {instance} should be valid");
            Assert.True(grammar.Accepts(instance), $"grammar for {schema} should accept {instance}");
        }
        foreach (var instance in invalid)
        {
            Assert.False(JsonSchemaTestValidator.IsValid(schema, instance), $"test data: {instance} should be invalid");
            Assert.False(grammar.Accepts(instance), $"grammar for {schema} should reject {instance}");
        }
        var random = new Random(seed);
        for (int i = 0; i < samples; i++)
        {
            var sentence = grammar.Sample(random);
            Assert.True(JsonSchemaTestValidator.IsValid(schema, sentence), $"sampled {sentence} violates {schema}");
        }
    }
}

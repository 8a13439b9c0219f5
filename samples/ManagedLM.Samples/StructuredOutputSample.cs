using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using ManagedLM.Chat;
using ManagedLM.Generation;
using ManagedLM.Grammars;
using ManagedLM.Model;
using ManagedLM.Sampling;
using Microsoft.Extensions.AI;

namespace ManagedLM.Samples;

/// <summary>The README's structured output sample: a GBNF grammar, a JSON Schema, and a typed reply through IChatClient.</summary>
public static class StructuredOutputSample
{
    public sealed record Pet([property: MaxLength(12)] string Name, [property: Range(0, 8)] int Legs);

    /// <summary>Prints the three replies, then a line of JSON with them.</summary>
    public static async Task RunAsync(TransformerModel model, CancellationToken ct)
    {
        #region readme: structured-output
        // Parsed once, immutable: any number of requests and threads share a grammar.
        Grammar yesNo = Grammar.FromGbnf("""root ::= ("yes" | "no") ", because " [a-z ]{1,40} "." """);
        Grammar person = Grammar.FromJsonSchema("""
            {"type": "object",
             "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer", "minimum": 0, "maximum": 120}},
             "required": ["name", "age"]}
            """);
        var sampling = new SamplingOptions { Temperature = 0.8f, Seed = 42 };
        using Generator generator = model.CreateGenerator();
        string answer = generator.Generate("Is the sky blue? ", new GenerationOptions { Grammar = yesNo, Sampling = sampling });
        string json = generator.Generate("A person: ", new GenerationOptions { Grammar = person, Sampling = sampling });

        // Through Microsoft.Extensions.AI, ChatOptions.ResponseFormat becomes the grammar: typed replies.
        IChatClient client = new ModelChatClient(model);
        ChatResponse<Pet> pet = await client.GetResponseAsync<Pet>("Describe a pet.", new ChatOptions { Temperature = 1, Seed = 1 }, cancellationToken: ct);
        Console.WriteLine($"{answer}\n{json}\n{pet.Result}");
        #endregion

        Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?> { ["answer"] = answer, ["json"] = json, ["pet"] = pet.Text }));
    }
}

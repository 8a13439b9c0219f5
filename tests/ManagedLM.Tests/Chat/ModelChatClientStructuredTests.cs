using System.Text.Json;
using ManagedLM.Chat;
using ManagedLM.Generation;
using ManagedLM.Grammars;
using ManagedLM.Tests.Concurrency;
using ManagedLM.Tests.Grammars;
using Microsoft.Extensions.AI;

namespace ManagedLM.Tests.Chat;

/// <summary>ChatOptions.ResponseFormat through the IChatClient abstractions: JSON mode, JSON schemas, typed replies.</summary>
public class ModelChatClientStructuredTests(SharedModels models) : IClassFixture<SharedModels>
{
    public sealed record Pet(string Name, int Legs, bool Friendly);

    private IChatClient Client() => new ModelChatClient(models.Stories, new ModelChatClientOptions
    {
        Generator = new GeneratorOptions { ContextLength = 512 },
        Generation = new GenerationOptions { MaxTokens = 300 },
    });

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task Json_schema_response_format_gives_valid_json(int seed)
    {
        const string Schema = """{"type": "object", "properties": {"color": {"enum": ["red", "blue"]}, "size": {"type": "integer", "minimum": 1, "maximum": 5}}, "required": ["color", "size"]}""";
        using var client = Client();
        var format = ChatResponseFormat.ForJsonSchema(JsonDocument.Parse(Schema).RootElement, "thing");
        var response = await client.GetResponseAsync("Describe a ball.", new ChatOptions { ResponseFormat = format, Temperature = 1, Seed = seed });
        Assert.Equal(ChatFinishReason.Stop, response.FinishReason);
        Assert.True(JsonSchemaTestValidator.IsValid(Schema, response.Text), response.Text);
    }

    [Fact]
    public async Task Json_response_format_gives_a_json_object_or_its_prefix()
    {
        using var client = Client();
        var response = await client.GetResponseAsync("Hi", new ChatOptions { ResponseFormat = ChatResponseFormat.Json, Temperature = 1, Seed = 4, MaxOutputTokens = 80 });
        Assert.True(Grammar.JsonObject.CreateMatcher().TryAccept(response.Text), response.Text);
        if (response.FinishReason == ChatFinishReason.Stop)
            Assert.Equal(JsonValueKind.Object, JsonDocument.Parse(response.Text).RootElement.ValueKind);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    public async Task Typed_responses_deserialize(int seed)
    {
        using var client = Client();
        var response = await client.GetResponseAsync<Pet>("Tell me about a pet.", new ChatOptions { Temperature = 1, Seed = seed });
        Assert.True(response.TryGetResult(out var pet), response.Text);
        Assert.NotNull(pet!.Name);
    }

    [Fact]
    public async Task Streaming_follows_the_response_format_too()
    {
        const string Schema = """{"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}""";
        using var client = Client();
        var format = ChatResponseFormat.ForJsonSchema(JsonDocument.Parse(Schema).RootElement);
        var text = string.Concat(await client.GetStreamingResponseAsync("Yes?", new ChatOptions { ResponseFormat = format, Temperature = 1, Seed = 2 })
            .Select(u => u.Text).ToListAsync());
        Assert.True(JsonSchemaTestValidator.IsValid(Schema, text), text);
    }

    [Fact]
    public async Task An_unsupported_schema_keyword_is_an_error_naming_it()
    {
        using var client = Client();
        var format = ChatResponseFormat.ForJsonSchema(JsonDocument.Parse("""{"type": "array", "uniqueItems": true}""").RootElement);
        var e = await Assert.ThrowsAsync<JsonSchemaException>(() => client.GetResponseAsync("x", new ChatOptions { ResponseFormat = format }));
        Assert.Contains("uniqueItems", e.Message);
    }
}

using System.Text.RegularExpressions;
using ManagedLM.Chat.Tools;

namespace ManagedLM.Tests.Chat.Tools;

public class ToolCallParseTests
{
    [Theory]
    [MemberData(nameof(ToolReplies.Indices), MemberType = typeof(ToolReplies))]
    public void Parses_a_finished_reply(int index)
    {
        var c = ToolReplies.All[index];
        var parsed = c.ToolFormat.Parse(c.Reply, c.Options());
        Assert.Equal(c.Content, parsed.Content);
        Assert.Equal(c.Reasoning, parsed.Reasoning);
        Assert.Equal(c.Calls, parsed.ToolCalls.Select(t => $"{t.Name} {t.Arguments}"));
    }

    [Fact]
    public void Generated_ids_are_call_and_24_characters_and_follow_the_seed()
    {
        var reply = ToolReplies.All[1];
        var a = ToolCallFormat.Hermes.Parse(reply.Reply, new ReplyParseOptions { IdSeed = 5 });
        var b = ToolCallFormat.Hermes.Parse(reply.Reply, new ReplyParseOptions { IdSeed = 5 });
        var c = ToolCallFormat.Hermes.Parse(reply.Reply, new ReplyParseOptions { IdSeed = 6 });
        Assert.All(a.ToolCalls, t => Assert.Matches(new Regex("^call_[A-Za-z0-9]{24}$"), t.Id));
        Assert.Equal(a.ToolCalls.Select(t => t.Id), b.ToolCalls.Select(t => t.Id));
        Assert.NotEqual(a.ToolCalls[0].Id, a.ToolCalls[1].Id);
        Assert.NotEqual(a.ToolCalls[0].Id, c.ToolCalls[0].Id);
    }

    [Fact]
    public void Mistral_keeps_the_models_ids_and_generates_nine_characters_for_missing_ones()
    {
        var calls = ToolCallFormat.MistralNemo.Parse(ToolReplies.All.First(r => r.Reply.StartsWith("Sure. [TOOL_CALLS]", StringComparison.Ordinal)).Reply).ToolCalls;
        Assert.Equal("abcDEF123", calls[0].Id);
        Assert.Matches(new Regex("^[A-Za-z0-9]{9}$"), calls[1].Id);
    }

    [Fact]
    public void Command_r7b_keeps_its_call_ids() =>
        Assert.Equal(["0", "1"], ToolCallFormat.CommandR7B.Parse(ToolReplies.All.First(r => r.Format == "command-r7b").Reply).ToolCalls.Select(t => t.Id));

    [Fact]
    public void Reasoning_that_never_closes_is_content_when_the_prompt_did_not_open_it()
    {
        var parsed = ToolCallFormat.DeepSeekR1.Parse("<think>unfinished");
        Assert.Equal("unfinished", parsed.Reasoning);
        Assert.Equal("", parsed.Content);
        Assert.Null(ToolCallFormat.DeepSeekR1.Parse("no reasoning here").Reasoning);
    }

    [Fact]
    public void Hostile_text_never_throws()
    {
        var random = new Random(3);
        string alphabet = "{}[]\":,\\ \n<>|_tolcaTOOLCALS>>>all\nnameargumentsparameters0123456789｜▁";
        string deep = new string('[', 5000) + new string('{', 5000);
        foreach (var (_, format) in ToolCallFormat.All)
        {
            foreach (string marker in new[] { "<tool_call>", "[TOOL_CALLS]", "<|START_ACTION|>", "<｜tool▁calls▁begin｜>", "<|python_tag|>", "" })
            {
                format.Parse(marker + deep);
                format.Parse(marker + "{\"name\": \"f\", \"arguments\": " + deep);
            }
            for (int i = 0; i < 300; i++)
            {
                var chars = new char[random.Next(1, 60)];
                for (int j = 0; j < chars.Length; j++) chars[j] = alphabet[random.Next(alphabet.Length)];
                string text = new(chars);
                var parsed = format.Parse(text);
                Assert.NotNull(parsed.Content);
                var stream = format.CreateStreamParser();
                foreach (char ch in text) stream.Append(ch.ToString());
                stream.Finish();
                Assert.Equal(parsed.ToolCalls.Length, stream.Result!.ToolCalls.Length);
            }
        }
    }
}

public class ToolChoiceAndMessageTests
{
    [Theory]
    [InlineData("\"auto\"", ToolChoiceMode.Auto, null)]
    [InlineData("\"none\"", ToolChoiceMode.None, null)]
    [InlineData("\"required\"", ToolChoiceMode.Required, null)]
    [InlineData("{\"type\": \"function\", \"function\": {\"name\": \"get_forecast\"}}", ToolChoiceMode.Function, "get_forecast")]
    public void Reads_openai_tool_choice(string json, ToolChoiceMode mode, string? name) =>
        Assert.Equal(new ToolChoice(mode, name), ToolChoice.FromOpenAi(System.Text.Json.Nodes.JsonNode.Parse(json)));

    [Theory]
    [InlineData("\"sometimes\"", "tool_choice \"sometimes\" is not one of")]
    [InlineData("{\"type\": \"function\"}", "tool_choice {\"type\":\"function\"} is not one of")]
    [InlineData("3", "tool_choice 3 is not one of")]
    public void Rejects_other_tool_choices(string json, string message) =>
        Assert.StartsWith(message, Assert.Throws<ArgumentException>(() => ToolChoice.FromOpenAi(System.Text.Json.Nodes.JsonNode.Parse(json))).Message, StringComparison.Ordinal);

    [Fact]
    public void Absent_tool_choice_is_auto() => Assert.Same(ToolChoice.Auto, ToolChoice.FromOpenAi(null));

    [Fact]
    public void A_reply_becomes_an_assistant_message_the_template_renders_back()
    {
        var reply = ToolCallFormat.Hermes.Parse(ToolReplies.All[3].Reply, new ReplyParseOptions { IdSeed = 2 });
        var message = reply.ToMessage();
        Assert.Equal(("assistant", null, "The user wants the weather."), (message.Role, message.Content, message.ReasoningContent));
        Assert.Equal(reply.ToolCalls.AsEnumerable(), message.ToolCalls.AsEnumerable());

        var template = ManagedLM.Chat.ChatTemplate.Parse("{% for m in messages %}{{ m.role }}|{{ m.reasoning_content }}|{{ m.tool_calls[0].function.arguments }}{% endfor %}");
        Assert.Equal("assistant|The user wants the weather.|{\"days\":2,\"location\":\"Oslo\"}", template.Render([message]));
        Assert.Equal("Hi", ToolCallFormat.Hermes.Parse("Hi").ToMessage().Content);
        Assert.Equal("why", ManagedLM.Chat.ChatMessage.FromJson(System.Text.Json.Nodes.JsonNode.Parse("""{"role":"assistant","content":"a","reasoning_content":"why"}""")!).ReasoningContent);
    }
}

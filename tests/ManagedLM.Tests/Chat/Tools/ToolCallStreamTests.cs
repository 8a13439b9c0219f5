using System.Text;
using ManagedLM.Chat.Tools;

namespace ManagedLM.Tests.Chat.Tools;

public class ToolCallStreamTests
{
    /// <summary>What a stream of events adds up to.</summary>
    static (string Content, string? Reasoning, List<(string Id, string Name, string Arguments)> Calls) Collect(IEnumerable<ReplyEvent> events)
    {
        var content = new StringBuilder();
        StringBuilder? reasoning = null;
        var calls = new List<(string Id, string Name, StringBuilder Arguments)>();
        foreach (var e in events)
        {
            switch (e.Kind)
            {
                case ReplyEventKind.Content: content.Append(e.Text); break;
                case ReplyEventKind.Reasoning: (reasoning ??= new()).Append(e.Text); break;
                case ReplyEventKind.ToolCallStart:
                    Assert.Equal(calls.Count, e.Index);
                    calls.Add((e.Id!, e.Name!, new StringBuilder()));
                    break;
                case ReplyEventKind.ToolCallArguments:
                    Assert.InRange(e.Index, 0, calls.Count - 1);
                    calls[e.Index].Arguments.Append(e.Text);
                    break;
            }
        }
        return (content.ToString(), reasoning?.ToString(), calls.Select(c => (c.Id, c.Name, c.Arguments.ToString())).ToList());
    }

    [Theory]
    [MemberData(nameof(ToolReplies.WellFormedIndices), MemberType = typeof(ToolReplies))]
    public void Streamed_events_add_up_to_the_finished_parse_for_any_split(int index)
    {
        var c = ToolReplies.All[index];
        var expected = c.ToolFormat.Parse(c.Reply, c.Options());
        for (int seed = 0; seed < 40; seed++)
        {
            var random = new Random(seed);
            var parser = c.ToolFormat.CreateStreamParser(c.Options());
            var events = new List<ReplyEvent>();
            for (int i = 0; i < c.Reply.Length;)
            {
                int n = Math.Min(c.Reply.Length - i, seed == 0 ? 1 : random.Next(1, 9));
                events.AddRange(parser.Append(c.Reply.Substring(i, n)));
                i += n;
            }
            events.AddRange(parser.Finish());
            var (content, reasoning, calls) = Collect(events);
            Assert.Equal(expected.Content, content);
            Assert.Equal(expected.Reasoning ?? "", reasoning ?? "");
            Assert.Equal(expected.ToolCalls.Select(t => (t.Id, t.Name, t.Arguments)), calls);
            Assert.Equal(expected.Content, parser.Result!.Content);
            Assert.Equal(expected.Reasoning, parser.Result.Reasoning);
            Assert.Equal(expected.ToolCalls.AsEnumerable(), parser.Result.ToolCalls.AsEnumerable());
        }
    }

    [Fact]
    public void Content_is_released_until_a_possible_marker()
    {
        var parser = ToolCallFormat.Hermes.CreateStreamParser(new ReplyParseOptions { IdSeed = 1 });
        Assert.Equal([new ReplyEvent(ReplyEventKind.Content, "Checking")], parser.Append("Checking <tool"));
        Assert.Empty(parser.Append("_call>\n{\"name\": \"get_fore"));
        var events = parser.Append("cast\", \"arguments\": {\"days\"");
        var start = events[0];
        Assert.Equal((ReplyEventKind.ToolCallStart, "get_forecast", 0), (start.Kind, start.Name, start.Index));
        Assert.Equal(new ReplyEvent(ReplyEventKind.ToolCallArguments, "{\"days\"", 0), Assert.Single(events.Skip(1)));
        Assert.Equal([new ReplyEvent(ReplyEventKind.ToolCallArguments, ":2", 0)], parser.Append(": 2"));
        Assert.Equal([new ReplyEvent(ReplyEventKind.ToolCallArguments, "}", 0)], parser.Append("}}\n</tool_call>"));
        Assert.Empty(parser.Finish());
        Assert.Equal(start.Id, Assert.Single(parser.Result!.ToolCalls).Id);
    }

    [Fact]
    public void Text_that_only_looked_like_a_marker_is_released()
    {
        var parser = ToolCallFormat.Hermes.CreateStreamParser();
        Assert.Equal([new ReplyEvent(ReplyEventKind.Content, "a")], parser.Append("a <tool"));
        Assert.Equal([new ReplyEvent(ReplyEventKind.Content, " <toolbox")], parser.Append("box"));
    }

    [Fact]
    public void Reasoning_streams_as_its_own_deltas()
    {
        var parser = ToolCallFormat.DeepSeekR1.CreateStreamParser(new ReplyParseOptions { StartsInReasoning = true });
        Assert.Equal([new ReplyEvent(ReplyEventKind.Reasoning, "Let me")], parser.Append("Let me"));
        Assert.Equal([new ReplyEvent(ReplyEventKind.Reasoning, " see.")], parser.Append(" see.</th"));
        Assert.Empty(parser.Append("ink>\n\n"));
        Assert.Equal([new ReplyEvent(ReplyEventKind.Content, "Sunny.")], parser.Append("Sunny."));
        Assert.Empty(parser.Finish());
        Assert.Equal(("Sunny.", "Let me see."), (parser.Result!.Content, parser.Result.Reasoning));
        Assert.Empty(parser.Result.ToolCalls);
    }

    [Fact]
    public void A_finished_parser_takes_no_more_text()
    {
        var parser = ToolCallFormat.Generic.CreateStreamParser();
        parser.Append("{\"response\": \"hi\"}");
        Assert.Equal([new ReplyEvent(ReplyEventKind.Content, "hi")], parser.Finish());
        Assert.Throws<InvalidOperationException>(() => parser.Append("x"));
        Assert.Throws<InvalidOperationException>(() => parser.Finish());
    }
}

using System.Text.Json;
using ManagedLM.Chat;
using ManagedLM.Cli.Commands;

namespace ManagedLM.Tests.Cli;

/// <summary>generate's grammar flags (--grammar, --grammar-file, -j, -jf) and bench --grammar.</summary>
public class GrammarFlagsTests
{
    [Fact]
    public void Json_schema_flag_constrains_the_generated_text()
    {
        const string Schema = """{"type":"object","properties":{"age":{"type":"integer","minimum":0,"maximum":99}},"required":["age"]}""";
        var (code, output, error) = CliRun.Invoke("generate", "-m", TestData.Model("stories260K.gguf"), "-p", "Once upon a time", "-n", "100",
            "--temp", "1", "-s", "7", "-t", "1", "-j", Schema);
        Assert.True(code == 0, error);
        string reply = output.TrimEnd('\n')["Once upon a time".Length..];
        using var doc = JsonDocument.Parse(reply);
        Assert.InRange(doc.RootElement.GetProperty("age").GetInt32(), 0, 99);
        Assert.Contains("stop: EndOfGeneration", error);
    }

    [Fact]
    public void Grammar_file_constrains_the_generated_text()
    {
        string path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, "root ::= (\"yes\" | \"no\") \".\"\n");
            var (code, output, error) = CliRun.Invoke("generate", "-m", TestData.Model("stories260K.gguf"), "-p", "Once", "-n", "20", "--temp", "1",
                "-s", "3", "-t", "1", "--grammar-file", path);
            Assert.True(code == 0, error);
            Assert.Matches("^Once(yes|no)\\.\n$", output);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("--grammar", "root ::= \"x", "--grammar: Unterminated string literal (line 1, column 10)")]
    [InlineData("-j", """{"type":"array","uniqueItems":true}""", "keyword 'uniqueItems' is not supported")]
    [InlineData("--json-schema-file", "/nonexistent/schema.json", "--json-schema-file:")]
    public void Bad_grammars_are_reported_under_their_flag(string flag, string value, string message)
    {
        var (code, _, error) = CliRun.Invoke("generate", "-m", TestData.Model("stories260K.gguf"), "-p", "Once", flag, value);
        Assert.NotEqual(0, code);
        Assert.Contains(message, error);
    }

    [Fact]
    public void Two_grammar_flags_are_refused()
    {
        var (code, _, error) = CliRun.Invoke("generate", "-m", TestData.Model("stories260K.gguf"), "-p", "Once", "--grammar", "root ::= \"x\"", "-j", "{}");
        Assert.NotEqual(0, code);
        Assert.Contains("Give one of --grammar, --grammar-file, --json-schema and --json-schema-file", error);
    }

    [Fact]
    public void Bench_grammar_reports_free_and_constrained_speed_and_the_cost()
    {
        var output = new StringWriter();
        var settings = new BenchCommand.BenchSettings(TestData.Model("stories260K.gguf"), [4], [16], [1], 2);
        var results = GrammarBench.Run(settings, GrammarBench.Load("json"), json: true, output);
        var r = Assert.Single(results);
        Assert.Equal(2, r.Free.Length);
        Assert.All(r.Free.Concat(r.Constrained), v => Assert.True(v > 0));
        var line = JsonDocument.Parse(output.ToString().Trim()).RootElement;
        Assert.Equal("grammar", line.GetProperty("mode").GetString());
        Assert.Equal(Math.Round(r.Cost, 4), line.GetProperty("cost").GetDouble());
    }

    [Fact]
    public void Generate_renders_the_prompt_through_a_chat_template_file()
    {
        string path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}<|im_start|>assistant\n");
            var (code, output, error) = CliRun.Invoke("generate", "-m", TestData.Model("stories260K.gguf"), "-p", "Once upon a time", "-n", "4", "--temp", "0",
                "-t", "1", "--chat-template-file", path, "--json");
            Assert.True(code == 0, error);
            using var model = ManagedLM.Model.TransformerModel.Load(TestData.Model("stories260K.gguf"));
            var template = ManagedLM.Chat.ChatTemplate.Parse(File.ReadAllText(path), model.ChatTemplate.BosToken, model.ChatTemplate.EosToken);
            int[] expected = template.Tokenize(model.Tokenizer, template.Render([ManagedLM.Chat.ChatMessage.User("Once upon a time")]));
            var ids = JsonDocument.Parse(output).RootElement.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            Assert.Equal(expected, ids);
        }
        finally
        {
            File.Delete(path);
        }
    }
}

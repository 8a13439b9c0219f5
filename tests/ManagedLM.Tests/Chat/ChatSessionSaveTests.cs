using System.Text;
using ManagedLM.Chat;
using ManagedLM.Tests.Concurrency;

namespace ManagedLM.Tests.Chat;

/// <summary>
/// A saved chat is a file people read: indented JSON with text as written (System.Text.Json's relaxed encoder still
/// writes characters beyond the BMP, such as emoji, as \u escapes); files of the escaped form still load.
/// </summary>
public class ChatSessionSaveTests(SharedModels models) : IClassFixture<SharedModels>
{
    [Fact]
    public void Save_writes_quotes_non_ASCII_and_HTML_characters_readably()
    {
        using var session = new ChatSession(models.Stories, new ChatSessionOptions { SystemPrompt = "Say \"hi\" <b>&</b> 'ok'" });
        session.Add(ChatMessage.User("Où est le café? ≤ 3 €"));
        var saved = new MemoryStream();
        session.Save(saved);
        Assert.Equal("""
            {
              "system": "Say \"hi\" <b>&</b> 'ok'",
              "messages": [
                {
                  "role": "user",
                  "content": "Où est le café? ≤ 3 €"
                }
              ]
            }
            """.ReplaceLineEndings("\n"), Encoding.UTF8.GetString(saved.ToArray()).ReplaceLineEndings("\n"));
    }

    [Fact]
    public void Load_reads_files_written_with_escapes()
    {
        const string escaped = """{"system":"Say \u0022hi\u0022 \u003Cb\u003E","messages":[{"role":"user","content":"Caf\u00E9 \uD83D\uDE00"}]}""";
        using var session = new ChatSession(models.Stories, new ChatSessionOptions());
        session.Load(new MemoryStream(Encoding.UTF8.GetBytes(escaped)));
        Assert.Equal("Say \"hi\" <b>", session.SystemPrompt);
        Assert.Equal([ChatMessage.User("Café 😀")], session.Messages);
    }
}

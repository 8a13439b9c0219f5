using ManagedLM.Cli;

namespace ManagedLM.Tests.Cli;

/// <summary>Runs `managedlm` in process, as Program does, with its stdout and stderr captured.</summary>
internal static class CliRun
{
    public static (int Code, string Output, string Error) Invoke(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = ManagedLmCli.Invoke(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    /// <summary>
    /// The words of a command line as a POSIX shell splits them: whitespace separates, quotes group (single quotes
    /// literally, double quotes with backslash escapes). An unquoted | ends the command (the rest is another one).
    /// </summary>
    public static string[] ShellWords(string commandLine)
    {
        var words = new List<string>();
        var word = new System.Text.StringBuilder();
        bool inWord = false;
        for (int i = 0; i < commandLine.Length; i++)
        {
            char c = commandLine[i];
            if (char.IsWhiteSpace(c))
            {
                if (inWord)
                    words.Add(word.ToString());
                word.Clear();
                inWord = false;
                continue;
            }
            if (c == '|')
                break;
            inWord = true;
            if (c == '\'')
            {
                int end = commandLine.IndexOf('\'', i + 1);
                Assert.True(end > 0, $"Unclosed ' in: {commandLine}");
                word.Append(commandLine, i + 1, end - i - 1);
                i = end;
            }
            else if (c == '"')
            {
                for (i++; i < commandLine.Length && commandLine[i] != '"'; i++)
                    word.Append(commandLine[i] == '\\' && i + 1 < commandLine.Length && commandLine[i + 1] is '"' or '\\' or '$' or '`' ? commandLine[++i] : commandLine[i]);
                Assert.True(i < commandLine.Length, $"Unclosed \" in: {commandLine}");
            }
            else if (c == '\\' && i + 1 < commandLine.Length)
                word.Append(commandLine[++i]);
            else
                word.Append(c);
        }
        if (inWord)
            words.Add(word.ToString());
        return words.ToArray();
    }
}

using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;

namespace ManagedLM.Cli.Commands;

/// <summary>--help: System.CommandLine's help, then the examples of the command asked about (<see cref="CliCommand.Examples"/>).</summary>
internal sealed class ExamplesHelpAction(HelpAction help) : SynchronousCommandLineAction
{
    // As HelpAction: `managedlm generate --bad --help` shows help, not the parse error.
    public override bool ClearsParseErrors => true;

    public override int Invoke(ParseResult parseResult)
    {
        int code = help.Invoke(parseResult);
        if (parseResult.CommandResult.Command is CliCommand { Examples.Length: > 0 } command)
        {
            var output = parseResult.InvocationConfiguration.Output;
            output.WriteLine("Examples:");
            foreach (var example in command.Examples)
            {
                output.WriteLine($"  # {example.Description}");
                output.WriteLine($"  {example.CommandLine}");
                output.WriteLine();
            }
        }
        return code;
    }
}

using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;
using ManagedLM.Cli.Commands;

namespace ManagedLM.Cli;

/// <summary>
/// The `managedlm` command line: the root command with every subcommand and help with examples, run so that a parse
/// error or an exception ending a command becomes one line on stderr and an exit code (<see cref="ExitCodes"/>).
/// </summary>
internal static class ManagedLmCli
{
    /// <summary>
    /// The root command. A plain <see cref="Command"/> rather than a RootCommand, whose name (and so every usage line)
    /// would be the assembly's, ManagedLM.Cli, instead of the executable's.
    /// </summary>
    public static Command CreateRoot()
    {
        var root = new Command("managedlm", "Run GGUF language models in pure managed .NET.");
        var help = new HelpOption();
        help.Action = new ExamplesHelpAction((HelpAction)help.Action!);
        root.Options.Add(help);
        root.Options.Add(new VersionOption());
        foreach (var command in CommandCatalog.All())
            root.Subcommands.Add(command);
        return root;
    }

    /// <summary>Parses and runs <paramref name="args"/>, writing to the given writers (default: the console).</summary>
    public static int Invoke(string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        var configuration = new InvocationConfiguration
        {
            EnableDefaultExceptionHandler = false,
            Output = output ?? Console.Out,
            Error = error ?? Console.Error,
        };
        if (args.Length == 0)
        {
            // Nothing to do: say what there is to do.
            CreateRoot().Parse(["--help"]).Invoke(configuration);
            return ExitCodes.Usage;
        }
        var parse = CreateRoot().Parse(args);
        string command = CommandPath(parse.CommandResult);
        if (parse.Action is ParseErrorAction)
        {
            // Instead of the whole help: the errors and where to find the help.
            configuration.Error.WriteLine($"{command}: error: {string.Join(" ", parse.Errors.Select(e => e.Message))} See '{command} --help'.");
            return ExitCodes.Usage;
        }
        try
        {
            return parse.Invoke(configuration);
        }
        catch (Exception e)
        {
            return ExitCodes.Report(e, command, configuration.Error, ExitCodes.DebugRequested());
        }
    }

    // "managedlm generate": the names from the root to the command given.
    private static string CommandPath(CommandResult result) =>
        result.Parent is CommandResult parent ? $"{CommandPath(parent)} {result.Command.Name}" : result.Command.Name;
}

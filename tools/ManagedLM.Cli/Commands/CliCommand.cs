using System.Collections.Immutable;
using System.CommandLine;

namespace ManagedLM.Cli.Commands;

/// <summary>A `managedlm` subcommand with the examples its --help prints (<see cref="ExamplesHelpAction"/>).</summary>
internal sealed class CliCommand(string name, string description, ImmutableArray<CommandExample> examples) : Command(name, description)
{
    public ImmutableArray<CommandExample> Examples { get; } = examples;
}

/// <summary>One use of a command: what it does, and a command line that does it.</summary>
internal sealed record CommandExample(string Description, string CommandLine);

using System.CommandLine;

namespace ManagedLM.Cli.Commands;

/// <summary>Every `managedlm` subcommand, one file each in this folder.</summary>
internal static class CommandCatalog
{
    public static IEnumerable<Command> All()
    {
        yield return InspectCommand.Create();
        yield return GenerateCommand.Create();
        yield return ChatCommand.Create();
        yield return ServeCommand.Create();
        yield return TokenizeCommand.Create();
        yield return EmbedCommand.Create();
        yield return BenchCommand.Create();
        yield return SynthCommand.Create();
        yield return QuantizeCommand.Create();
        yield return SplitCommand.Create();
    }
}

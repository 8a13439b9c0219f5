using System.CommandLine;
using ManagedLM.Cli.Commands;

var root = new RootCommand("managedlm: run GGUF language models in pure managed .NET.");
foreach (var command in CommandCatalog.All())
    root.Subcommands.Add(command);
return root.Parse(args).Invoke();

using ManagedLM.Cli;

return ManagedLmCli.Invoke(args);

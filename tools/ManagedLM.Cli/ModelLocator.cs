namespace ManagedLM.Cli;

/// <summary>Finds the model file a command should use: --model, then MANAGEDLM_MODEL, then ../shared/models/stories260K.gguf.</summary>
internal static class ModelLocator
{
    public const string EnvironmentVariable = "MANAGEDLM_MODEL";

    /// <summary>The path to use, or throws <see cref="FileNotFoundException"/> saying where it looked.</summary>
    public static string Resolve(string? model)
    {
        if (!string.IsNullOrEmpty(model))
            return File.Exists(model) ? model : throw new FileNotFoundException($"Model file not found: {model}", model);
        string? env = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrEmpty(env))
            return File.Exists(env) ? env : throw new FileNotFoundException($"Model file not found: {env} (from {EnvironmentVariable})", env);
        foreach (string candidate in DefaultCandidates())
        {
            if (File.Exists(candidate))
                return candidate;
        }
        throw new FileNotFoundException(
            $"No model given: pass --model FILE or set {EnvironmentVariable} (looked for ../shared/models/stories260K.gguf too). See checkpoints/README.md.");
    }

    // ../shared/models beside the repository root: found from the working directory and from the executable's folder.
    private static IEnumerable<string> DefaultCandidates()
    {
        foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "ManagedLM.sln")))
                {
                    yield return Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "models", "stories260K.gguf"));
                    break;
                }
            }
        }
    }
}

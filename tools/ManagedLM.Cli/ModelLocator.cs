namespace ManagedLM.Cli;

/// <summary>Finds the model file a command should use: --model, then MANAGEDLM_MODEL, then ../shared/models/stories260K.gguf.</summary>
internal static class ModelLocator
{
    public const string EnvironmentVariable = "MANAGEDLM_MODEL";

    /// <summary>
    /// The path to use, or throws <see cref="FileNotFoundException"/> saying where it looked (an <see cref="IOException"/>
    /// saying so for a directory).
    /// </summary>
    public static string Resolve(string? model)
    {
        if (!string.IsNullOrEmpty(model))
            return File.Exists(NotADirectory(model)) ? model : throw new FileNotFoundException($"Model file not found: {model}", model);
        string? env = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrEmpty(env))
            return File.Exists(NotADirectory(env)) ? env : throw new FileNotFoundException($"Model file not found: {env} (from {EnvironmentVariable})", env);
        foreach (string candidate in DefaultCandidates())
        {
            if (File.Exists(candidate))
                return candidate;
        }
        throw new FileNotFoundException(
            $"No model given: pass --model FILE or set {EnvironmentVariable} (looked for ../shared/models/stories260K.gguf too). See checkpoints/README.md.");
    }

    /// <summary>The path, unless it is a directory: then an <see cref="IOException"/> that says so (opening it would say "access denied").</summary>
    public static string NotADirectory(string path) =>
        Directory.Exists(path) ? throw new IOException($"{path} is a directory, not a GGUF file.") : path;

    /// <summary>A file under ../shared/models beside the repository (e.g. <c>vocab/ggml-vocab-llama-spm.gguf.gz</c>), or throws saying where it looked.</summary>
    public static string SharedModelsFile(string relative)
    {
        var tried = new List<string>();
        foreach (string root in RepositoryRoots())
        {
            string candidate = Path.GetFullPath(Path.Combine(root, "..", "shared", "models", relative));
            if (File.Exists(candidate))
                return candidate;
            tried.Add(candidate);
        }
        throw new FileNotFoundException($"Shared model file not found: {relative} (looked for {(tried.Count > 0 ? string.Join(", ", tried) : "../shared/models beside ManagedLM.sln")}).");
    }

    /// <summary>The repository's checkpoints/ folder (./checkpoints when not run from inside the repository).</summary>
    public static string CheckpointsDirectory() =>
        Path.Combine(RepositoryRoots().FirstOrDefault() ?? Directory.GetCurrentDirectory(), "checkpoints");

    // ../shared/models beside the repository root: found from the working directory and from the executable's folder.
    private static IEnumerable<string> DefaultCandidates() =>
        RepositoryRoots().Select(root => Path.GetFullPath(Path.Combine(root, "..", "shared", "models", "stories260K.gguf")));

    // Folders holding ManagedLM.sln, above the working directory and above the executable.
    private static IEnumerable<string> RepositoryRoots()
    {
        foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "ManagedLM.sln")))
                {
                    yield return dir.FullName;
                    break;
                }
            }
        }
    }
}

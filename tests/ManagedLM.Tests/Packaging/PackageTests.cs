using System.Diagnostics;
using System.IO.Compression;
using System.Reflection;
using System.Text.Json;
using System.Xml.Linq;
using ManagedLM.Generation;
using ManagedLM.Model;
using ManagedLM.Sampling;
using ManagedLM.Tests.Cli;

namespace ManagedLM.Tests.Packaging;

/// <summary>
/// What `dotnet pack` makes, used as a user uses it: the packages' contents, the managedlm tool installed from them into
/// a tool path and run, and samples/ManagedLM.Samples.Package restored from them (into its own NuGet packages folder, so
/// that no earlier package of the same version stands in), built and run.
/// </summary>
public sealed class PackageTests : IClassFixture<PackageTests.Packed>
{
    private readonly Packed _packed;

    public PackageTests(Packed packed) => _packed = packed;

    [Fact]
    public void The_version_is_Directory_Build_props_everywhere()
    {
        Assert.Matches(@"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$", Packed.Version);
        Assert.Equal(Packed.Version, typeof(TransformerModel).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion);
        var sample = XDocument.Load(Path.Combine(Packed.SampleDirectory, "ManagedLM.Samples.Package.csproj"));
        var reference = sample.Descendants("PackageReference").Single(e => (string?)e.Attribute("Include") == "ManagedLM");
        Assert.True((string?)reference.Attribute("Version") == Packed.Version,
            $"samples/ManagedLM.Samples.Package references ManagedLM {(string?)reference.Attribute("Version")}: make it {Packed.Version}, the version in Directory.Build.props.");
    }

    [Fact]
    public void Pack_makes_the_library_its_kernels_the_server_and_the_tool_with_symbols_and_nothing_else()
    {
        string[] ids = ["ManagedLM", "ManagedLM.Kernels", "ManagedLM.Server", "ManagedLM.Cli"];
        var files = Directory.GetFiles(_packed.Artifacts).Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(ids.SelectMany(id => new[] { $"{id}.{Packed.Version}.nupkg", $"{id}.{Packed.Version}.snupkg" }).Order(StringComparer.Ordinal), files);

        foreach (string id in ids)
        {
            using var nupkg = ZipFile.OpenRead(_packed.Package(id));
            var nuspec = Nuspec(nupkg, id);
            XNamespace ns = nuspec.Root!.Name.Namespace;
            var metadata = nuspec.Root.Element(ns + "metadata")!;
            Assert.Equal(id, metadata.Element(ns + "id")!.Value);
            Assert.Equal(Packed.Version, metadata.Element(ns + "version")!.Value);
            Assert.Equal("MIT", metadata.Element(ns + "license")!.Value);
            Assert.Equal("expression", (string?)metadata.Element(ns + "license")!.Attribute("type"));
            Assert.Equal("README.md", metadata.Element(ns + "readme")!.Value);
            Assert.Contains(nupkg.Entries, e => e.FullName == "README.md");
            Assert.False(string.IsNullOrWhiteSpace(metadata.Element(ns + "description")!.Value));
        }

        // The libraries: assembly and XML docs in lib/, the pdb in the symbol package; each depends on the one below.
        foreach (var (id, dependency) in new[] { ("ManagedLM.Kernels", "System.Numerics.Tensors"), ("ManagedLM", "ManagedLM.Kernels"), ("ManagedLM.Server", "ManagedLM") })
        {
            using var nupkg = ZipFile.OpenRead(_packed.Package(id));
            Assert.Equal([$"lib/net10.0/{id}.dll", $"lib/net10.0/{id}.xml"],
                nupkg.Entries.Select(e => e.FullName).Where(n => n.StartsWith("lib/", StringComparison.Ordinal)).Order(StringComparer.Ordinal));
            var nuspec = Nuspec(nupkg, id);
            var dependencies = nuspec.Descendants(nuspec.Root!.Name.Namespace + "dependency").ToDictionary(d => (string)d.Attribute("id")!, d => (string)d.Attribute("version")!);
            Assert.True(dependencies.ContainsKey(dependency), $"{id} does not depend on {dependency}: {string.Join(", ", dependencies.Keys)}");
            if (dependency.StartsWith("ManagedLM", StringComparison.Ordinal))
                Assert.Equal(Packed.Version, dependencies[dependency]);
            using var snupkg = ZipFile.OpenRead(Path.ChangeExtension(_packed.Package(id), ".snupkg"));
            Assert.Contains(snupkg.Entries, e => e.FullName == $"lib/net10.0/{id}.pdb");
        }

        // The tool: a DotnetTool package whose command is managedlm, with the libraries beside it.
        using (var tool = ZipFile.OpenRead(_packed.Package("ManagedLM.Cli")))
        {
            var nuspec = Nuspec(tool, "ManagedLM.Cli");
            Assert.Equal("DotnetTool", (string?)nuspec.Descendants(nuspec.Root!.Name.Namespace + "packageType").Single().Attribute("name"));
            Assert.Empty(nuspec.Descendants(nuspec.Root.Name.Namespace + "dependency"));
            using (var settings = tool.GetEntry("tools/net10.0/any/DotnetToolSettings.xml")!.Open())
            {
                var command = XDocument.Load(settings).Descendants("Command").Single();
                Assert.Equal(("managedlm", "ManagedLM.Cli.dll"), ((string?)command.Attribute("Name"), (string?)command.Attribute("EntryPoint")));
            }
            var names = tool.Entries.Select(e => e.FullName).ToHashSet();
            Assert.All(new[] { "ManagedLM.Cli.dll", "ManagedLM.dll", "ManagedLM.Kernels.dll", "ManagedLM.Server.dll", "ManagedLM.Cli.runtimeconfig.json" },
                f => Assert.Contains("tools/net10.0/any/" + f, names));
        }
    }

    [Fact]
    public void The_tool_installs_from_the_packages_and_prints_its_version_and_a_generation()
    {
        string toolPath = Path.Combine(_packed.Root, "tool");
        // Only the packages just made as a source: the tool package carries its dependencies.
        string config = _packed.WriteNuGetConfig("tool.nuget.config", withThirdParty: false);
        _packed.Dotnet(["tool", "install", "ManagedLM.Cli", "--tool-path", toolPath, "--version", Packed.Version, "--configfile", config], TimeSpan.FromMinutes(3));

        string managedlm = Path.Combine(toolPath, OperatingSystem.IsWindows() ? "managedlm.exe" : "managedlm");
        Assert.Equal(Packed.Version + "\n", _packed.Run(managedlm, ["--version"], TimeSpan.FromMinutes(1)).Stdout);

        string[] generate = ["generate", "-m", TestData.Model("stories260K.gguf"), "-p", "Once", "-n", "8", "--temp", "0"];
        var installed = _packed.Run(managedlm, generate, TimeSpan.FromMinutes(2));
        var (code, output, _) = CliRun.Invoke(generate);
        Assert.Equal((0, "Once upon a time, there was a little\n"), (code, output.ReplaceLineEndings("\n")));
        Assert.Equal(output.ReplaceLineEndings("\n"), installed.Stdout);
        Assert.Contains("stop: MaxTokens after 8 tokens", installed.Stderr);
    }

    [Fact]
    public void A_sample_app_restores_ManagedLM_from_the_packages_builds_and_generates()
    {
        // The sample as a user's own app: copied out of the repository, with a nuget.config that takes ManagedLM's
        // packages from the ones just made and only from there (source mapping), the rest from this machine's NuGet
        // cache or nuget.org.
        string app = Path.Combine(_packed.Root, "app");
        Directory.CreateDirectory(app);
        foreach (string file in new[] { "ManagedLM.Samples.Package.csproj", "Program.cs", "Directory.Build.props", "Directory.Packages.props" })
            File.Copy(Path.Combine(Packed.SampleDirectory, file), Path.Combine(app, file));
        File.Copy(_packed.WriteNuGetConfig("app.nuget.config", withThirdParty: true), Path.Combine(app, "nuget.config"));

        _packed.Dotnet(["restore", "--disable-build-servers", "--ignore-failed-sources"], TimeSpan.FromMinutes(4), app);
        string restoredFrom = JsonDocument.Parse(File.ReadAllText(Path.Combine(_packed.NuGetPackages, "managedlm", Packed.Version, ".nupkg.metadata")))
            .RootElement.GetProperty("source").GetString()!;
        Assert.Equal(Path.TrimEndingDirectorySeparator(_packed.Artifacts), Path.TrimEndingDirectorySeparator(restoredFrom));
        Assert.True(Directory.Exists(Path.Combine(_packed.NuGetPackages, "managedlm.kernels", Packed.Version)), "ManagedLM.Kernels was not restored with ManagedLM.");

        _packed.Dotnet(["build", "--no-restore", "-c", "Release", "--disable-build-servers", "-o", Path.Combine(app, "out")], TimeSpan.FromMinutes(4), app);
        var run = _packed.Dotnet([Path.Combine(app, "out", "ManagedLM.Samples.Package.dll"), TestData.Model("stories260K.gguf")], TimeSpan.FromMinutes(2), app);

        using var model = TransformerModel.Load(TestData.Model("stories260K.gguf"));
        using var generator = model.CreateGenerator();
        string expected = generator.Generate("Once upon a time", new GenerationOptions { MaxTokens = 32, Sampling = SamplingOptions.Greedy });
        Assert.Equal(expected + "\n", run.Stdout);
        Assert.StartsWith(", there was a little girl", expected);
    }

    private static XDocument Nuspec(ZipArchive package, string id)
    {
        using var stream = package.GetEntry(id + ".nuspec")!.Open();
        return XDocument.Load(stream);
    }

    /// <summary>
    /// `dotnet pack` of the solution, once for the class, into a temporary folder that is deleted afterwards. It packs what
    /// the test run has built (--no-build, in the configuration these tests were built in), as `dotnet pack -c Release -o
    /// artifacts` at the repository root does after its build.
    /// </summary>
    public sealed class Packed : IDisposable
    {
#if DEBUG
        private const string Configuration = "Debug";
#else
        private const string Configuration = "Release";
#endif

        /// <summary>The one version, from Directory.Build.props.</summary>
        public static string Version { get; } = XDocument.Load(Path.Combine(TestData.RepoRoot, "Directory.Build.props"))
            .Descendants("Version").Single().Value.Trim();

        public static string SampleDirectory => Path.Combine(TestData.RepoRoot, "samples", "ManagedLM.Samples.Package");

        public string Root { get; } = Directory.CreateTempSubdirectory("managedlm-packages-").FullName;

        public string Artifacts => Path.Combine(Root, "artifacts");

        /// <summary>The NuGet packages folder of every restore and install here (NUGET_PACKAGES): empty at first.</summary>
        public string NuGetPackages => Path.Combine(Root, "pkgs");

        public Packed()
        {
            try
            {
                Dotnet(["pack", Path.Combine(TestData.RepoRoot, "ManagedLM.sln"), "-c", Configuration, "--no-build", "-o", Artifacts, "--disable-build-servers"],
                    TimeSpan.FromMinutes(5));
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        public void Dispose()
        {
            if (Directory.Exists(Root))
                Directory.Delete(Root, recursive: true);
        }

        public string Package(string id) => Path.Combine(Artifacts, $"{id}.{Version}.nupkg");

        /// <summary>
        /// A nuget.config whose only source of ManagedLM's packages is <see cref="Artifacts"/>; with
        /// <paramref name="withThirdParty"/>, everything else from this machine's NuGet packages folder (what the
        /// solution restored) or nuget.org.
        /// </summary>
        public string WriteNuGetConfig(string name, bool withThirdParty)
        {
            string cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } set
                ? set : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
            var sources = new List<(string Key, string Value, string[] Patterns)> { ("managedlm", Artifacts, ["ManagedLM", "ManagedLM.*"]) };
            if (withThirdParty)
            {
                if (Directory.Exists(cache))
                    sources.Add(("machine-cache", cache, ["*"]));
                sources.Add(("nuget.org", "https://api.nuget.org/v3/index.json", ["*"]));
            }
            var config = new XDocument(new XElement("configuration",
                new XElement("packageSources", new XElement("clear"),
                    sources.Select(s => new XElement("add", new XAttribute("key", s.Key), new XAttribute("value", s.Value)))),
                new XElement("packageSourceMapping", new XElement("clear"),
                    sources.Select(s => new XElement("packageSource", new XAttribute("key", s.Key),
                        s.Patterns.Select(p => new XElement("package", new XAttribute("pattern", p))))))));
            string path = Path.Combine(Root, name);
            config.Save(path);
            return path;
        }

        /// <summary>Runs the dotnet host with <paramref name="args"/>; fails the test, with what it printed, unless it exits 0.</summary>
        public ProcessResult Dotnet(string[] args, TimeSpan timeout, string? workingDirectory = null) =>
            Run(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet", args, timeout, workingDirectory);

        /// <summary>
        /// Runs a program with NuGet isolated in <see cref="NuGetPackages"/> and no MSBuild settings inherited from the test
        /// run; fails the test, with what it printed, unless it exits 0 within <paramref name="timeout"/>.
        /// </summary>
        public ProcessResult Run(string file, string[] args, TimeSpan timeout, string? workingDirectory = null)
        {
            var start = new ProcessStartInfo(file)
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
                WorkingDirectory = workingDirectory ?? Root,
            };
            foreach (string a in args)
                start.ArgumentList.Add(a);
            foreach (string key in start.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)).ToList())
                start.Environment.Remove(key);
            start.Environment["NUGET_PACKAGES"] = NuGetPackages;
            start.Environment["MSBUILDDISABLENODEREUSE"] = "1";
            start.Environment["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0";
            start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
            start.Environment["DOTNET_NOLOGO"] = "1";
            start.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
            // The installed tool's launcher finds the runtime beside the dotnet host running these tests.
            if (Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host)
                start.Environment["DOTNET_ROOT"] = Path.GetDirectoryName(host);

            string command = $"{Path.GetFileName(file)} {string.Join(' ', args)}";
            using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {command}.");
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(timeout))
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit();
                Assert.Fail($"{command} ran longer than {timeout}.\nstdout:\n{stdout.Result}\nstderr:\n{stderr.Result}");
            }
            process.WaitForExit();
            var result = new ProcessResult(process.ExitCode, stdout.Result.ReplaceLineEndings("\n"), stderr.Result.ReplaceLineEndings("\n"));
            Assert.True(result.ExitCode == 0, $"{command} (in {start.WorkingDirectory}): exit code {result.ExitCode}\nstdout:\n{result.Stdout}\nstderr:\n{result.Stderr}");
            return result;
        }
    }

    public sealed record ProcessResult(int ExitCode, string Stdout, string Stderr);
}

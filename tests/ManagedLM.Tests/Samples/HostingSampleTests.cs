using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using ManagedLM.Chat;
using ManagedLM.Model;
using ManagedLM.Server;
using ManagedLM.Tests.Server;
using Microsoft.Extensions.AI;

namespace ManagedLM.Tests.Samples;

/// <summary>
/// Runs the README's hosted sample (samples/ManagedLM.Samples.Hosting) as a user would: a process with its appsettings.json,
/// the model path from the environment, and SIGTERM to stop it, as a container runtime sends.
/// </summary>
public sealed partial class HostingSampleTests : IDisposable
{
    private static readonly string SampleDir = Path.Combine(TestData.RepoRoot, "samples", "ManagedLM.Samples.Hosting");

    private readonly TransformerModel _model = TransformerModel.Load(TestData.Model("stories260K.gguf"));

    public void Dispose() => _model.Dispose();

    [Fact]
    public async Task The_sample_serves_chat_and_its_own_endpoint_configured_by_appsettings_and_environment_and_drains_on_SIGTERM()
    {
        using var settings = JsonDocument.Parse(File.ReadAllText(Path.Combine(SampleDir, "appsettings.json")));
        var configured = settings.RootElement.GetProperty("ManagedLM");
        Assert.NotEqual(2, configured.GetProperty("MaxActiveSequences").GetInt32());   // so that the environment's 2 shows
        await using var app = SampleProcess.Start(new()
        {
            ["ManagedLM__ModelPath"] = TestData.Model("stories260K.gguf"),
            ["ManagedLM__MaxActiveSequences"] = "2",
        });
        using var http = new HttpClient { BaseAddress = await app.Listening(), Timeout = TimeSpan.FromSeconds(60) };

        // appsettings.json's model id; the environment's sequences over appsettings.json's.
        var model = (await Api.Get(http, "/v1/models")).Body.GetProperty("data")[0];
        Assert.Equal(configured.GetProperty("ModelId").GetString(), model.GetProperty("id").GetString());
        Assert.Equal(2, model.GetProperty("meta").GetProperty("n_parallel").GetInt32());

        // /v1/chat/completions answers as `managedlm serve` does over the same model.
        const string Chat = """{"messages": [{"role": "user", "content": "Tell me a story."}], "max_tokens": 24, "temperature": 0}""";
        var hosted = await Api.Post(http, "/v1/chat/completions", Chat);
        await using (var server = await OpenAiServer.StartAsync(_model, new ServerOptions { Port = 0, ModelId = "stories" }))
        {
            using var direct = ServerFixture.Client(server);
            var served = await Api.Post(direct, "/v1/chat/completions", Chat);
            Assert.Equal(Content(served.Body), Content(hosted.Body));
        }
        Assert.Equal("stories", hosted.Body.GetProperty("model").GetString());
        Assert.Equal(24, hosted.Body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());

        // The app's own endpoint, on the injected IChatClient.
        using (var client = new ModelChatClient(_model))
        {
            var expected = await client.GetResponseAsync("Say hello to Tim.", new ChatOptions { MaxOutputTokens = 24, Temperature = 0 });
            Assert.Equal(expected.Text, await http.GetStringAsync("/hello?name=Tim"));
        }

        // SIGTERM while a reply streams: the host stops admitting, the reply goes on to its end, the process exits 0.
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent("""
                {"messages": [{"role": "user", "content": "Tell me a long story."}], "max_tokens": 1500, "ignore_eos": true,
                 "temperature": 0, "stream": true, "stream_options": {"include_usage": true}}
                """, Encoding.UTF8, "application/json"),
        };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var events = Api.Events(reader).GetAsyncEnumerator();
        var data = new List<string>();
        while (data.Count < 2 && await events.MoveNextAsync())
            data.Add(events.Current);   // the role, then the first token: it is decoding
        app.Terminate();
        while (await events.MoveNextAsync())
            data.Add(events.Current);
        await events.DisposeAsync();
        Assert.Equal("[DONE]", data[^1]);
        using (var usage = JsonDocument.Parse(data[^2]))
            Assert.Equal(1500, usage.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        using (var last = JsonDocument.Parse(data[^3]))
            Assert.Equal("length", last.RootElement.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        var (code, output) = await app.Exit();
        Assert.True(code == 0, $"exit code {code}:\n{output}");
        Assert.Contains("Stopping: 1 requests running and 0 queued; no new ones are admitted", output);
        Assert.Contains("Stopped: every request finished", output);
        Assert.Matches(@"Loaded stories260K \(llama, 5 layers", output);
    }

    [Fact]
    public async Task Without_a_model_the_sample_stops_at_start_naming_the_key_to_set()
    {
        await using var app = SampleProcess.Start(new() { ["ManagedLM__ModelPath"] = Path.Combine(Path.GetTempPath(), "no-such-model.gguf") });
        var (code, output) = await app.Exit();
        Assert.NotEqual(0, code);
        Assert.Contains("ManagedLM:ModelPath: there is no file ", output);
    }

    [Fact]
    public void The_READMEs_appsettings_json_is_the_samples()
    {
        string[] readme = File.ReadAllLines(Path.Combine(TestData.RepoRoot, "README.md"));
        int marker = Array.FindIndex(readme, l => l.Trim() == "<!-- file: samples/ManagedLM.Samples.Hosting/appsettings.json -->");
        Assert.True(marker >= 0, "README.md: no <!-- file: samples/ManagedLM.Samples.Hosting/appsettings.json --> before a ```json block.");
        Assert.Equal("```json", readme[marker + 1].Trim());
        int end = Array.FindIndex(readme, marker + 2, l => l.Trim() == "```");
        Assert.Equal(File.ReadAllText(Path.Combine(SampleDir, "appsettings.json")).ReplaceLineEndings("\n").TrimEnd(),
            ReadmeSamples.Dedent(readme[(marker + 2)..end]));
    }

    private static string? Content(JsonElement completion) => completion.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString();

    /// <summary>The sample's assembly (copied beside the tests) run with `dotnet`, its content root the sample's folder.</summary>
    private sealed partial class SampleProcess : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _output = new();
        private readonly TaskCompletionSource<Uri> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Task _reading;

        private SampleProcess(Dictionary<string, string> environment)
        {
            var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Path.GetTempPath(),
            };
            start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "ManagedLM.Samples.Hosting.dll"));
            foreach (string a in (string[])["--urls", "http://127.0.0.1:0", "--contentRoot", SampleDir])
                start.ArgumentList.Add(a);
            foreach (string name in (string[])["ASPNETCORE_ENVIRONMENT", "DOTNET_ENVIRONMENT", "ASPNETCORE_URLS", "DOTNET_URLS"])
                start.Environment.Remove(name);
            foreach (var (name, value) in environment)
                start.Environment[name] = value;
            _process = Process.Start(start) ?? throw new InvalidOperationException("Could not start the hosted sample.");
            _reading = Task.WhenAll(Read(_process.StandardOutput), Read(_process.StandardError));
        }

        public static SampleProcess Start(Dictionary<string, string> environment) => new(environment);

        private async Task Read(StreamReader reader)
        {
            while (await reader.ReadLineAsync() is { } line)
            {
                lock (_output)
                    _output.Append(line).Append('\n');
                if (ListeningOn().Match(line) is { Success: true } m)
                    _listening.TrySetResult(new Uri(m.Groups[1].Value));
            }
        }

        /// <summary>The address the app listens on, once it does.</summary>
        public async Task<Uri> Listening()
        {
            var exited = _process.WaitForExitAsync();
            var first = await Task.WhenAny(_listening.Task, exited, Task.Delay(TimeSpan.FromMinutes(1)));
            Assert.True(first == _listening.Task, $"The hosted sample did not start listening:\n{Output}");
            return await _listening.Task;
        }

        /// <summary>Sends SIGTERM, as `docker stop` and Kubernetes do.</summary>
        public void Terminate() => Assert.Equal(0, Kill(_process.Id, 15));

        /// <summary>Waits for the process to exit; its exit code and what it printed.</summary>
        public async Task<(int Code, string Output)> Exit()
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
            try
            {
                await _process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                Assert.Fail($"The hosted sample did not exit:\n{Output}");
            }
            await _reading;
            return (_process.ExitCode, Output);
        }

        private string Output
        {
            get
            {
                lock (_output)
                    return _output.ToString();
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
            _process.Dispose();
        }

        [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
        private static partial int Kill(int pid, int signal);

        [GeneratedRegex(@"Now listening on: (http://\S+)")]
        private static partial Regex ListeningOn();
    }
}

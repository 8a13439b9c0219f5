using System.Net;
using System.Net.Sockets;
using ManagedLM.Cli;

namespace ManagedLM.Tests.Cli;

public class ServeCommandTests
{
    [Fact]
    public void A_port_in_use_exits_with_3_and_says_so()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        int port = ((IPEndPoint)taken.LocalEndpoint).Port;
        var (code, output, error) = CliRun.Invoke("serve", "-m", TestData.Model("stories260K.gguf"), "--port", $"{port}", "--quiet");
        Assert.Equal(ExitCodes.Failure, code);
        Assert.Equal("", output);
        string line = Assert.Single(error.TrimEnd().Split('\n'));
        Assert.StartsWith($"managedlm serve: error: Failed to bind to address http://127.0.0.1:{port}", line);
        Assert.DoesNotContain("Exception", line);
    }
}

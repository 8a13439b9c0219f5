namespace ManagedLM.Cli;

/// <summary>
/// Turns the first Ctrl+C into a cancellation that the command finishes on cleanly (exit code 130,
/// <see cref="ExitCodes.Interrupted"/>); a second Ctrl+C ends the process at once, as usual.
/// </summary>
internal sealed class CancelOnCtrlC : IDisposable
{
    private readonly CancellationTokenSource _source = new();

    public CancelOnCtrlC() => Console.CancelKeyPress += OnCancel;

    public CancellationToken Token => _source.Token;

    private void OnCancel(object? sender, ConsoleCancelEventArgs e)
    {
        try
        {
            if (_source.IsCancellationRequested)
                return;
            e.Cancel = true;
            _source.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The command has just finished.
        }
    }

    public void Dispose()
    {
        Console.CancelKeyPress -= OnCancel;
        _source.Dispose();
    }
}

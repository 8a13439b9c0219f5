namespace ManagedLM.Inference;

/// <summary>
/// The runtime guard of one request's state (a generator, an embedder): one operation at a time. Entering while another
/// operation holds it throws <see cref="InvalidOperationException"/> with the owner's message, which names the fix; it
/// never waits and never lets two operations corrupt the state. Handing the owner from thread to thread between
/// operations is fine: the guard catches overlap, not thread identity. Held in a (non-readonly) field of its owner.
/// </summary>
internal struct BusyGuard
{
    private int _busy;

    /// <summary>Takes the guard, or throws <see cref="InvalidOperationException"/> with <paramref name="message"/> while it is taken.</summary>
    public void Enter(string message)
    {
        if (Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
            throw new InvalidOperationException(message);
    }

    /// <summary>Releases the guard.</summary>
    public void Exit() => Volatile.Write(ref _busy, 0);
}

namespace ManagedLM;

/// <summary>
/// Documents why a static field that could hold mutable state is safe to share between threads and
/// between models (e.g. a table filled once in the static constructor and never written after).
/// ManagedLM keeps no process-global mutable state: a static that is not <c>const</c> nor a
/// <c>readonly</c> field of a deeply immutable type must carry this attribute, with a true reason
/// (tests/ManagedLM.Tests/Concurrency/StaticStateTests.cs enforces it).
/// </summary>
[AttributeUsage(AttributeTargets.Field, AllowMultiple = false, Inherited = false)]
public sealed class ThreadSafeStaticAttribute(string reason) : Attribute
{
    /// <summary>Why the field is safe: what writes it, and when.</summary>
    public string Reason { get; } = reason;
}

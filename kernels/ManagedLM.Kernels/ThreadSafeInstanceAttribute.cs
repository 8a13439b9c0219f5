namespace ManagedLM;

/// <summary>
/// Documents why an instance field of an object shared between threads (the loaded model and what it
/// holds) may change after construction and stays safe (e.g. a dispose flag flipped with
/// <see cref="System.Threading.Interlocked"/>). Every other field of the shared model is readonly
/// (tests/ManagedLM.Tests/Concurrency/SharedModelImmutabilityTests.cs enforces it).
/// </summary>
[AttributeUsage(AttributeTargets.Field, AllowMultiple = false, Inherited = false)]
public sealed class ThreadSafeInstanceAttribute(string reason) : Attribute
{
    /// <summary>Why the field is safe: what writes it, when, and how readers see it.</summary>
    public string Reason { get; } = reason;
}

namespace ManagedLM.Sampling;

/// <summary>
/// A <see cref="SamplerChain"/>'s random state: the four xoshiro256** words. Setting it on a chain with the
/// same options continues the same sequence of draws (forking a generator, saving and restoring a session).
/// Never all zeros.
/// </summary>
public readonly record struct SamplerState(ulong S0, ulong S1, ulong S2, ulong S3);

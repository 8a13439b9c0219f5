using System.Runtime.CompilerServices;

namespace ManagedLM.Kernels.Quants;

/// <summary>Four bytes inside a block (the packed fifth bits <c>qh</c> of Q5_0/Q5_1).</summary>
[InlineArray(4)]
public struct Bytes4
{
    private byte _element0;
}

/// <summary>Sixteen bytes inside a block (32 packed 4-bit quants).</summary>
[InlineArray(16)]
public struct Bytes16
{
    private byte _element0;
}

/// <summary>Thirty-two signed bytes inside a block (32 8-bit quants).</summary>
[InlineArray(32)]
public struct SBytes32
{
    private sbyte _element0;
}

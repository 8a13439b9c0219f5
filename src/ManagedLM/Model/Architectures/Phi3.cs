namespace ManagedLM.Model;

internal static partial class Architectures
{
    /// <summary>Phi-3, 3.5, Phi-4-mini: fused <c>attn_qkv</c> and gate/up projections, NeoX RoPE, longrope factors.</summary>
    public static readonly ModelArchitecture Phi3 = new() { Name = "phi3", ScalesQueries = true };
}

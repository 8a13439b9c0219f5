namespace ManagedLM.Model;

internal static partial class Architectures
{
    /// <summary>Qwen2 / Qwen2.5: q/k/v biases, NeoX RoPE.</summary>
    public static readonly ModelArchitecture Qwen2 = new() { Name = "qwen2", RequiresAttentionBiases = true };

    /// <summary>Qwen3: per-head q/k RMSNorm before RoPE.</summary>
    public static readonly ModelArchitecture Qwen3 = new() { Name = "qwen3", RequiresQueryKeyNorms = true };

    /// <summary>
    /// Qwen1.5/Qwen2 MoE: softmax-routed experts whose probabilities are not renormalized, plus a shared expert gated by
    /// a sigmoid.
    /// </summary>
    public static readonly ModelArchitecture Qwen2Moe = new() { Name = "qwen2moe", RequiresExperts = true, NormalizeExpertWeights = false };

    /// <summary>Qwen3 MoE (Qwen3-30B-A3B): Qwen3 attention, every block a softmax-routed mixture of experts.</summary>
    public static readonly ModelArchitecture Qwen3Moe = new() { Name = "qwen3moe", RequiresQueryKeyNorms = true, RequiresExperts = true };
}

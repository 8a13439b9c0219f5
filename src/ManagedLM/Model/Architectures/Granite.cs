using ManagedLM.Kernels;

namespace ManagedLM.Model;

internal static partial class Architectures
{
    /// <summary>Granite 3: Llama with the file's embedding, residual, attention and logit multipliers.</summary>
    public static readonly ModelArchitecture Granite = new() { Name = "granite", RopeLayout = RopeLayout.Normal };
}

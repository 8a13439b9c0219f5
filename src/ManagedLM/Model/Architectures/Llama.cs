using ManagedLM.Kernels;

namespace ManagedLM.Model;

internal static partial class Architectures
{
    /// <summary>Llama 1–3 (and Mistral, Mixtral's experts): adjacent-pair RoPE, SwiGLU.</summary>
    public static readonly ModelArchitecture Llama = new() { Name = "llama", RopeLayout = RopeLayout.Normal };
}

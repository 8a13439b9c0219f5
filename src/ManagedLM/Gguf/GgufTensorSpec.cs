using ManagedLM.Kernels;

namespace ManagedLM.Gguf;

/// <summary>A tensor declared to <see cref="GgufWriter"/>: name, element type and shape (ne0 first, as in <see cref="GgufTensorInfo.Shape"/>).</summary>
public sealed record GgufTensorSpec(string Name, GgmlType Type, IReadOnlyList<long> Shape)
{
    /// <summary>The declaration that reproduces an existing tensor's name, type and shape.</summary>
    public static GgufTensorSpec From(GgufTensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        return new GgufTensorSpec(tensor.Name, tensor.Type, tensor.Shape.ToArray());
    }
}

using System.Collections.Immutable;
using ManagedLM.Kernels;

namespace ManagedLM.Quantization;

/// <summary>
/// The file types this quantizer writes, numbered as llama.cpp's <c>enum llama_ftype</c> (the value of
/// <c>general.file_type</c>). A file type names a mix: its default tensor type plus the per-tensor rules of
/// <see cref="QuantizationMix"/>.
/// </summary>
public enum LlamaFileType : uint
{
    /// <summary>Everything F32 (<c>LLAMA_FTYPE_ALL_F32</c>).</summary>
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q8_0 = 7,
    Q5_0 = 8,
    Q5_1 = 9,
    Q4_K_S = 14,
    Q4_K_M = 15,
    Q5_K_S = 16,
    Q5_K_M = 17,
    Q6_K = 18,
    BF16 = 32,
}

/// <summary>Names and default tensor types of <see cref="LlamaFileType"/>.</summary>
public static class LlamaFileTypes
{
    /// <summary>Every supported file type, in enum order.</summary>
    public static ImmutableArray<LlamaFileType> All { get; } = [.. Enum.GetValues<LlamaFileType>()];

    /// <summary>The name llama-quantize uses (<c>Q4_K_M</c>, <c>F16</c>, ...).</summary>
    public static string Name(LlamaFileType type) => type.ToString();

    /// <summary>Parses a name such as <c>Q4_K_M</c> or <c>q8_0</c> (case-insensitive).</summary>
    /// <exception cref="ArgumentException">Not a supported file type.</exception>
    public static LlamaFileType Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        foreach (var t in All)
        {
            if (string.Equals(Name(t), name, StringComparison.OrdinalIgnoreCase))
                return t;
        }
        throw new ArgumentException($"Unknown file type \"{name}\"; supported: {string.Join(", ", All.Select(Name))}.", nameof(name));
    }

    /// <summary>The tensor type of a mix before its per-tensor rules (llama.cpp's <c>llama_ftype_get_default_type</c>).</summary>
    public static GgmlType DefaultTensorType(LlamaFileType type) => type switch
    {
        LlamaFileType.F32 => GgmlType.F32,
        LlamaFileType.F16 => GgmlType.F16,
        LlamaFileType.BF16 => GgmlType.BF16,
        LlamaFileType.Q4_0 => GgmlType.Q4_0,
        LlamaFileType.Q4_1 => GgmlType.Q4_1,
        LlamaFileType.Q5_0 => GgmlType.Q5_0,
        LlamaFileType.Q5_1 => GgmlType.Q5_1,
        LlamaFileType.Q8_0 => GgmlType.Q8_0,
        LlamaFileType.Q4_K_S or LlamaFileType.Q4_K_M => GgmlType.Q4_K,
        LlamaFileType.Q5_K_S or LlamaFileType.Q5_K_M => GgmlType.Q5_K,
        LlamaFileType.Q6_K => GgmlType.Q6_K,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Not a supported file type."),
    };
}

using System.Runtime.CompilerServices;
using ManagedLM.Kernels.Quants;
using static ManagedLM.Kernels.GgmlTypes;

namespace ManagedLM.Kernels;

/// <summary>
/// Every <see cref="GgmlType"/>'s <see cref="TypeTraits"/>, indexed by type id: the one place a type is registered.
/// A new type is its block struct (one file) and one row below.
/// </summary>
internal static class TypeTable
{
    [ThreadSafeStatic("built once by the static initializer, never written after")]
    private static readonly TypeTraits[] Rows = Index(
    [
        TypeTraits.F32,
        // float and legacy block types
        TypeTraits.Half<F16Format>(GgmlType.F16),
        TypeTraits.Half<BF16Format>(GgmlType.BF16),
        TypeTraits.Grouped<Q4_0Block, CodeNibbles>(),
        TypeTraits.Block<Q4_1Block>(),
        TypeTraits.Grouped<Q5_0Block, FiveBitCodes>(),
        TypeTraits.Block<Q5_1Block>(),
        TypeTraits.Grouped<Q8_0Block, ByteQuants>(),
        TypeTraits.Block<Q8_1Block>(),
        TypeTraits.Grouped<IQ4NLBlock, LevelNibbles>(),
        // K-quants and IQ4_XS
        TypeTraits.Block<Q2KBlock>(),
        TypeTraits.Block<Q3KBlock>(),
        TypeTraits.GroupedQ4K,
        TypeTraits.Block<Q5KBlock>(),
        TypeTraits.Block<Q6KBlock>(),
        TypeTraits.Block<IQ4XSBlock>(),
        // Q8_K is only an activation form: ggml multiplies no Q8_K weights.
        TypeTraits.Block<Q8KBlock>() with { MultiplyRows = null },
        // types GGUF files may hold that no kernel reads
        TypeTraits.Geometry(GgmlType.IQ2_XXS, QK_K, 66),
        TypeTraits.Geometry(GgmlType.IQ2_XS, QK_K, 74),
        TypeTraits.Geometry(GgmlType.IQ3_XXS, QK_K, 98),
        TypeTraits.Geometry(GgmlType.IQ1_S, QK_K, 50),
        TypeTraits.Geometry(GgmlType.IQ3_S, QK_K, 110),
        TypeTraits.Geometry(GgmlType.IQ2_S, QK_K, 82),
        TypeTraits.Geometry(GgmlType.I8, 1, 1),
        TypeTraits.Geometry(GgmlType.I16, 1, 2),
        TypeTraits.Geometry(GgmlType.I32, 1, 4),
        TypeTraits.Geometry(GgmlType.I64, 1, 8),
        TypeTraits.Geometry(GgmlType.F64, 1, 8),
        TypeTraits.Geometry(GgmlType.IQ1_M, QK_K, 56),
        TypeTraits.Geometry(GgmlType.TQ1_0, QK_K, 54),
        TypeTraits.Geometry(GgmlType.TQ2_0, QK_K, 66),
        TypeTraits.Geometry(GgmlType.MXFP4, 32, 17),
    ]);

    /// <summary>The activation forms of the types that multiply, each once, in type-id order.</summary>
    [ThreadSafeStatic("built once by the static initializer, never written after; handed out as a ReadOnlySpan")]
    public static readonly GgmlType[] DotTypes = ActivationForms();

    /// <summary>The row of <paramref name="id"/>: a row with <see cref="TypeTraits.IsKnown"/> false for an id that names no type.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static ref readonly TypeTraits Of(uint id) => ref id < (uint)Rows.Length ? ref Rows[id] : ref Unknown;

    /// <summary>The row of a type that exists; throws <see cref="NotSupportedException"/> for an id that names none.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static ref readonly TypeTraits Of(GgmlType type)
    {
        ref readonly TypeTraits row = ref Of((uint)type);
        if (!row.IsKnown)
            throw new NotSupportedException($"Unknown ggml type id {(uint)type}.");
        return ref row;
    }

    [ThreadSafeStatic("the empty row of an id that names no type: every pointer null, never written")]
    private static readonly TypeTraits Unknown = default;

    private static TypeTraits[] Index(TypeTraits[] rows)
    {
        uint maxId = 0;
        foreach (var row in rows)
            maxId = Math.Max(maxId, (uint)row.Type);
        var byId = new TypeTraits[maxId + 1];
        foreach (var row in rows)
        {
            if (byId[(int)row.Type].IsKnown)
                throw new InvalidOperationException($"Two rows for {row.Type}.");
            byId[(int)row.Type] = row;
        }
        return byId;
    }

    private static GgmlType[] ActivationForms()
    {
        var forms = new List<GgmlType>();
        foreach (var row in Rows)
        {
            if (row.Multiplies && !forms.Contains(row.DotType))
                forms.Add(row.DotType);
        }
        return forms.ToArray();
    }
}

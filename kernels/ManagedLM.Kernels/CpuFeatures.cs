using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedLM.Kernels;

/// <summary>The widest instruction set the kernels may use (<see cref="CpuFeatures.Level"/>).</summary>
public enum CpuLevel
{
    /// <summary>No SIMD: the scalar references.</summary>
    Scalar,
    /// <summary>256-bit paths: AVX2 and FMA (and AVX-VNNI where present).</summary>
    Avx2,
    /// <summary>512-bit paths as well: AVX-512 and <see cref="Vector512"/>.</summary>
    Avx512,
}

/// <summary>
/// The instruction sets the kernels use, detected once. Every flag is <c>static readonly</c>: optimized code reads it as a
/// constant, so each kernel compiles to one path. <see cref="KernelStatics"/> sets them before any kernel is compiled.
/// <para>
/// <c>MANAGEDLM_CPU</c> = <c>avx2</c> or <c>scalar</c>, read once here, caps the level below what the CPU has (benchmarks
/// compare the 256- and 512-bit paths, tests run the portable fallbacks in a subprocess); <c>avx512</c> or unset caps nothing.
/// </para>
/// </summary>
public static class CpuFeatures
{
    /// <summary>The environment variable that caps <see cref="Level"/>.</summary>
    public const string Variable = "MANAGEDLM_CPU";

    /// <summary>The widest level in use: what the CPU has, capped by <see cref="Variable"/>.</summary>
    public static readonly CpuLevel Level;

    /// <summary>AVX2 and FMA: the 256-bit integer dot products and quantizers.</summary>
    public static readonly bool Avx2;

    /// <summary>AVX-512 F and BW (512-bit maddubs over unpacked K-quant blocks).</summary>
    public static readonly bool Avx512;

    /// <summary>AVX-VNNI: 256-bit VPDPBUSD (u8×s8 dot products accumulated in one instruction).</summary>
    public static readonly bool AvxVnni;

    /// <summary>AVX-512 VNNI, from CPUID: .NET 10 has no API for the 512-bit VPDPBUSD, so this only reports it.</summary>
    public static readonly bool Avx512Vnni;

    /// <summary><see cref="Vector256"/> is hardware accelerated (the portable 256-bit float kernels).</summary>
    public static readonly bool Vector256;

    /// <summary><see cref="Vector512"/> is hardware accelerated (the portable 512-bit float kernels).</summary>
    public static readonly bool Vector512;

    /// <summary>One line naming the level and the instruction sets in use, and the cap when one applies.</summary>
    public static readonly string Description;

    static CpuFeatures()
    {
        string? setting = Environment.GetEnvironmentVariable(Variable);
        CpuLevel? cap = ParseCap(setting);
        bool simd = cap is not CpuLevel.Scalar, wide = cap is null or CpuLevel.Avx512;
        Avx2 = simd && System.Runtime.Intrinsics.X86.Avx2.IsSupported && Fma.IsSupported;
        AvxVnni = Avx2 && System.Runtime.Intrinsics.X86.AvxVnni.IsSupported;
        Avx512 = wide && Avx2 && Avx512F.IsSupported && Avx512BW.IsSupported;
        Avx512Vnni = Avx512 && X86Base.IsSupported && (X86Base.CpuId(7, 0).Ecx & (1 << 11)) != 0;
        Vector256 = simd && System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated;
        Vector512 = wide && simd && System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated;
        Level = Avx512 ? CpuLevel.Avx512 : Avx2 ? CpuLevel.Avx2 : CpuLevel.Scalar;
        Description = Describe(setting, cap);
    }

    /// <summary>The cap a <see cref="Variable"/> value asks for: null for none (unset, empty, <c>avx512</c> or not understood).</summary>
    internal static CpuLevel? ParseCap(string? setting) => setting?.Trim().ToLowerInvariant() switch
    {
        "scalar" => CpuLevel.Scalar,
        "avx2" => CpuLevel.Avx2,
        _ => null,
    };

    private static string Describe(string? setting, CpuLevel? cap)
    {
        var sets = new List<string>();
        if (Avx2) sets.Add("AVX2+FMA");
        if (AvxVnni) sets.Add("AVX-VNNI");
        if (Avx512) sets.Add("AVX-512 F/BW");
        if (Avx512Vnni) sets.Add("AVX-512 VNNI (no .NET API)");
        if (Vector512) sets.Add("Vector512");
        else if (Vector256) sets.Add("Vector256");
        string text = $"kernels: {Level.ToString().ToLowerInvariant()} ({(sets.Count > 0 ? string.Join(", ", sets) : "scalar references")})";
        if (string.IsNullOrWhiteSpace(setting))
            return text;
        return cap is null && setting.Trim().ToLowerInvariant() != "avx512"
            ? $"{text}; {Variable}={setting} ignored (avx512, avx2 or scalar)"
            : $"{text}; {Variable}={setting}";
    }
}

using System.Runtime.CompilerServices;

namespace ManagedLM.Kernels;

/// <summary>
/// Sets, when this assembly loads, the statics the kernels read as constants: the <see cref="CpuFeatures"/> flags and the
/// F16 widening table. The JIT folds a <c>static readonly</c> field into the code only when its class is initialized at
/// compile time, and a kernel marked <c>AggressiveOptimization</c> is compiled once, at its first call: a class first
/// initialized after that would leave an initialization check and a load in every one of its loops.
/// </summary>
internal static class KernelStatics
{
#pragma warning disable CA2255 // A library's module initializer, on purpose: it must run before the first kernel is compiled.
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Initialize()
    {
        RuntimeHelpers.RunClassConstructor(typeof(CpuFeatures).TypeHandle);
        Float16.InitializeLookup();
    }
}

using FsCheck;
using FsCheck.Fluent;
using Microsoft.FSharp.Core;

namespace ManagedLM.Tests.Kernels;

/// <summary>FsCheck generators for kernel property tests.</summary>
internal static class KernelGen
{
    /// <summary>FsCheck's quick configuration (100 cases, throwing on the first failure) from a fixed seed: the same cases every run.</summary>
    public static Config Fixed { get; } = Config.QuickThrowOnFailure
        .WithReplay(FSharpOption<Replay>.Some(new Replay(new Rnd(20261207UL), FSharpOption<int>.None)));

    /// <summary>Runs a property over <paramref name="arb"/> (<see cref="Fixed"/>), throwing on the first failure.</summary>
    public static void Check<T>(Arbitrary<T> arb, Action<T> property) =>
        FsCheck.Check.One(Fixed, Prop.ForAll(arb, property));

    /// <summary>
    /// Rows of blocks·<paramref name="blockSize"/> finite floats, 1 ≤ blocks ≤ <paramref name="maxBlocks"/>:
    /// magnitudes from 2^-12 to 2^12, with zeros, repeated values, outliers and one-signed runs mixed in.
    /// </summary>
    public static Arbitrary<float[]> Rows(int blockSize, int maxBlocks) =>
        (from blocks in Gen.Choose(1, maxBlocks)
         from scaleExp in Gen.Choose(-12, 12)
         from offset in Gen.Elements(0f, 0f, 0f, 1f, -1f, 3f)
         from values in Gen.ArrayOf(Value(MathF.ScaleB(1, scaleExp), offset), blocks * blockSize)
         select values).ToArbitrary();

    /// <summary>Two rows of the same length (weights and activation).</summary>
    public static Arbitrary<(float[] W, float[] X)> RowPairs(int blockSize, int maxBlocks) =>
        (from blocks in Gen.Choose(1, maxBlocks)
         from ew in Gen.Choose(-8, 8)
         from ex in Gen.Choose(-8, 8)
         from w in Gen.ArrayOf(Value(MathF.ScaleB(1, ew), 0), blocks * blockSize)
         from x in Gen.ArrayOf(Value(MathF.ScaleB(1, ex), 0), blocks * blockSize)
         select (w, x)).ToArbitrary();

    private static Gen<float> Value(float scale, float offset) =>
        Gen.Frequency(
            (12, Gen.Choose(-1_000_000, 1_000_000).Select(i => (i / 1_000_000f + offset) * scale)),
            (2, Gen.Constant(offset * scale)),
            (1, Gen.Choose(-8, 8).Select(i => (i / 8f + offset) * scale)),
            (1, Gen.Choose(-1000, 1000).Select(i => (i / 100f + offset) * scale)));
}

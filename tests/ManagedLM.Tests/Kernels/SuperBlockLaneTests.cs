using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ManagedLM.Kernels.Quants;

namespace ManagedLM.Tests.Kernels;

/// <summary>
/// Every path to a K-quant block's integer lanes — AVX2 unpacking, 256- and 512-bit lanes over unpacked blocks, one and
/// four activation rows at a time, and the fused single-row lanes of Q4_K/Q5_K/Q6_K — gives the lanes of their scalar
/// definition, whatever ISA the machine picks by default (so CI covers the paths this machine does not take).
/// </summary>
public abstract unsafe class SuperBlockLaneTests<T> where T : unmanaged, ISuperBlock<T>
{
    /// <summary>Byte offsets of the block's fp16 fields, set to finite values in random raw blocks.</summary>
    protected abstract int[] HalfOffsets { get; }

    /// <summary>The type's fused single-row lanes, or none.</summary>
    protected virtual IEnumerable<(string Name, Func<nint, nint, Vector256<int>> Lanes, bool Supported)> Fused => [];

    [Fact]
    public void Unpacking_and_every_lane_path_agree_with_the_definition()
    {
        KQuantProperties.Check(KQuantProperties.Rows, row =>
        {
            var rng = new Random(row.Seed);
            byte[] w = new byte[sizeof(T)];
            rng.NextBytes(w);
            foreach (int offset in HalfOffsets)
                BitConverter.TryWriteBytes(w.AsSpan(offset), BitConverter.HalfToUInt16Bits((Half)(rng.NextDouble() * 2 - 1)));
            byte[][] acts = Enumerable.Range(0, 4).Select(i => KQuantProperties.Activation(new KQuantProperties.Row(1, row.Seed + i, row.Gaussian).Values())).ToArray();
            UnpackedSuperBlock reference, vector;
            int* lanes = stackalloc int[8];
            int* mins = stackalloc int[8];
            fixed (byte* pw = w, a0 = acts[0], a1 = acts[1], a2 = acts[2], a3 = acts[3])
            {
                T.UnpackReference((T*)pw, &reference);
                SuperBlockDot.Unpack((T*)pw, &vector);
                Same(new Span<byte>(reference.Q, 256), new Span<byte>(vector.Q, 256), "levels");
                Same(new Span<short>(reference.Scales, 16), new Span<short>(vector.Scales, 16), "scales");
                Same(new Span<short>(reference.Mins, 16), new Span<short>(vector.Mins, 16), "mins");
                if (BitConverter.SingleToInt32Bits(reference.D) != BitConverter.SingleToInt32Bits(vector.D) || BitConverter.SingleToInt32Bits(reference.M) != BitConverter.SingleToInt32Bits(vector.M))
                    throw new Exception($"D/M differ: {reference.D}/{reference.M} vs {vector.D}/{vector.M}");
                for (int k = 0; k < 8; k++)
                    for (int i = 0; i < 16; i++)
                        if (vector.ScalePairs[16 * k + i] != vector.Scales[2 * k + i / 8])
                            throw new Exception($"scale pair {k}, short {i}");

                byte*[] act = [a0, a1, a2, a3];
                var expected = new Vector256<int>[4];
                for (int r = 0; r < 4; r++)
                {
                    SuperBlockDot.LanesReference(&reference, (Q8KBlock*)act[r], lanes, mins);
                    expected[r] = Vector256.Load(lanes);
                }
                sbyte* q0 = ((Q8KBlock*)a0)->Qs;
                Check("LanesAvx2", expected[0], SuperBlockDot.LanesAvx2(&vector, q0));
                SuperBlockDot.Lanes4Avx2(&vector, q0, ((Q8KBlock*)a1)->Qs, ((Q8KBlock*)a2)->Qs, ((Q8KBlock*)a3)->Qs, out var l0, out var l1, out var l2, out var l3);
                Check("Lanes4Avx2", expected, [l0, l1, l2, l3]);
                if (Avx512BW.IsSupported)
                {
                    Check("LanesAvx512", expected[0], SuperBlockDot.LanesAvx512(&vector, q0));
                    SuperBlockDot.Lanes4Avx512(&vector, q0, ((Q8KBlock*)a1)->Qs, ((Q8KBlock*)a2)->Qs, ((Q8KBlock*)a3)->Qs, out l0, out l1, out l2, out l3);
                    Check("Lanes4Avx512", expected, [l0, l1, l2, l3]);
                }
                foreach (var (name, fused, supported) in Fused)
                {
                    if (supported)
                        Check(name, expected[0], fused((nint)pw, (nint)q0));
                }
            }
            return true;
        });
    }

    private static void Same<TValue>(Span<TValue> expected, Span<TValue> actual, string what) where TValue : IEquatable<TValue>
    {
        if (!expected.SequenceEqual(actual))
            throw new Exception($"{typeof(T).Name}: unpacked {what} differ");
    }

    private static void Check(string path, Vector256<int> expected, Vector256<int> actual)
    {
        if (expected != actual)
            throw new Exception($"{typeof(T).Name} {path}: lanes {actual}, definition {expected}");
    }

    private static void Check(string path, Vector256<int>[] expected, Vector256<int>[] actual)
    {
        for (int r = 0; r < expected.Length; r++)
            Check($"{path} row {r}", expected[r], actual[r]);
    }
}

public unsafe class Q2KLaneTests : SuperBlockLaneTests<Q2KBlock>
{
    protected override int[] HalfOffsets => [80, 82];
}

public unsafe class Q3KLaneTests : SuperBlockLaneTests<Q3KBlock>
{
    protected override int[] HalfOffsets => [108];
}

public unsafe class Q4KLaneTests : SuperBlockLaneTests<Q4KBlock>
{
    protected override int[] HalfOffsets => [0, 2];

    private static Vector256<short> Scales(Q4KBlock* x)
    {
        KQuants.UnpackScaleMinK4(x->Scales, out uint s03, out uint s47, out _, out _);
        return KQuants.PerSubBlock(s03, s47);
    }

    protected override IEnumerable<(string, Func<nint, nint, Vector256<int>>, bool)> Fused =>
    [
        ("fused", (x, q) => Q4KBlock.LanesAvx2((Q4KBlock*)x, (sbyte*)q, Scales((Q4KBlock*)x)), true),
    ];
}

public unsafe class Q5KLaneTests : SuperBlockLaneTests<Q5KBlock>
{
    protected override int[] HalfOffsets => [0, 2];

    private static Vector256<short> Scales(Q5KBlock* x)
    {
        KQuants.UnpackScaleMinK4(x->Scales, out uint s03, out uint s47, out _, out _);
        return KQuants.PerSubBlock(s03, s47);
    }

    protected override IEnumerable<(string, Func<nint, nint, Vector256<int>>, bool)> Fused =>
    [
        ("fused", (x, q) => Q5KBlock.LanesAvx2((Q5KBlock*)x, (sbyte*)q, Scales((Q5KBlock*)x)), true),
    ];
}

public unsafe class Q6KLaneTests : SuperBlockLaneTests<Q6KBlock>
{
    protected override int[] HalfOffsets => [208];

    protected override IEnumerable<(string, Func<nint, nint, Vector256<int>>, bool)> Fused =>
    [
        ("fused", (x, q) => Q6KBlock.LanesAvx2((Q6KBlock*)x, (sbyte*)q, Avx2.ConvertToVector256Int16(((Q6KBlock*)x)->Scales)), true),
    ];
}

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ManagedLM.Kernels;

namespace ManagedLM.Benchmarks.Kernels;

/// <summary>Quantized weights and prepared activations of uniform random values, for the kernel benchmarks.</summary>
internal static unsafe class RandomMatrix
{
    /// <summary>rows × cols weights in [−0.05, 0.05) quantized to <paramref name="type"/>, 64-byte aligned; free with <see cref="NativeMemory.AlignedFree"/>.</summary>
    public static byte* Weights(GgmlType type, int rows, int cols, Random rng, out long rowBytes)
    {
        rowBytes = GgmlTypes.RowBytes(type, cols);
        byte* weights = (byte*)NativeMemory.AlignedAlloc((nuint)(rowBytes * rows), 64);
        float[] row = new float[cols];
        for (int r = 0; r < rows; r++)
        {
            Fill(row, rng);
            Quantize.Row(type, row, new Span<byte>(weights + r * rowBytes, (int)rowBytes));
        }
        return weights;
    }

    /// <summary><paramref name="count"/> activation rows of <paramref name="cols"/> values prepared for <paramref name="type"/>, back to back (pinned).</summary>
    public static byte[] Activations(GgmlType type, int cols, int count, Random rng, out int rowBytes)
    {
        rowBytes = MatVec.ActivationBytes(type, cols);
        byte[] activations = GC.AllocateArray<byte>(rowBytes * count, pinned: true);
        float[] row = new float[cols];
        for (int b = 0; b < count; b++)
        {
            Fill(row, rng);
            MatVec.PrepareActivation(type, row, activations.AsSpan(b * rowBytes, rowBytes));
        }
        return activations;
    }

    private static void Fill(float[] row, Random rng)
    {
        for (int i = 0; i < row.Length; i++)
            row[i] = (float)(rng.NextDouble() * 2 - 1) * 0.05f;
    }
}

/// <summary>A random weight matrix, <see cref="Batch"/> prepared activation rows and the pinned output: one matrix product's operands.</summary>
internal sealed unsafe class RandomProduct : IDisposable
{
    public RandomProduct(GgmlType type, int rows, int cols, int batch, int seed = 1)
    {
        var rng = new Random(seed);
        Batch = batch;
        Weights = RandomMatrix.Weights(type, rows, cols, rng, out long rowBytes);
        RowBytes = rowBytes;
        ActivationRows = RandomMatrix.Activations(type, cols, batch, rng, out int activationBytes);
        ActivationBytes = activationBytes;
        Output = GC.AllocateArray<float>(rows * batch, pinned: true);
    }

    /// <summary>rows × cols quantized weights, 64-byte aligned.</summary>
    public byte* Weights { get; }
    public long RowBytes { get; }
    public int Batch { get; }
    /// <summary>Batch activation rows of <see cref="ActivationBytes"/> each (pinned).</summary>
    public byte[] ActivationRows { get; }
    public int ActivationBytes { get; }
    /// <summary>[batch × rows] (pinned).</summary>
    public float[] Output { get; }
    public byte* A => (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(ActivationRows));
    public float* Y => (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(Output));

    public void Dispose() => NativeMemory.AlignedFree(Weights);
}

/// <summary>A <see cref="RandomProduct"/> with its weights also repacked (<see cref="MatMul.Repack"/>): the product either way.</summary>
internal sealed unsafe class RepackedProduct : IDisposable
{
    private readonly int _rows, _cols;
    private readonly byte* _packed;
    private readonly long _packedBytes;

    public RepackedProduct(GgmlType type, int rows, int cols, int batch)
    {
        (Type, _rows, _cols) = (type, rows, cols);
        Product = new RandomProduct(type, rows, cols, batch);
        _packedBytes = MatMul.RepackedBytes(type, rows, cols);
        _packed = (byte*)NativeMemory.AlignedAlloc((nuint)_packedBytes, 64);
        MatMul.Repack(type, Product.Weights, Product.RowBytes, rows, cols, new Span<byte>(_packed, (int)_packedBytes));
    }

    public GgmlType Type { get; }
    public RandomProduct Product { get; }

    /// <summary>The product from the file's layout.</summary>
    public void Plain() =>
        MatMul.Rows(Type, Product.Weights, Product.RowBytes, _cols, Product.ActivationRows, Product.ActivationBytes, Product.Batch, 0, _rows, Product.Output, _rows);

    /// <summary>The product from the repacked copy.</summary>
    public void Repacked() =>
        MatMul.RepackedRows(Type, new ReadOnlySpan<byte>(_packed, (int)_packedBytes), _rows, _cols, Product.ActivationRows, Product.ActivationBytes,
            Product.Batch, 0, _rows, Product.Output, _rows);

    public void Dispose()
    {
        Product.Dispose();
        NativeMemory.AlignedFree(_packed);
    }
}

using System.Runtime.CompilerServices;
using ManagedLM.Kernels;

namespace ManagedLM.Inference;

/// <summary>
/// The rows of a matmul input and their prepared forms (<see cref="MatVec.ActivationTypes"/>: F32, F16, BF16, Q8_0, Q8_1, Q8_K blocks), each computed at
/// most once per <see cref="Set"/>: Q, K and V (or gate and up) share one quantization of their input.
/// Buffers grow with the batch (<see cref="EnsureRows"/>); nothing is allocated per token.
/// </summary>
internal sealed class Activation
{
    private static ReadOnlySpan<GgmlType> Forms => MatVec.ActivationTypes;
    private readonly int _maxLength;
    private readonly int[] _strides;      // per form: bytes of one prepared row of _maxLength values
    private readonly byte[][] _prepared;  // per form: [capacity × stride]
    private readonly bool[] _valid;
    private float[] _source = [];
    private int _length, _rows, _sourceStride;

    /// <summary>Rows the buffers hold.</summary>
    public int Capacity { get; private set; }

    /// <param name="maxLength">Longest row this will hold.</param>
    /// <param name="rows">Rows to allocate for at first.</param>
    public Activation(int maxLength, int rows)
    {
        _maxLength = RoundUp(maxLength, GgmlTypes.QK_K);
        _strides = new int[Forms.Length];
        for (int i = 0; i < Forms.Length; i++)
            _strides[i] = RoundUp((int)GgmlTypes.RowBytes(Forms[i], _maxLength), 64);
        _prepared = new byte[Forms.Length][];
        _valid = new bool[Forms.Length];
        Capacity = 0;
        EnsureRows(rows);
    }

    public void EnsureRows(int rows)
    {
        if (rows <= Capacity)
            return;
        for (int i = 0; i < Forms.Length; i++)
            _prepared[i] = new byte[rows * _strides[i]];
        Capacity = rows;
        Array.Clear(_valid);
    }

    /// <summary>Sets the input: <paramref name="rows"/> rows of <paramref name="length"/> values, row r at r·sourceStride of <paramref name="source"/> (read lazily: it must not change until the next Set).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Set(float[] source, int length, int rows, int sourceStride)
    {
        if (rows > Capacity || length > _maxLength)
            throw new ArgumentOutOfRangeException(nameof(rows), "The activation buffers are too small for this input.");
        _source = source;
        _length = length;
        _rows = rows;
        _sourceStride = sourceStride;
        Array.Clear(_valid);
    }

    /// <summary>The rows prepared for <paramref name="weightType"/> weights, and the bytes between rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public (byte[] Buffer, int Stride) Prepared(GgmlType weightType)
    {
        GgmlType form = MatVec.ActivationType(weightType);
        int i = Forms.IndexOf(form);
        int stride = _strides[i];
        if (!_valid[i])
        {
            int bytes = (int)GgmlTypes.RowBytes(form, _length);
            for (int r = 0; r < _rows; r++)
                MatVec.PrepareActivation(weightType, _source.AsSpan(r * _sourceStride, _length), _prepared[i].AsSpan(r * stride, bytes));
            _valid[i] = true;
        }
        return (_prepared[i], stride);
    }

    /// <summary>Rows currently set.</summary>
    public int Rows => _rows;

    private static int RoundUp(int n, int m) => (n + m - 1) / m * m;
}

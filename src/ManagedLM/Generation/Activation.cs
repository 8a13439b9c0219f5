using ManagedLM.Kernels;

namespace ManagedLM.Generation;

/// <summary>
/// A matmul input vector and its prepared forms (F32, F16, BF16, Q8_0, Q8_1, Q8_K blocks), each computed at
/// most once per <see cref="Set"/>: Q, K and V (or gate and up) share one quantization of their input.
/// Buffers are sized once for the widest input; nothing is allocated per token.
/// </summary>
public sealed class Activation
{
    private static ReadOnlySpan<GgmlType> Forms => [GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q8_1, GgmlType.Q8_K];
    private readonly byte[][] _prepared;
    private readonly bool[] _valid;
    private float[] _source = [];
    private int _length;

    /// <param name="maxLength">Longest vector this will hold (a multiple of 256).</param>
    public Activation(int maxLength)
    {
        _prepared = new byte[Forms.Length][];
        for (int i = 0; i < Forms.Length; i++)
            _prepared[i] = new byte[GgmlTypes.RowBytes(Forms[i], RoundUp(maxLength, GgmlTypes.QK_K))];
        _valid = new bool[Forms.Length];
    }

    /// <summary>Sets the vector (read lazily: it must not change until the next Set).</summary>
    public void Set(float[] source, int length)
    {
        _source = source;
        _length = length;
        Array.Clear(_valid);
    }

    /// <summary>The vector prepared for weights of <paramref name="weightType"/>.</summary>
    public ReadOnlySpan<byte> For(GgmlType weightType)
    {
        var (buffer, bytes) = Prepared(weightType);
        return buffer.AsSpan(0, bytes);
    }

    /// <summary>The buffer holding the vector prepared for <paramref name="weightType"/>, and its length in bytes.</summary>
    internal (byte[] Buffer, int Bytes) Prepared(GgmlType weightType)
    {
        GgmlType form = MatVec.ActivationType(weightType);
        int i = Forms.IndexOf(form);
        int bytes = (int)GgmlTypes.RowBytes(form, _length);
        if (!_valid[i])
        {
            MatVec.PrepareActivation(weightType, _source.AsSpan(0, _length), _prepared[i].AsSpan(0, bytes));
            _valid[i] = true;
        }
        return (_prepared[i], bytes);
    }

    private static int RoundUp(int n, int m) => (n + m - 1) / m * m;
}

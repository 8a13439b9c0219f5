using ManagedLM.Gguf;
using ManagedLM.Kernels;
using ManagedLM.Quantization;

namespace ManagedLM.Tests.Quantization;

public class QuantizingWriterTests
{
    private static readonly GgufTensorSpec TwoChunks = new("t.weight", GgmlType.Q8_0, [1024, QuantizingWriter.ChunkElements / 1024 + 1]);

    [Fact]
    public void Rows_arrive_in_order_in_chunks_and_are_quantized_like_one_call()
    {
        long rows = TwoChunks.Shape[1];
        var calls = new List<(long First, int Length)>();
        using var stream = new MemoryStream();
        using (var writer = new QuantizingWriter(stream, [], [TwoChunks], threads: 2, progress: null))
        {
            writer.WriteRows((first, dst) =>
            {
                calls.Add((first, dst.Length));
                for (int i = 0; i < dst.Length; i++)
                    dst[i] = MathF.Sin(first * 1024 + i);
            });
            writer.Finish();
        }
        Assert.Equal([(0L, QuantizingWriter.ChunkElements), (4096L, 1024)], calls);

        var all = new float[rows * 1024];
        for (int i = 0; i < all.Length; i++)
            all[i] = MathF.Sin(i);
        var expected = new byte[GgmlTypes.RowBytes(GgmlType.Q8_0, all.Length)];
        Quantize.Row(GgmlType.Q8_0, all, expected);
        using var gguf = GgufFile.Parse(stream.ToArray());
        Assert.True(gguf.GetTensorData(gguf.Tensors[0]).SequenceEqual(expected));
    }

    [Fact]
    public void A_failed_write_waits_for_the_chunk_being_produced()
    {
        bool producing = false;
        using var stream = new FailingStream(failAfter: 4096);
        using var writer = new QuantizingWriter(stream, [], [TwoChunks], threads: 1, progress: null);
        Assert.Throws<IOException>(() => writer.WriteRows((first, dst) =>
        {
            producing = first > 0;
            if (first > 0)
            {
                Thread.Sleep(200);
                producing = false;
            }
        }));
        Assert.False(producing);
    }

    private sealed class FailingStream(long failAfter) : MemoryStream
    {
        public override void Write(byte[] buffer, int offset, int count)
        {
            if (Length + count > failAfter)
                throw new IOException("disk full");
            base.Write(buffer, offset, count);
        }

        public override void Write(ReadOnlySpan<byte> buffer) => Write(buffer.ToArray(), 0, buffer.Length);
    }
}

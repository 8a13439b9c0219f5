using ManagedLM.Inference;
using ManagedLM.Kernels;

namespace ManagedLM.Tests.Inference;

/// <summary>The cache's memory by type, and copies between types.</summary>
public class KvCacheTests
{
    private static readonly KvCacheType[] Types = [KvCacheType.F16, KvCacheType.F32, KvCacheType.Q8_0, KvCacheType.Q4_0];

    [Fact]
    public void A_stories110m_shape_cache_of_4096_positions_takes_the_bytes_of_its_blocks()
    {
        // 12 layers, 12 KV heads of 64: keys and values of 4096 positions.
        var layout = new KvBlockLayout(12, 64);
        long Bytes(KvCacheType type) => new KvCache(type, 12, layout, 4096, 4096).AllocatedBytes;
        Assert.Equal(2L * 12 * 4096 * 768 * 2, Bytes(KvCacheType.F16));             // 144 MiB
        Assert.Equal(2L * 12 * 4096 * 768 * 4, Bytes(KvCacheType.F32));             // 288 MiB
        Assert.Equal(2L * 12 * 4096 * 768 / 32 * 34, Bytes(KvCacheType.Q8_0));      // 76.5 MiB: 34/64 of F16
        Assert.Equal(2L * 12 * 4096 * 768 / 32 * 18, Bytes(KvCacheType.Q4_0));      // 40.5 MiB: 18/64
    }

    private static float[][] Rows(int count, int length, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, length).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray()).ToArray();
    }

    private static KvCache Filled(KvCacheType type, KvBlockLayout layout, float[][] keys, float[][] values, int capacity)
    {
        var cache = new KvCache(type, 2, layout, 100, capacity);
        cache.EnsureCapacity(keys.Length);
        for (int l = 0; l < 2; l++)
        {
            for (int p = 0; p < keys.Length; p++)
                cache.Write(l, p, keys[p], values[p]);
        }
        return cache;
    }

    private static (float[] Key, float[] Value) Read(KvCache cache, int layer, int position)
    {
        var key = new float[cache.RowLength];
        var value = new float[cache.RowLength];
        cache.ReadRow(layer, position, key, value);
        return (key, value);
    }

    [Fact]
    public void CopyTo_between_any_two_types_stores_what_writing_the_source_rows_stores()
    {
        var layout = new KvBlockLayout(2, 48);
        float[][] keys = Rows(37, layout.RowLength, 1), values = Rows(37, layout.RowLength, 2);
        foreach (var from in Types)
        {
            // Grown by doubling from 8 positions: what was cached stays where it was.
            var source = Filled(from, layout, keys, values, capacity: 8);
            foreach (var to in Types)
            {
                var destination = new KvCache(to, 2, layout, 100, 4);
                source.CopyTo(destination, 30);
                // Expected: the source's rows (as it reads them back) written into a cache of the destination's type.
                var direct = new KvCache(to, 2, layout, 100, 30);
                for (int p = 0; p < 30; p++)
                {
                    var (k, v) = Read(source, 1, p);
                    direct.Write(1, p, k, v);
                }
                for (int p = 0; p < 30; p++)
                {
                    Assert.Equal(Read(direct, 1, p).Key, Read(destination, 1, p).Key);
                    Assert.Equal(Read(direct, 1, p).Value, Read(destination, 1, p).Value);
                }
                if (from == to)
                {
                    // Same type: the stored bytes themselves.
                    var a = new byte[30 * source.RowBytes];
                    var b = new byte[a.Length];
                    source.ReadRows(0, values: true, 30, a);
                    destination.ReadRows(0, values: true, 30, b);
                    Assert.Equal(a, b);
                }
            }
        }
    }

    [Fact]
    public void A_quantized_cache_reads_back_each_row_as_ggml_dequantizes_it()
    {
        var layout = new KvBlockLayout(4, 8);
        float[][] keys = Rows(20, layout.RowLength, 3), values = Rows(20, layout.RowLength, 4);
        var q8 = Filled(KvCacheType.Q8_0, layout, keys, values, 20);
        var q4 = Filled(KvCacheType.Q4_0, layout, keys, values, 20);
        for (int p = 0; p < 20; p++)
        {
            var (k8, v8) = Read(q8, 0, p);
            var (k4, v4) = Read(q4, 0, p);
            // Q8_0: within half a step (max|x|/127 / 2) of each value, and the scale's F16 rounding; Q4_0: within a step (max|x|/8).
            float max = keys[p].Max(MathF.Abs), maxV = values[p].Max(MathF.Abs);
            for (int i = 0; i < layout.RowLength; i++)
            {
                Assert.InRange(k8[i] - keys[p][i], -max / 200, max / 200);
                Assert.InRange(v8[i] - values[p][i], -maxV / 200, maxV / 200);
                Assert.InRange(k4[i] - keys[p][i], -max / 8 * 1.01f, max / 8 * 1.01f);
                Assert.InRange(v4[i] - values[p][i], -maxV / 8 * 1.01f, maxV / 8 * 1.01f);
            }
        }
        Assert.Throws<ArgumentException>(() => new KvCache(KvCacheType.Q8_0, 1, new KvBlockLayout(1, 16), 16));
        Assert.Throws<ArgumentOutOfRangeException>(() => new KvCache((KvCacheType)9, 1, layout, 16));
    }
}

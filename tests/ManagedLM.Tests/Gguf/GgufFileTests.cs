using ManagedLM.Gguf;
using ManagedLM.Kernels;

namespace ManagedLM.Tests.Gguf;

public class GgufFileTests
{
    [Fact]
    public void Stories260K_metadata_and_tensors()
    {
        using var f = GgufFile.Open(TestData.Model("stories260K.gguf"));
        Assert.Equal(3u, f.Version);
        Assert.Equal("llama", f.Metadata.GetString("general.architecture"));
        Assert.Equal(64, f.Metadata.GetInt32("llama.embedding_length"));
        Assert.Equal(5, f.Metadata.GetInt32("llama.block_count"));
        Assert.Equal(512, f.Metadata.GetArray<string>("tokenizer.ggml.tokens").Length);
        var emb = f.GetTensor("token_embd.weight");
        Assert.Equal(GgmlType.F32, emb.Type);
        Assert.Equal(new long[] { 64, 512 }, emb.Shape);
        Assert.Equal(64L * 512 * 4, emb.ByteSize);
        Assert.Equal(0, f.DataOffset % f.Alignment);
    }

    [Fact]
    public void Tensor_bytes_read_the_same_after_their_pages_are_released()
    {
        byte[] bytes = TestData.ReadBytes(TestData.Model("stories260K.gguf"));
        using var mapped = GgufFile.Open(TestData.Model("stories260K.gguf"));
        using var parsed = GgufFile.Parse(bytes); // released pages of a buffer would be lost: there it does nothing
        foreach (var f in new[] { mapped, parsed })
        {
            foreach (var t in f.Tensors)
                f.ReleasePages(t);
            foreach (var t in f.Tensors)
                Assert.True(f.GetTensorData(t).SequenceEqual(bytes.AsSpan((int)t.FileOffset, (int)t.ByteSize)), t.Name);
        }
    }

    [Fact]
    public void Missing_required_key_names_the_key()
    {
        using var f = GgufFile.Open(TestData.Model("stories260K.gguf"));
        var ex = Assert.Throws<GgufFormatException>(() => f.Metadata.GetInt32("llama.no_such_key"));
        Assert.Contains("llama.no_such_key", ex.Message);
    }

    [Fact]
    public void Every_shared_file_parses()
    {
        foreach (string path in TestData.AllGgufFiles())
        {
            using var f = GgufFile.Open(path);
            Assert.NotEmpty(f.Tensors);
            foreach (var t in f.Tensors)
                Assert.True(t.FileOffset + t.ByteSize <= f.FileSize, t.Name);
        }
    }
}

using ManagedLM.Model;

namespace ManagedLM.Tests.Model;

/// <summary>Weights copied off the file's mapping into large pages (<see cref="ModelOptions.LargePages"/>) give the same logits.</summary>
public class LargePageWeightsTests
{
    [Theory]
    [InlineData("synthetic/synth-llama-Q4_K_M.gguf", 1)]
    [InlineData("synthetic/synth-llama-Q4_K_M.gguf", 2)]
    [InlineData("synthetic/synth-llama-tied-Q4_K_M.gguf", 2)]
    [InlineData("stories260K-mix-Q5_0.gguf", 1)]
    public void Logits_are_the_same_with_the_weights_in_large_pages_or_in_the_file(string file, int threads)
    {
        using var mapped = TransformerModel.Load(TestData.Model(file), new ModelOptions { LargePages = false, RepackWeights = false, WarmUp = false });
        using var copied = TransformerModel.Load(TestData.Model(file), new ModelOptions { LargePages = true, RepackWeights = false, WarmUp = false });
        Assert.DoesNotContain(mapped.Weights.Matrices, m => m.InLargePages || m.FileBytesReleased);
        Assert.Equal(0, mapped.Weights.LargePageBytes);

        // Where the OS offers large pages every matrix the products read is copied (the tied embedding too: its row
        // lookups read the copy) and the file's pages go back; an untied embedding stays in the file.
        var w = copied.Weights;
        var expected = WeightArena.LargePages ? w.Matrices.Where(m => w.TiedEmbeddings || !ReferenceEquals(m, w.TokenEmbedding)).ToList() : [];
        Assert.Equal(expected, w.Matrices.Where(m => m.InLargePages));
        Assert.Equal(expected, w.Matrices.Where(m => m.FileBytesReleased));
        Assert.Equal(expected.Sum(m => m.Rows * m.RowBytes), w.LargePageBytes);

        RepackedWeightsTests.AssertSameLogits(mapped, copied, threads);
    }

    [Fact]
    public void A_model_parsed_from_memory_reads_its_bytes_in_place()
    {
        byte[] bytes = File.ReadAllBytes(TestData.Model("synthetic/synth-llama-Q4_K_M.gguf"));
        using var model = TransformerModel.Load(bytes, new ModelOptions { LargePages = true, RepackWeights = false, WarmUp = false });
        Assert.DoesNotContain(model.Weights.Matrices, m => m.InLargePages || m.FileBytesReleased);
        Assert.Null(model.Weights.Arena);
    }

    [Fact]
    public unsafe void The_arena_hands_out_aligned_pieces_past_its_first_region_and_frees_them()
    {
        using var arena = new WeightArena(expectedBytes: 1000);
        var pieces = new List<nint>();
        foreach (long bytes in new long[] { 1, 100, 3 << 20, 64, 5 << 20 }) // the 3 and 5 MiB pieces each need a new region
        {
            byte* p = arena.Allocate(bytes);
            Assert.Equal(0, (long)p % 64);
            new Span<byte>(p, (int)bytes).Fill(0xA5); // writable, all of it
            pieces.Add((nint)p);
        }
        Assert.Equal(pieces.Count, pieces.Distinct().Count());
        Assert.Equal(1 + 100 + (3L << 20) + 64 + (5L << 20), arena.Bytes);
        arena.Dispose();
        Assert.Throws<ObjectDisposedException>(() => { arena.Allocate(1); });
    }
}

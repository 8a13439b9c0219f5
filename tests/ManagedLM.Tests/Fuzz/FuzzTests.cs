using ManagedLM.Fuzz;
using ManagedLM.Gguf;
using ManagedLM.Tests.Model;

namespace ManagedLM.Tests.Fuzz;

/// <summary>
/// The fuzz campaign in the suite: a few thousand mutated seed files (every mutation kind), each loaded in process from
/// memory, then greedy, sampled and chat generation. Every case must end in success or a clean exception; a hang, any
/// other exception type, a generator left unusable or a known-good model that changed is a failure naming the case.
/// </summary>
public class FuzzTests
{
    private const int Cases = 2400;

    [Fact]
    public void Mutated_model_files_fail_cleanly_or_load_and_generate()
    {
        var summary = FuzzCampaign.Run(new FuzzOptions { Seed = 13, Cases = Cases, Threads = 2, ModelsDirectory = TestData.ModelsDir });
        Assert.True(summary.Bad.Count == 0, summary.ToString());
        Assert.Equal(Cases, summary.Cases);
        Assert.All(Enum.GetValues<MutationKind>(), kind => Assert.True(summary.Kinds.GetValueOrDefault(kind) >= Cases / 16, $"{kind}: {summary.Kinds.GetValueOrDefault(kind)} cases"));
        // Not vacuous: many cases load and generate, some get through a chat turn, and every kind of clean failure shows up.
        Assert.True(summary.Loaded > Cases / 10, summary.ToString());
        Assert.True(summary.Outcomes.GetValueOrDefault("generated, chat turn") > 0, summary.ToString());
        foreach (string type in new[] { "GgufFormatException", "NotSupportedException", "TemplateException", "NonFiniteLogitsException" })
            Assert.True(summary.Outcomes.GetValueOrDefault(type) > 0, $"no {type}:\n{summary}");
    }

    [Fact]
    public void A_case_is_a_pure_function_of_seed_and_index()
    {
        var a = FuzzCampaign.CreateCase(99, 1234, TestData.ModelsDir);
        var b = FuzzCampaign.CreateCase(99, 1234, TestData.ModelsDir);
        var other = FuzzCampaign.CreateCase(99, 1235, TestData.ModelsDir);
        Assert.Equal((a.Seed, a.Kind, a.Description), (b.Seed, b.Kind, b.Description));
        Assert.Equal(a.Bytes, b.Bytes);
        Assert.NotEqual(a.Kind, other.Kind);
    }

    [Fact]
    public void The_issue_reproductions_fail_cleanly_and_leave_the_known_good_model_as_it_was()
    {
        using var runner = new CaseRunner(File.ReadAllBytes(TestData.Model("stories260K.gguf")));
        (MutationKind Kind, byte[] Bytes, string Expected)[] reproductions =
        [
            (MutationKind.FloatHyperParameter, ModelBytes.StoriesWith("llama.attention.layer_norm_rms_epsilon", GgufValue.Of(float.NaN)), "GgufFormatException"),
            (MutationKind.IntHyperParameter, ModelBytes.StoriesWith("llama.block_count", GgufValue.Of(int.MaxValue)), "GgufFormatException"),
            (MutationKind.IntHyperParameter, ModelBytes.StoriesWith("llama.block_count", GgufValue.Of(1 << 27)), "GgufFormatException"),
            (MutationKind.NonFiniteWeights, ModelBytes.Stories(tensor: (name, w) =>
            {
                if (name == "blk.0.attn_output.weight")
                    w[5] = float.NaN;
            }), "NonFiniteLogitsException"),
        ];
        foreach (var (kind, bytes, expected) in reproductions)
        {
            var outcome = runner.Run(new FuzzInput(0, "stories260K", kind, expected, bytes));
            Assert.False(outcome.Bad, outcome.Report());
            Assert.Equal(expected, outcome.Result);
        }
    }
}

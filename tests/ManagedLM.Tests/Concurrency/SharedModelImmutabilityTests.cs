using ManagedLM.Gguf;
using ManagedLM.Model;
using ManagedLM.Tokenization;

namespace ManagedLM.Tests.Concurrency;

/// <summary>
/// DESIGN.md: a loaded <see cref="TransformerModel"/> is immutable and shared by every generator. Every type
/// its fields can reach (weights, config, tokenizer, GGUF file and metadata) has readonly fields only (or
/// documents the exception with <see cref="ThreadSafeInstanceAttribute"/>), no setters but init-only or
/// private ones, and hands no writable array or collection to callers outside the library.
/// </summary>
public class SharedModelImmutabilityTests
{
    // GgufValue.Value is typed object: by construction (GgufValue.Matches) a boxed number, a string or a
    // GgufArray, so the walk takes GgufArray as a root of its own.
    private static readonly Type[] SharedRoots = [typeof(TransformerModel), typeof(GgufArray)];

    [Fact]
    public void The_walk_reaches_the_shared_model_types()
    {
        var reached = ImmutabilityRules.ReachableShippedTypes(SharedRoots);
        Type[] expected =
        [
            typeof(TransformerModel), typeof(ModelWeights), typeof(LayerWeights), typeof(WeightMatrix), typeof(ModelConfig),
            typeof(Tokenizer), typeof(SpmTokenizer), typeof(BpeTokenizer), typeof(WordPieceTokenizer), typeof(TokenizerVocabulary), typeof(BpePreTokenizer),
            typeof(UnitRegex), typeof(UnitSet), typeof(GgufFile), typeof(GgufMetadata), typeof(GgufMetadataEntry), typeof(GgufValue),
            typeof(GgufArray), typeof(GgufTensorInfo),
        ];
        Assert.All(expected, t => Assert.Contains(t, reached));
    }

    [Fact]
    public void Shared_model_types_have_no_mutable_instance_state()
    {
        var offenders = ImmutabilityRules.FindInstanceState(ImmutabilityRules.ReachableShippedTypes(SharedRoots));
        Assert.True(offenders.Count == 0,
            $"{offenders.Count} member(s) of the shared model could change after load or hand out writable data:\n" + string.Join("\n", offenders));
    }

    [Theory]
    [InlineData("stories260K.gguf")]
    [InlineData("synthetic/synth-qwen2-Q4_K_M.gguf")]
    public void A_loaded_model_exposes_no_writable_collections(string file)
    {
        using var model = TransformerModel.Load(TestData.Model(file));
        var offenders = ImmutabilityRules.FindWritableValuesBehindPublicProperties(model);
        Assert.True(offenders.Count == 0,
            $"{offenders.Count} public propert(ies) of the loaded model return writable collections:\n" + string.Join("\n", offenders));
    }

    [Fact]
    public void The_checker_reports_mutable_instance_state()
    {
        var offenders = ImmutabilityRules.FindInstanceState([typeof(InstanceFixture), typeof(InnerFixture)]);
        Assert.Equal(
            ["Counter", "PrivatelySet (auto-property)", "Scores", "Settable", "Settable (auto-property)", "Values", "_undocumented"],
            offenders.Select(o => o.Member).Order(StringComparer.Ordinal));

        var runtime = ImmutabilityRules.FindWritableValuesBehindPublicProperties(new InstanceFixture(), [typeof(InstanceFixture).Assembly]);
        Assert.Equal(["Facade", "Wrapped"], runtime.Select(o => o.Member).Order(StringComparer.Ordinal));
    }

#pragma warning disable CS0649, CS0169, IDE0044, IDE0051 // fields only read by reflection
    public sealed class InstanceFixture
    {
        private readonly int[] _values = [1, 2, 3];
        private readonly InnerFixture _inner = new();
        [ThreadSafeInstance("flipped once with Interlocked.Exchange")]
        private int _disposed;
        [ThreadSafeInstance(" ")]
        private int _undocumented;

        public int Counter;
        public int Settable { get; set; }
        public int InitOnly { get; init; }
        public int PrivatelySet { get; private set; }
        public int[] Values => _values;
        public ReadOnlySpan<int> View => _values;
        public IReadOnlyList<int> Facade => _values;
        public IReadOnlyList<int> Safe => _values.AsReadOnly();
        public InnerFixture Inner => _inner;
    }

    public sealed class InnerFixture
    {
        private readonly List<float> _scores = [1f];
        public Span<float> Scores => System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_scores);
        public IEnumerable<float> Wrapped => _scores;
    }
#pragma warning restore CS0649, CS0169, IDE0044, IDE0051
}

using System.Collections.Frozen;
using System.Collections.Immutable;
using System.Reflection;

namespace ManagedLM.Tests.Concurrency;

/// <summary>
/// DESIGN.md: no process-global mutable state. Every static field of the shipped assemblies is a
/// <c>const</c>, a <c>static readonly</c> field of a deeply immutable type, or documented with
/// <see cref="ThreadSafeStaticAttribute"/> (rules in <see cref="ImmutabilityRules"/>).
/// </summary>
public class StaticStateTests
{
    [Fact]
    public void Shipped_assemblies_hold_no_undocumented_mutable_statics()
    {
        var offenders = ImmutabilityRules.FindStaticState(ImmutabilityRules.ShippedTypes());
        Assert.True(offenders.Count == 0,
            $"{offenders.Count} static field(s) could hold mutable state. Make the data immutable (const, ReadOnlySpan<T> property, "
            + "ImmutableArray, Frozen collection) or document it with [ThreadSafeStatic(reason)]:\n" + string.Join("\n", offenders));
    }

    [Fact]
    public void The_checker_reports_mutable_statics_and_accepts_immutable_ones()
    {
        Type[] types = [typeof(Fixture), .. typeof(Fixture).GetNestedTypes(BindingFlags.Public | BindingFlags.NonPublic)];
        Assert.Contains(types, t => t.Name == "<>c"); // the lambda cache the rule skips is among the input

        var offenders = ImmutabilityRules.FindStaticState(types);

        string[] expected =
        [
            "Box", "Counter", "Facade", "Items", "Lookup", "Table", "Undocumented", "Unsealed", "WithArray", "WritableProperty (auto-property)",
        ];
        Assert.Equal(expected, offenders.Select(o => o.Member).Order(StringComparer.Ordinal));
        Assert.All(offenders, o => Assert.Equal(ImmutabilityRules.Name(typeof(Fixture)), o.Type));
        Assert.Contains("not readonly", offenders.Single(o => o.Member == "Counter").Reason);
        Assert.Contains("array", offenders.Single(o => o.Member == "Table").Reason);
        Assert.Contains("interface", offenders.Single(o => o.Member == "Facade").Reason);
        Assert.Contains("MutableBox.Value is not readonly", offenders.Single(o => o.Member == "Box").Reason);
        Assert.Contains("not sealed", offenders.Single(o => o.Member == "Unsealed").Reason);
        Assert.Contains("array", offenders.Single(o => o.Member == "WithArray").Reason);
        Assert.Contains("empty reason", offenders.Single(o => o.Member == "Undocumented").Reason);
    }

    [Theory]
    [InlineData(typeof(int), true)]
    [InlineData(typeof(string), true)]
    [InlineData(typeof(Guid), true)]
    [InlineData(typeof(ImmutableArray<string>), true)]
    [InlineData(typeof(ImmutableArray<int[]>), false)]
    [InlineData(typeof(FrozenDictionary<string, int>), true)]
    [InlineData(typeof(ImmutableArray<string>.Builder), false)]
    [InlineData(typeof((int, string)), true)]
    [InlineData(typeof((int, object)), false)]
    [InlineData(typeof(int?), true)]
    [InlineData(typeof(object), false)]
    [InlineData(typeof(List<int>), false)]
    public void Deep_immutability_of_common_types(Type type, bool immutable) =>
        Assert.Equal(immutable, ImmutabilityRules.WhyMutable(type) is null);

    [Fact]
    public void A_recursive_immutable_type_is_immutable() => Assert.Null(ImmutabilityRules.WhyMutable(typeof(Fixture.Chain)));

    // Each field is one case; FindStaticState must report exactly the ones The_checker_reports_mutable_statics_and_accepts_immutable_ones lists.
#pragma warning disable CS0649, CS0169, IDE0044, IDE0051 // fields only read by reflection
    private static class Fixture
    {
        public const int Constant = 1;
        public static readonly int Number = 2;
        public static readonly string Name = "name";
        public static readonly Type Kind = typeof(int);
        public static readonly Func<int, int> Twice = x => 2 * x;
        public static readonly ImmutableArray<string> Names = ["a", "b"];
        public static readonly FrozenDictionary<string, int> Ranks = new Dictionary<string, int> { ["a"] = 1 }.ToFrozenDictionary();
        public static readonly Point Origin = new(0, 0);
        public static readonly ReadonlyBox Frozen = new(3);
        public static readonly Chain Links = new(1, new Chain(2, null));
        [ThreadSafeStatic("filled once here, never written after")]
        public static readonly int[] Documented = [1, 2, 3];
        public static ImmutableArray<int> Squares => [1, 4, 9];

        public static int Counter;
        public static readonly int[] Table = [1, 2, 3];
        public static readonly List<int> Items = [];
        public static readonly Dictionary<string, int> Lookup = [];
        public static readonly IReadOnlyList<int> Facade = [1];
        public static readonly MutableBox Box = new();
        public static readonly UnsealedBox Unsealed = new(1);
        public static readonly StructWithArray WithArray = new([1]);
        [ThreadSafeStatic("")]
        public static readonly int[] Undocumented = [4];
        public static int WritableProperty { get; set; }

        // A lambda in a method: its delegate is cached in a compiler-generated static field of <>c.
        public static int SumTwice(int[] xs) => xs.Sum(x => 2 * x);

        public readonly record struct Point(int X, int Y);

        public sealed class ReadonlyBox(int value)
        {
            public readonly int Value = value;
        }

        public sealed class MutableBox
        {
            public int Value;
        }

        public class UnsealedBox(int value)
        {
            public readonly int Value = value;
        }

        public readonly struct StructWithArray(int[] values)
        {
            public readonly int[] Values = values;
        }

        public sealed class Chain(int value, Chain? next)
        {
            public readonly int Value = value;
            public readonly Chain? Next = next;
        }
    }
#pragma warning restore CS0649, CS0169, IDE0044, IDE0051
}

using System.Collections;
using System.Collections.Immutable;
using System.Numerics;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.RegularExpressions;

namespace ManagedLM.Tests.Concurrency;

/// <summary>A field or property that breaks one of the <see cref="ImmutabilityRules"/>, and why.</summary>
internal sealed record StateOffender(string Type, string Member, string Reason)
{
    public override string ToString() => $"{Type}.{Member}: {Reason}";
}

/// <summary>
/// Reflection checks for DESIGN.md's concurrency contract: no process-global mutable state, and a loaded
/// model that nothing can change. A value is deeply immutable when its type is: a primitive, enum, string,
/// decimal, date/time or Guid-like value, <see cref="Type"/>, a delegate, a System.Collections.Immutable or
/// System.Collections.Frozen collection of deeply immutable elements, a struct whose fields are all deeply
/// immutable (a struct held in a readonly location is copied on every write, so its fields need not be
/// readonly themselves), or a sealed class whose fields, inherited ones included, are all readonly and
/// deeply immutable. Arrays (elements can be written), interfaces and unsealed classes (the object behind
/// them is unknown) and pointers are not. Recursive types are judged co-inductively: a type met again while
/// it is being judged counts as immutable, so the answer rests on its other fields.
/// </summary>
internal static class ImmutabilityRules
{
    private const string BackingFieldSuffix = ">k__BackingField";
    private const string CapturedParameterSuffix = ">P";

    private static readonly ImmutableHashSet<Type> ImmutableLeaves =
    [
        typeof(string), typeof(decimal), typeof(DateTime), typeof(DateTimeOffset), typeof(TimeSpan), typeof(DateOnly),
        typeof(TimeOnly), typeof(Guid), typeof(Half), typeof(Int128), typeof(UInt128), typeof(BigInteger), typeof(Rune),
    ];

    /// <summary>The assemblies ManagedLM ships: kernels, library and the CLI.</summary>
    public static ImmutableArray<Assembly> ShippedAssemblies { get; } =
    [
        typeof(ManagedLM.Kernels.GgmlTypes).Assembly,
        typeof(ManagedLM.Model.TransformerModel).Assembly,
        typeof(ManagedLM.Cli.Commands.CommandCatalog).Assembly,
        typeof(ManagedLM.Server.OpenAiServer).Assembly,
    ];

    /// <summary>Every type of the shipped assemblies, nested and private ones included.</summary>
    public static IEnumerable<Type> ShippedTypes() => ShippedAssemblies.SelectMany(a => a.GetTypes());

    /// <summary>Null when every value of <paramref name="type"/> is deeply immutable; otherwise the reason it is not.</summary>
    public static string? WhyMutable(Type type) => WhyMutable(type, []);

    private static string? WhyMutable(Type t, HashSet<Type> judging)
    {
        if (Nullable.GetUnderlyingType(t) is { } underlying)
            return WhyMutable(underlying, judging);
        if (t.IsPrimitive || t.IsEnum || ImmutableLeaves.Contains(t) || typeof(Type).IsAssignableFrom(t) || typeof(Delegate).IsAssignableFrom(t))
            return null;
        if (t.IsPointer || t.IsFunctionPointer || t.IsByRef)
            return $"{Name(t)} is a pointer: what it points at can be written";
        if (t.IsGenericParameter)
            return $"generic parameter {t.Name} can be any type";
        if (t.IsArray || t == typeof(Array))
            return $"{Name(t)} is an array: its elements can be written";
        if (t.IsInterface)
            return $"{Name(t)} is an interface: the object behind it is unknown";
        if (IsImmutableCollection(t))
        {
            foreach (var element in t.GetGenericArguments())
            {
                if (WhyMutable(element, judging) is { } why)
                    return $"{Name(t)} holds {why}";
            }
            return null;
        }
        if (!judging.Add(t))
            return null;
        if (!t.IsValueType && !t.IsSealed)
            return $"{Name(t)} is not sealed: a subclass can add mutable state";
        for (var declaring = t; declaring is not null && declaring != typeof(object) && declaring != typeof(ValueType); declaring = declaring.BaseType)
        {
            foreach (var f in declaring.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            {
                if (!t.IsValueType && !f.IsInitOnly)
                    return $"{Name(t)}.{MemberName(f)} is not readonly";
                if (WhyMutable(f.FieldType, judging) is { } why)
                    return $"{Name(t)}.{MemberName(f)}: {why}";
            }
        }
        return null;
    }

    // Top-level generic types only: ImmutableArray<T>.Builder and the other builders are nested and mutable.
    private static bool IsImmutableCollection(Type t) =>
        t.IsGenericType && !t.IsNested && t.Namespace is "System.Collections.Immutable" or "System.Collections.Frozen";

    /// <summary>
    /// Compiler-generated types hold no state that we wrote, and the compiler guarantees what they hold is
    /// benign: <c>&lt;&gt;c</c> lambda caches (<c>&lt;&gt;9</c>, <c>&lt;&gt;9__0_0</c>: written once, and a race
    /// only writes an equivalent delegate), <c>&lt;PrivateImplementationDetails&gt;</c> (constant data behind
    /// <c>ReadOnlySpan&lt;T&gt; X =&gt; [...]</c> and its storage types), closures, and async and iterator state
    /// machines (one per call). A record's EqualityContract is a property returning a <see cref="Type"/>, not a field.
    /// </summary>
    public static bool IsCompilerGenerated(Type t)
    {
        for (var c = t; c is not null; c = c.DeclaringType)
        {
            if (c.IsDefined(typeof(CompilerGeneratedAttribute), inherit: false))
                return true;
        }
        return false;
    }

    /// <summary>
    /// A compiler-generated field other than an auto-property's backing field, which holds the property's
    /// value and is checked as the property.
    /// </summary>
    public static bool IsCompilerGenerated(FieldInfo f) =>
        f.IsDefined(typeof(CompilerGeneratedAttribute), inherit: false) && !f.Name.EndsWith(BackingFieldSuffix, StringComparison.Ordinal);

    /// <summary>
    /// Static fields of <paramref name="types"/> that could hold mutable state and carry no
    /// <see cref="ThreadSafeStaticAttribute"/> with a reason. Fine without one: <c>const</c>, and a
    /// <c>static readonly</c> field of a deeply immutable type. Compiler-generated types and fields are skipped
    /// (see <see cref="IsCompilerGenerated(Type)"/>).
    /// </summary>
    public static List<StateOffender> FindStaticState(IEnumerable<Type> types)
    {
        var found = new List<StateOffender>();
        foreach (var t in types)
        {
            if (IsCompilerGenerated(t))
                continue;
            foreach (var f in t.GetFields(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            {
                if (f.IsLiteral || IsCompilerGenerated(f))
                    continue;
                string? why = f.GetCustomAttribute<ThreadSafeStaticAttribute>() is { } documented
                    ? string.IsNullOrWhiteSpace(documented.Reason) ? "[ThreadSafeStatic] with an empty reason" : null
                    : !f.IsInitOnly ? "static and not readonly: any code can replace it"
                    : WhyMutable(f.FieldType);
                if (why is not null)
                    found.Add(new StateOffender(Name(t), MemberName(f), why));
            }
        }
        return found;
    }

    /// <summary>
    /// The types whose instances objects of the <paramref name="roots"/> types can reach through their fields,
    /// within the shipped assemblies: field types, array elements, generic arguments, base types, and every
    /// shipped type that can stand for an interface, abstract or unsealed field type. Enums are values, left out.
    /// </summary>
    public static List<Type> ReachableShippedTypes(params Type[] roots)
    {
        var shipped = ShippedAssemblies.ToHashSet();
        var candidates = ShippedTypes().Where(t => !t.IsInterface && !t.IsAbstract && !t.ContainsGenericParameters).ToList();
        var seen = new HashSet<Type>();
        var order = new List<Type>();
        var pending = new Queue<Type>(roots);
        while (pending.TryDequeue(out var t))
        {
            if (t.IsArray || t.IsPointer || t.IsByRef)
            {
                pending.Enqueue(t.GetElementType()!);
                continue;
            }
            if (!seen.Add(t))
                continue;
            foreach (var argument in t.IsGenericType ? t.GetGenericArguments() : [])
                pending.Enqueue(argument);
            if (!shipped.Contains(t.Assembly) || t.IsEnum)
                continue;
            order.Add(t);
            if (t.BaseType is { } baseType)
                pending.Enqueue(baseType);
            if (t.IsInterface || t.IsAbstract || !t.IsSealed)
            {
                foreach (var c in candidates.Where(c => c != t && t.IsAssignableFrom(c)))
                    pending.Enqueue(c);
            }
            foreach (var f in t.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
                pending.Enqueue(f.FieldType);
        }
        return order;
    }

    /// <summary>
    /// Instance state of <paramref name="types"/> that could change after construction or that callers could
    /// write: a field that is not readonly (unless <see cref="ThreadSafeInstanceAttribute"/> says why it is
    /// safe), a property setter that is not init-only and not private, and a field or property that hands
    /// callers outside the assembly a writable collection (an array, span, list, dictionary...).
    /// </summary>
    public static List<StateOffender> FindInstanceState(IEnumerable<Type> types)
    {
        var found = new List<StateOffender>();
        const BindingFlags declared = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;
        foreach (var t in types)
        {
            void Add(string member, string why) => found.Add(new StateOffender(Name(t), member, why));

            foreach (var f in t.GetFields(declared))
            {
                if (f.GetCustomAttribute<ThreadSafeInstanceAttribute>() is { } documented)
                {
                    if (string.IsNullOrWhiteSpace(documented.Reason))
                        Add(MemberName(f), "[ThreadSafeInstance] with an empty reason");
                }
                else if (!f.IsInitOnly)
                {
                    Add(MemberName(f), "field is not readonly");
                }
                if (t.IsVisible && (f.IsPublic || f.IsFamily || f.IsFamilyOrAssembly) && IsWritableCollection(f.FieldType))
                    Add(MemberName(f), $"public field exposes a writable {Name(f.FieldType)}");
            }
            foreach (var p in t.GetProperties(declared))
            {
                if (p.SetMethod is { IsPrivate: false } setter && !IsInitOnly(setter))
                    Add(p.Name, $"has a {Access(setter)} setter");
                if (t.IsVisible && p.GetMethod is { } getter && (getter.IsPublic || getter.IsFamily || getter.IsFamilyOrAssembly)
                    && IsWritableCollection(p.PropertyType))
                    Add(p.Name, $"exposes a writable {Name(p.PropertyType)}");
            }
        }
        return found;
    }

    /// <summary>
    /// Walks the live objects reachable from <paramref name="root"/> through fields (shipped objects, and the
    /// insides of collections and arrays) and reports every public property of a shipped object whose value
    /// is a writable collection at run time, e.g. an IReadOnlyList&lt;T&gt; that is an array a caller could cast back.
    /// Shipped: <paramref name="assemblies"/>, by default <see cref="ShippedAssemblies"/>.
    /// </summary>
    public static List<StateOffender> FindWritableValuesBehindPublicProperties(object root, IEnumerable<Assembly>? assemblies = null)
    {
        var shipped = (assemblies ?? ShippedAssemblies).ToHashSet();
        var found = new List<StateOffender>();
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        var reported = new HashSet<(Type, string)>();
        var pending = new Queue<object>([root]);
        const BindingFlags instance = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;
        while (pending.TryDequeue(out var obj))
        {
            if (!seen.Add(obj))
                continue;
            var t = obj.GetType();
            if (obj is Array array)
            {
                if (CanHoldObjects(t.GetElementType()!))
                {
                    foreach (object? item in array)
                    {
                        if (item is not null)
                            pending.Enqueue(item);
                    }
                }
                continue;
            }
            bool isShipped = shipped.Contains(t.Assembly);
            if (!isShipped && t.Namespace?.StartsWith("System.Collections", StringComparison.Ordinal) != true)
                continue;
            for (var declaring = t; declaring is not null; declaring = declaring.BaseType)
            {
                foreach (var f in declaring.GetFields(instance | BindingFlags.DeclaredOnly))
                {
                    if (!f.FieldType.IsPointer && f.GetValue(obj) is { } value && !(value is string || value.GetType().IsPrimitive))
                        pending.Enqueue(value);
                }
            }
            if (!isShipped || !t.IsVisible)
                continue;
            foreach (var p in t.GetProperties(BindingFlags.Instance | BindingFlags.Public))
            {
                if (p.GetIndexParameters().Length > 0 || p.PropertyType.IsByRefLike || p.GetMethod is not { IsPublic: true }
                    || IsWritableCollection(p.PropertyType))
                    continue;
                if (p.GetValue(obj) is { } value && IsWritableCollection(value.GetType()) && reported.Add((t, p.Name)))
                    found.Add(new StateOffender(Name(t), p.Name, $"declared {Name(p.PropertyType)} but returns a writable {Name(value.GetType())}"));
            }
        }
        return found;
    }

    // Whether a value of the type can reference an object the walk should visit (a struct of numbers cannot).
    private static bool CanHoldObjects(Type t) =>
        !(t.IsPrimitive || t.IsEnum || t.IsPointer || t == typeof(string))
        && (!t.IsValueType || t.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic).Any(f => CanHoldObjects(f.FieldType)));

    /// <summary>Types whose contents a holder can change: arrays, spans and memory, and the mutable collections.</summary>
    public static bool IsWritableCollection(Type t)
    {
        if (t.IsArray || t == typeof(Array))
            return true;
        var definition = t.IsGenericType ? t.GetGenericTypeDefinition() : t;
        if (definition == typeof(Span<>) || definition == typeof(Memory<>) || definition == typeof(ArraySegment<>))
            return true;
        if (t.Namespace is "System.Collections.Immutable" or "System.Collections.Frozen" || t.Name.StartsWith("ReadOnly", StringComparison.Ordinal))
            return false;
        return typeof(IList).IsAssignableFrom(t) || typeof(IDictionary).IsAssignableFrom(t)
            || new[] { t }.Concat(t.GetInterfaces()).Any(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(ICollection<>));
    }

    private static bool IsInitOnly(MethodInfo setter) =>
        setter.ReturnParameter.GetRequiredCustomModifiers().Contains(typeof(IsExternalInit));

    private static string Access(MethodInfo m) =>
        m.IsPublic ? "public" : m.IsFamily ? "protected" : m.IsAssembly ? "internal" : m.IsFamilyOrAssembly ? "protected internal" : "private protected";

    private static string MemberName(FieldInfo f)
    {
        if (f.Name.StartsWith('<') && f.Name.EndsWith(BackingFieldSuffix, StringComparison.Ordinal))
            return f.Name[1..^BackingFieldSuffix.Length] + " (auto-property)";
        if (f.Name.StartsWith('<') && f.Name.EndsWith(CapturedParameterSuffix, StringComparison.Ordinal))
            return f.Name[1..^CapturedParameterSuffix.Length] + " (captured primary-constructor parameter)";
        return f.Name;
    }

    /// <summary>A readable type name: namespace-qualified, nested types with '+', generic arguments spelled out.</summary>
    public static string Name(Type t)
    {
        if (t.IsArray)
            return Name(t.GetElementType()!) + "[]";
        if (!t.IsGenericType)
            return t.FullName ?? t.Name;
        string name = Regex.Replace(t.GetGenericTypeDefinition().FullName ?? t.Name, @"`\d+", "");
        return $"{name}<{string.Join(", ", t.GetGenericArguments().Select(Name))}>";
    }
}

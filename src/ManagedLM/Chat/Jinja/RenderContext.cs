namespace ManagedLM.Chat.Jinja;

/// <summary>Bounds that keep a broken or hostile template from hanging or exhausting memory.</summary>
public sealed record RenderLimits
{
    public static RenderLimits Default { get; } = new();

    /// <summary>Most characters a render may produce; every string built on the way is held to it too, while it is built.</summary>
    public int MaxOutputLength { get; init; } = 4 << 20;

    /// <summary>Most loop iterations and macro calls in one render, all together.</summary>
    public long MaxSteps { get; init; } = 1_000_000;

    /// <summary>Deepest nesting of calls: macros, <c>caller()</c> and recursive <c>loop()</c> together.</summary>
    public int MaxCallDepth { get; init; } = 256;

    /// <summary>
    /// Most work on values in one render, in units: each item of a list or mapping that an operation builds or visits
    /// (printing, comparing, searching, sorting, joining, copying) is one, and every
    /// <see cref="CharactersPerWorkUnit"/> characters of a string built or scanned are one. It bounds time and memory
    /// where values share parts (a list of two references to one list, doubled 40 times, has 2^40 leaves).
    /// </summary>
    public long MaxValueWork { get; init; } = 4_000_000;

    /// <summary>Characters of a string built or scanned that count as one unit of <see cref="MaxValueWork"/>.</summary>
    public const int CharactersPerWorkUnit = 16;
}

/// <summary>
/// A variable scope of a render (minja's Context): names set here shadow the parent's. The top scope holds the
/// builtins, its child the render's variables; each for loop opens a child scope.
/// </summary>
public sealed class RenderContext
{
    private readonly JinjaDict _values;
    private readonly RenderContext? _parent;
    private readonly RenderBudget _budget;

    private RenderContext(JinjaDict values, RenderContext? parent, RenderBudget budget)
    {
        _values = values;
        _parent = parent;
        _budget = budget;
    }

    internal static RenderContext Root(JinjaDict builtins, RenderLimits limits) => new(builtins, null, new RenderBudget(limits));

    /// <summary>A child scope with <paramref name="values"/> (or none).</summary>
    internal RenderContext Child(JinjaDict? values = null) => new(values ?? new JinjaDict(), this, _budget);

    public object? Get(string name)
    {
        for (var c = this; c is not null; c = c._parent)
        {
            if (c._values.TryGet(name, out var v))
                return v;
        }
        return null;
    }

    public bool Contains(string name)
    {
        for (var c = this; c is not null; c = c._parent)
        {
            if (c._values.ContainsKey(name))
                return true;
        }
        return false;
    }

    public void Set(string name, object? value) => _values.Set(name, value);

    internal RenderBudget Budget => _budget;
}

/// <summary>What one render may still spend (shared by all its scopes).</summary>
internal sealed class RenderBudget(RenderLimits limits)
{
    private long _steps;
    private int _callDepth;
    private long _workCharacters; // value work so far, an item counting RenderLimits.CharactersPerWorkUnit
    private readonly long _maxWorkCharacters = limits.MaxValueWork > long.MaxValue / RenderLimits.CharactersPerWorkUnit
        ? long.MaxValue : limits.MaxValueWork * RenderLimits.CharactersPerWorkUnit;

    public RenderLimits Limits { get; } = limits;

    public void Step()
    {
        if (++_steps > Limits.MaxSteps)
            throw new TemplateException($"The template ran more than {Limits.MaxSteps} loop iterations and macro calls.");
    }

    /// <summary>Enters a macro, <c>caller()</c> or recursive <c>loop()</c> call (a step too); <see cref="ExitCall"/> when it returns.</summary>
    public void EnterCall()
    {
        Step();
        if (_callDepth >= Limits.MaxCallDepth)
            throw new TemplateException($"Calls of macros, caller() and loop() nest deeper than {Limits.MaxCallDepth} levels");
        _callDepth++;
    }

    public void ExitCall() => _callDepth--;

    public void CheckLength(long length)
    {
        if (length > Limits.MaxOutputLength)
            throw new TemplateException($"The template produced more than {Limits.MaxOutputLength} characters.");
    }

    /// <summary>Charges <paramref name="count"/> items of lists or mappings built or visited.</summary>
    public void Items(long count) => Charge(Math.Min(count, MaxCharge) * RenderLimits.CharactersPerWorkUnit);

    /// <summary>Charges <paramref name="count"/> characters of strings built or scanned.</summary>
    public void Characters(long count) => Charge(Math.Min(count, MaxCharge));

    /// <summary>Charges hashing or comparing a mapping key: its characters, for a string.</summary>
    public void Hash(object? key) => Characters(key is string s ? s.Length : 0);

    /// <summary>Charges a call of a function or method: it may scan each string argument, and a string it is called on.</summary>
    public void ChargeCall(Arguments args, object? receiver = null) => Characters(args.StringLength() + (receiver is string s ? s.Length : 0));

    /// <summary>Charges the characters of a call's result when it is a string (built by the call); returns the result.</summary>
    public object? ChargeResult(object? result)
    {
        if (result is string s)
            Characters(s.Length);
        return result;
    }

    // Any one charge beyond this is over every budget already; the cap keeps the sum from overflowing.
    private const long MaxCharge = 1L << 40;

    private void Charge(long characters)
    {
        _workCharacters += characters;
        if (_workCharacters > _maxWorkCharacters)
            throw new TemplateException(
                $"The template did more than {Limits.MaxValueWork} units of work on values (one per item visited or built, one per {RenderLimits.CharactersPerWorkUnit} characters).");
    }
}

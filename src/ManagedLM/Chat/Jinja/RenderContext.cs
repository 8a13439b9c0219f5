namespace ManagedLM.Chat.Jinja;

/// <summary>Bounds that keep a broken or hostile template from hanging or exhausting memory.</summary>
public sealed record RenderLimits
{
    public static RenderLimits Default { get; } = new();

    /// <summary>Most characters a render may produce (strings built on the way count too).</summary>
    public int MaxOutputLength { get; init; } = 4 << 20;

    /// <summary>Most loop iterations and macro calls in one render, all together.</summary>
    public long MaxSteps { get; init; } = 1_000_000;

    /// <summary>Deepest nesting of calls: macros, <c>caller()</c> and recursive <c>loop()</c> together.</summary>
    public int MaxCallDepth { get; init; } = 256;
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
}

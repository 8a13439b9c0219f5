using System.Collections.Immutable;
using System.Text;

namespace ManagedLM.Chat.Jinja;

/// <summary>A node of the parsed template: renders into the output.</summary>
internal abstract class Node(SourceLocation location)
{
    public SourceLocation Location { get; } = location;

    public void Render(StringBuilder output, RenderContext context)
    {
        Nesting.EnsureStack(Location.Line, Location.Column);
        try
        {
            Write(output, context);
        }
        catch (TemplateException e) when (e.Line == 0)
        {
            throw e.At(Location.Line, Location.Column);
        }
        context.Budget.CheckLength(output.Length);
    }

    public string Render(RenderContext context)
    {
        var sb = new StringBuilder();
        Render(sb, context);
        return sb.ToString();
    }

    protected abstract void Write(StringBuilder output, RenderContext context);
}

internal sealed class SequenceNode(SourceLocation location, ImmutableArray<Node> children) : Node(location)
{
    private readonly ImmutableArray<Node> children = children;

    protected override void Write(StringBuilder output, RenderContext context)
    {
        foreach (var child in children)
            child.Render(output, context);
    }
}

internal sealed class TextNode(SourceLocation location, string text) : Node(location)
{
    private readonly string text = text;

    protected override void Write(StringBuilder output, RenderContext context) => output.Append(text);
}

internal sealed class OutputNode(SourceLocation location, Expr expression) : Node(location)
{
    private readonly Expr expression = expression;

    protected override void Write(StringBuilder output, RenderContext context) => output.Append(Values.Print(expression.Evaluate(context), context.Budget));
}

internal sealed class IfNode(SourceLocation location, ImmutableArray<(Expr? Condition, Node Body)> branches) : Node(location)
{
    private readonly ImmutableArray<(Expr? Condition, Node Body)> branches = branches;

    protected override void Write(StringBuilder output, RenderContext context)
    {
        foreach (var (condition, body) in branches)
        {
            if (condition is null || Values.ToBool(condition.Evaluate(context)))
            {
                body.Render(output, context);
                return;
            }
        }
    }
}

internal enum LoopControl { Break, Continue }

/// <summary>Thrown by {% break %} / {% continue %}, caught by the enclosing loop.</summary>
internal sealed class LoopControlSignal(LoopControl kind) : Exception($"{(kind == LoopControl.Break ? "break" : "continue")} outside of a loop")
{
    public LoopControl Kind { get; } = kind;
}

internal sealed class LoopControlNode(SourceLocation location, LoopControl kind) : Node(location)
{
    private readonly LoopControl kind = kind;

    protected override void Write(StringBuilder output, RenderContext context) => throw new LoopControlSignal(kind);
}

internal sealed class ForNode(SourceLocation location, ImmutableArray<string> names, Expr iterable, Expr? condition, Node body, Node? otherwise, bool recursive)
    : Node(location)
{
    private readonly ImmutableArray<string> names = names;
    private readonly Expr iterable = iterable;
    private readonly Expr? condition = condition;
    private readonly Node body = body;
    private readonly Node? otherwise = otherwise;
    private readonly bool recursive = recursive;

    protected override void Write(StringBuilder output, RenderContext context) => Visit(output, context, iterable.Evaluate(context), 0);

    private void Visit(StringBuilder output, RenderContext context, object? items, int depth)
    {
        // As minja: the loop variables are also assigned in the enclosing scope while filtering (they stay set after the loop).
        var kept = new List<object?>();
        if (items is not null)
        {
            if (!Values.IsIterable(items))
                throw new TemplateException($"For loop iterable must be iterable: {Values.Describe(items)}");
            foreach (var item in Values.Iterate(items, context.Budget).ToList())
            {
                context.Budget.Step();
                Assign(context, item);
                if (condition is null || Values.ToBool(condition.Evaluate(context)))
                    kept.Add(item);
            }
        }
        if (kept.Count == 0)
        {
            otherwise?.Render(output, context);
            return;
        }
        var loop = new JinjaDict();
        var scope = context.Child();
        scope.Set("loop", loop);
        int cycle = 0;
        loop.Set("cycle", new JinjaFunction("cycle", (_, a) =>
        {
            if (a.Positional.Count == 0 || a.Named.Count > 0)
                throw new TemplateException("cycle() expects at least 1 positional argument and no named arg");
            var v = a.Positional[cycle % a.Positional.Count];
            cycle = (cycle + 1) % a.Positional.Count;
            return v;
        }));
        if (recursive)
        {
            loop.Set("__call__", new JinjaFunction("loop", (_, a) =>
            {
                if (a.Positional.Count != 1 || a.Named.Count > 0 || a.Positional[0] is not JinjaList)
                    throw new TemplateException("loop() expects exactly 1 positional iterable argument");
                context.Budget.EnterCall();
                try
                {
                    var sb = new StringBuilder();
                    Visit(sb, context, a.Positional[0], depth + 1);
                    return sb.ToString();
                }
                finally
                {
                    context.Budget.ExitCall();
                }
            }));
        }
        int n = kept.Count;
        for (int i = 0; i < n; i++)
        {
            context.Budget.Step();
            Assign(scope, kept[i]);
            loop.Set("index", (long)i + 1);
            loop.Set("index0", (long)i);
            loop.Set("revindex", (long)(n - i));
            loop.Set("revindex0", (long)(n - i - 1));
            loop.Set("length", (long)n);
            loop.Set("first", i == 0);
            loop.Set("last", i == n - 1);
            loop.Set("previtem", i > 0 ? kept[i - 1] : null);
            loop.Set("nextitem", i < n - 1 ? kept[i + 1] : null);
            loop.Set("depth", (long)depth + 1);
            loop.Set("depth0", (long)depth);
            try
            {
                body.Render(output, scope);
            }
            catch (LoopControlSignal signal)
            {
                if (signal.Kind == LoopControl.Break)
                    break;
            }
        }
    }

    private void Assign(RenderContext scope, object? item) => Assignment.Destructure(names, scope, item);
}

internal static class Assignment
{
    public static void Destructure(ImmutableArray<string> names, RenderContext scope, object? item)
    {
        if (names.Length == 1)
        {
            scope.Set(names[0], item);
            return;
        }
        if (item is not JinjaList list || list.Count != names.Length)
            throw new TemplateException("Mismatched number of variables and items in destructuring assignment");
        for (int i = 0; i < names.Length; i++)
            scope.Set(names[i], list[i]);
    }
}

/// <summary>
/// {% macro name(params) %}: defines a function in the scope it is rendered in. As in minja, a call binds its
/// parameters in that same scope and renders the body there.
/// </summary>
internal sealed class MacroNode(SourceLocation location, string name, ImmutableArray<(string Name, Expr? Default)> parameters, Node body) : Node(location)
{
    private readonly string name = name;
    private readonly ImmutableArray<(string Name, Expr? Default)> parameters = parameters;
    private readonly Node body = body;

    private int IndexOf(string parameter)
    {
        for (int i = 0; i < parameters.Length; i++)
        {
            if (parameters[i].Name == parameter)
                return i;
        }
        return -1;
    }

    protected override void Write(StringBuilder output, RenderContext definingScope)
    {
        definingScope.Set(name, new JinjaFunction(name, (callerScope, a) =>
        {
            var budget = definingScope.Budget;
            budget.EnterCall();
            try
            {
                var set = new bool[parameters.Length];
                if (a.Positional.Count > parameters.Length)
                    throw new TemplateException($"Too many positional arguments for macro {name}");
                for (int i = 0; i < a.Positional.Count; i++)
                {
                    definingScope.Set(parameters[i].Name, a.Positional[i]);
                    set[i] = true;
                }
                foreach (var (argName, value) in a.Named)
                {
                    int at = IndexOf(argName);
                    if (at < 0)
                    {
                        if (argName == "caller")
                        {
                            definingScope.Set("caller", value);
                            continue;
                        }
                        throw new TemplateException($"Unknown parameter name for macro {name}: {argName}");
                    }
                    definingScope.Set(argName, value);
                    set[at] = true;
                }
                for (int i = 0; i < parameters.Length; i++)
                {
                    if (!set[i] && parameters[i].Default is { } d)
                        definingScope.Set(parameters[i].Name, d.Evaluate(callerScope));
                }
                return body.Render(definingScope);
            }
            finally
            {
                budget.ExitCall();
            }
        }));
    }
}

/// <summary>{% call macro(args) %}body{% endcall %}: calls the macro with <c>caller()</c> rendering the body.</summary>
internal sealed class CallBlockNode(SourceLocation location, CallExpr call, Node body) : Node(location)
{
    private readonly CallExpr call = call;
    private readonly Node body = body;

    protected override void Write(StringBuilder output, RenderContext context)
    {
        if (call.Target.Evaluate(context) is not JinjaFunction macro)
            throw new TemplateException("{% call %} needs a macro");
        var args = call.Args.Evaluate(context);
        args.Named.Add(new("caller", new JinjaFunction("caller", (_, _) =>
        {
            context.Budget.EnterCall();
            try
            {
                return body.Render(context);
            }
            finally
            {
                context.Budget.ExitCall();
            }
        })));
        output.Append(Values.Print(macro.Invoke(context, args), context.Budget));
    }
}

/// <summary>{% filter f %}body{% endfilter %}: the rendered body through a filter.</summary>
internal sealed class FilterBlockNode(SourceLocation location, Expr filter, Node body) : Node(location)
{
    private readonly Expr filter = filter;
    private readonly Node body = body;

    protected override void Write(StringBuilder output, RenderContext context)
    {
        Expr target = filter is CallExpr c ? c.Target : filter;
        if (target.Evaluate(context) is not JinjaFunction f)
            throw new TemplateException("Filter must be a callable");
        var args = filter is CallExpr call ? call.Args.Evaluate(context) : new Arguments();
        args.Positional.Insert(0, body.Render(context));
        output.Append(Values.ToStr(f.Invoke(context, args), context.Budget));
    }
}

internal sealed class SetNode(SourceLocation location, string? ns, ImmutableArray<string> names, Expr value) : Node(location)
{
    private readonly string? ns = ns;
    private readonly ImmutableArray<string> names = names;
    private readonly Expr value = value;

    protected override void Write(StringBuilder output, RenderContext context)
    {
        if (ns is not null)
        {
            if (context.Get(ns) is not JinjaDict target)
                throw new TemplateException($"Namespace '{ns}' is not an object");
            target.Set(names[0], value.Evaluate(context));
            return;
        }
        Assignment.Destructure(names, context, value.Evaluate(context));
    }
}

internal sealed class SetBlockNode(SourceLocation location, string name, Node body) : Node(location)
{
    private readonly string name = name;
    private readonly Node body = body;

    protected override void Write(StringBuilder output, RenderContext context) => context.Set(name, context.Budget.ChargeResult(body.Render(context)));
}

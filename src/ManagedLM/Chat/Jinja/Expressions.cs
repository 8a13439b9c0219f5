using System.Collections.Immutable;

namespace ManagedLM.Chat.Jinja;

/// <summary>A place in the template source (1-based line and column).</summary>
public readonly record struct SourceLocation(int Line, int Column);

/// <summary>
/// An expression of the template: evaluates to a template value (see <see cref="Values"/>). Its tree is at most
/// <see cref="JinjaTemplate.MaxExpressionDepth"/> deep, whichever way the parser built it, so evaluating it recurses that far at most.
/// </summary>
internal abstract class Expr
{
    /// <param name="location">Where the expression is.</param>
    /// <param name="childDepth">The depth of its deepest operand (0 for none).</param>
    protected Expr(SourceLocation location, int childDepth)
    {
        Location = location;
        Depth = childDepth + 1;
        if (Depth > JinjaTemplate.MaxExpressionDepth)
            throw new TemplateException(Nesting.TooDeep("Expressions", JinjaTemplate.MaxExpressionDepth), location.Line, location.Column);
    }

    public SourceLocation Location { get; }

    /// <summary>Levels of this expression's tree: 1 for a name or a literal.</summary>
    public int Depth { get; }

    protected static int Deepest(params ReadOnlySpan<Expr?> operands)
    {
        int depth = 0;
        foreach (var e in operands)
            depth = Math.Max(depth, e?.Depth ?? 0);
        return depth;
    }

    protected static int Deepest(ImmutableArray<Expr> operands) => Deepest(operands.AsSpan()!);

    public object? Evaluate(RenderContext context)
    {
        Nesting.EnsureStack(Location.Line, Location.Column);
        try
        {
            return Eval(context);
        }
        catch (TemplateException e) when (e.Line == 0)
        {
            throw e.At(Location.Line, Location.Column);
        }
        catch (Exception e) when (e is InvalidCastException or ArgumentException or FormatException or OverflowException or IndexOutOfRangeException or DivideByZeroException)
        {
            throw new TemplateException(e.Message, Location.Line, Location.Column, inner: e);
        }
    }

    protected abstract object? Eval(RenderContext context);
}

internal sealed class VariableExpr(SourceLocation location, string name) : Expr(location, 0)
{
    public string Name { get; } = name;
    protected override object? Eval(RenderContext context) => context.Get(Name);
}

internal sealed class LiteralExpr(SourceLocation location, object? value) : Expr(location, 0)
{
    public object? Value { get; } = value;
    protected override object? Eval(RenderContext context) => Value;
}

internal sealed class ListExpr(SourceLocation location, ImmutableArray<Expr> items) : Expr(location, Deepest(items))
{
    private readonly ImmutableArray<Expr> items = items;

    protected override object? Eval(RenderContext context)
    {
        context.Budget.Items(items.Length);
        return new JinjaList(items.Select(i => i.Evaluate(context)));
    }
}

internal sealed class DictExpr(SourceLocation location, ImmutableArray<(Expr Key, Expr Value)> items)
    : Expr(location, items.IsEmpty ? 0 : items.Max(i => Math.Max(i.Key.Depth, i.Value.Depth)))
{
    private readonly ImmutableArray<(Expr Key, Expr Value)> items = items;

    protected override object? Eval(RenderContext context)
    {
        var d = new JinjaDict();
        context.Budget.Items(items.Length);
        foreach (var (k, v) in items)
        {
            object? key = k.Evaluate(context);
            if (key is null or JinjaList or JinjaDict or JinjaFunction)
                throw new TemplateException($"Unhashable type: {Values.Describe(key)}");
            context.Budget.Hash(key);
            d.Set(key, v.Evaluate(context));
        }
        return d;
    }
}

internal sealed class SliceExpr(SourceLocation location, Expr? start, Expr? end, Expr? step) : Expr(location, Deepest(start, end, step))
{
    public Expr? Start { get; } = start;
    public Expr? End { get; } = end;
    public Expr? Step { get; } = step;
    protected override object? Eval(RenderContext context) => throw new TemplateException("A slice is only valid in a subscript");
}

internal sealed class SubscriptExpr(SourceLocation location, Expr target, Expr index) : Expr(location, Deepest(target, index))
{
    private readonly Expr target = target;
    private readonly Expr index = index;

    protected override object? Eval(RenderContext context)
    {
        object? value = target.Evaluate(context);
        if (index is SliceExpr slice)
            return Slice(value, slice, context);
        object? key = index.Evaluate(context);
        if (value is null)
        {
            if (target is VariableExpr v)
                throw new TemplateException($"'{v.Name}' is {(context.Contains(v.Name) ? "null" : "not defined")}");
            throw new TemplateException($"Trying to access property '{Values.Describe(key)}' on null!");
        }
        return Get(value, key, context.Budget);
    }

    /// <summary>value[key]: a list item (negative counts from the end), a mapping's value (the key's hashing charged), or none.</summary>
    public static object? Get(object? value, object? key, RenderBudget budget)
    {
        switch (value)
        {
            case JinjaList list:
                if (key is not long i)
                    return null;
                long at = i < 0 ? list.Count + i : i;
                if (at < 0 || at >= list.Count)
                    throw new TemplateException($"List index {i} out of range for a list of {list.Count}");
                return list[(int)at];
            case JinjaDict dict:
                if (key is JinjaList or JinjaDict or JinjaFunction)
                    throw new TemplateException($"Unhashable type: {Values.Describe(key)}");
                budget.Hash(key);
                return key is null ? null : dict.Get(key);
            default:
                return null;
        }
    }

    private static object? Slice(object? value, SliceExpr slice, RenderContext context)
    {
        if (value is not (string or JinjaList))
            throw new TemplateException(value is null ? "Cannot subscript null" : "Subscripting only supported on arrays and strings");
        // Strings slice by UTF-8 bytes, as minja does.
        context.Budget.Characters(value is string text ? text.Length : 0);
        byte[]? bytes = value is string s ? System.Text.Encoding.UTF8.GetBytes(s) : null;
        long length = bytes?.Length ?? ((JinjaList)value).Count;
        long Wrap(long i) => i < 0 ? i + length : i;
        long step = slice.Step is null ? 1 : Values.ToLong(slice.Step.Evaluate(context));
        if (step == 0)
            throw new TemplateException("slice step cannot be zero");
        long start = slice.Start is null ? (step < 0 ? length - 1 : 0) : Wrap(Values.ToLong(slice.Start.Evaluate(context)));
        long end = slice.End is null ? (step < 0 ? -1 : length) : Wrap(Values.ToLong(slice.End.Evaluate(context)));
        start = Math.Clamp(start, step < 0 ? -1 : 0, length);
        end = Math.Clamp(end, -1, length);
        long count = Values.StepCount(start, end, step);
        if (bytes is not null)
        {
            var picked = new byte[count];
            int n = 0;
            for (long k = 0; k < count; k++)
            {
                long i = start + k * step;
                if (i >= 0 && i < length)
                    picked[n++] = bytes[i];
            }
            return System.Text.Encoding.UTF8.GetString(picked, 0, n);
        }
        var list = (JinjaList)value;
        context.Budget.Items(count);
        var result = new JinjaList();
        for (long k = 0; k < count; k++)
        {
            long i = start + k * step;
            if (i >= 0 && i < length)
                result.Add(list[(int)i]);
        }
        return result;
    }
}

internal enum UnaryOp { Plus, Minus, Not, Expansion, ExpansionDict }

internal sealed class UnaryExpr(SourceLocation location, UnaryOp op, Expr operand) : Expr(location, operand.Depth)
{
    public UnaryOp Op { get; } = op;
    public Expr Operand { get; } = operand;

    protected override object? Eval(RenderContext context)
    {
        object? v = Operand.Evaluate(context);
        return Op switch
        {
            UnaryOp.Plus => v,
            UnaryOp.Minus => v is long l ? (object)(-l) : -Values.ToDouble(v),
            UnaryOp.Not => !Values.ToBool(v),
            _ => throw new TemplateException("Expansion operator is only supported in function calls and collections"),
        };
    }
}

internal enum BinaryOp { StrConcat, Add, Sub, Mul, Pow, Div, FloorDiv, Mod, Eq, Ne, Lt, Gt, Le, Ge, And, Or, In, NotIn, Is, IsNot }

internal sealed class BinaryExpr(SourceLocation location, BinaryOp op, Expr left, Expr right) : Expr(location, Deepest(left, right))
{
    private readonly BinaryOp op = op;
    private readonly Expr left = left;
    private readonly Expr right = right;

    protected override object? Eval(RenderContext context)
    {
        object? l = left.Evaluate(context);
        switch (op)
        {
            case BinaryOp.Is:
            case BinaryOp.IsNot:
                string test = ((VariableExpr)right).Name;
                if (test is "lower" or "upper" && l is string s)
                    context.Budget.Characters(s.Length);
                bool result = Tests.Apply(test, l);
                return op == BinaryOp.Is ? result : !result;
            case BinaryOp.And:
                return Values.ToBool(l) && Values.ToBool(right.Evaluate(context));
            case BinaryOp.Or:
                return Values.ToBool(l) ? l : right.Evaluate(context);
        }
        object? r = right.Evaluate(context);
        var budget = context.Budget;
        switch (op)
        {
            case BinaryOp.StrConcat:
                return Checked(context, Values.ToStr(l, budget) + Values.ToStr(r, budget));
            case BinaryOp.Add:
                return Add(context, l, r);
            case BinaryOp.Sub:
                return l is long a && r is long b ? (object)(a - b) : Values.ToDouble(l) - Values.ToDouble(r);
            case BinaryOp.Mul:
                return Multiply(context, l, r);
            case BinaryOp.Div:
                if (l is long x && r is long y)
                    return y == 0 ? throw new TemplateException("Division by zero") : x / y;
                return Values.ToDouble(l) / Values.ToDouble(r);
            case BinaryOp.FloorDiv:
                return Values.ToLong(r) == 0 ? throw new TemplateException("Division by zero") : Values.ToLong(l) / Values.ToLong(r);
            case BinaryOp.Mod:
                return Values.ToLong(r) == 0 ? throw new TemplateException("Modulo by zero") : Values.ToLong(l) % Values.ToLong(r);
            case BinaryOp.Pow:
                return Math.Pow(Values.ToDouble(l), Values.ToDouble(r));
            case BinaryOp.Eq:
                return Values.Equal(l, r, budget);
            case BinaryOp.Ne:
                return !Values.Equal(l, r, budget);
            case BinaryOp.Lt:
                return Values.Less(l, r, budget);
            case BinaryOp.Gt:
                return Values.Greater(l, r, budget);
            case BinaryOp.Le:
                return !Values.Greater(l, r, budget);
            case BinaryOp.Ge:
                return !Values.Less(l, r, budget);
            case BinaryOp.In:
                return Values.In(l, r, budget);
            case BinaryOp.NotIn:
                return !Values.In(l, r, budget);
        }
        throw new TemplateException("Unknown binary operator");
    }

    private static object? Add(RenderContext context, object? l, object? r)
    {
        if (l is string || r is string)
            return Checked(context, Values.ToStr(l, context.Budget) + Values.ToStr(r, context.Budget));
        if (l is long a && r is long b)
            return a + b;
        if (l is JinjaList la && r is JinjaList lb)
        {
            context.Budget.Items((long)la.Count + lb.Count);
            return new JinjaList(la.Concat(lb));
        }
        return Values.ToDouble(l) + Values.ToDouble(r);
    }

    private static object? Multiply(RenderContext context, object? l, object? r)
    {
        if (l is string s && r is long n)
        {
            long length = (long)Int128.Min(s.Length * (Int128)Math.Max(0, n), long.MaxValue);
            context.Budget.CheckLength(length);
            context.Budget.Characters(length);
            return n <= 0 ? "" : string.Concat(Enumerable.Repeat(s, (int)n));
        }
        if (l is long a && r is long b)
            return a * b;
        return Values.ToDouble(l) * Values.ToDouble(r);
    }

    // A string built by an operator: held to the output limit and charged.
    private static string Checked(RenderContext context, string s)
    {
        context.Budget.CheckLength(s.Length);
        context.Budget.Characters(s.Length);
        return s;
    }
}

internal sealed class ConditionalExpr(SourceLocation location, Expr condition, Expr then, Expr? otherwise) : Expr(location, Deepest(condition, then, otherwise))
{
    private readonly Expr condition = condition;
    private readonly Expr then = then;
    private readonly Expr? otherwise = otherwise;

    protected override object? Eval(RenderContext context) =>
        Values.ToBool(condition.Evaluate(context)) ? then.Evaluate(context) : otherwise?.Evaluate(context);
}

/// <summary>Call arguments: expressions, <c>*list</c> / <c>**mapping</c> expansions, and named ones.</summary>
internal sealed class ArgumentExprs(ImmutableArray<Expr> positional, ImmutableArray<(string Name, Expr Value)> named)
{
    public ImmutableArray<Expr> Positional { get; } = positional;
    public ImmutableArray<(string Name, Expr Value)> Named { get; } = named;

    /// <summary>The depth of the deepest argument (0 for none).</summary>
    public int Depth { get; } = Math.Max(positional.IsEmpty ? 0 : positional.Max(e => e.Depth), named.IsEmpty ? 0 : named.Max(n => n.Value.Depth));

    public Arguments Evaluate(RenderContext context)
    {
        var args = new Arguments();
        foreach (var e in Positional)
        {
            if (e is UnaryExpr { Op: UnaryOp.Expansion } spread)
            {
                if (spread.Operand.Evaluate(context) is not JinjaList list)
                    throw new TemplateException("Expansion operator only supported on arrays");
                context.Budget.Items(list.Count);
                args.Positional.AddRange(list);
                continue;
            }
            if (e is UnaryExpr { Op: UnaryOp.ExpansionDict } spreadDict)
            {
                if (spreadDict.Operand.Evaluate(context) is not JinjaDict dict)
                    throw new TemplateException("ExpansionDict operator only supported on objects");
                context.Budget.Items(dict.Count);
                foreach (object key in dict.Keys)
                    args.Named.Add(new(Values.ToStr(key), dict.Get(key)));
                continue;
            }
            args.Positional.Add(e.Evaluate(context));
        }
        foreach (var (name, value) in Named)
            args.Named.Add(new(name, value.Evaluate(context)));
        return args;
    }
}

internal sealed class CallExpr(SourceLocation location, Expr target, ArgumentExprs args) : Expr(location, Math.Max(target.Depth, args.Depth))
{
    public Expr Target { get; } = target;
    public ArgumentExprs Args { get; } = args;

    protected override object? Eval(RenderContext context)
    {
        object? f = Target.Evaluate(context);
        if (f is JinjaDict { } callableObject && callableObject.Get("__call__") is JinjaFunction call)
            f = call; // a recursive loop's `loop`
        if (f is not JinjaFunction fn)
            throw new TemplateException(Target is VariableExpr v && f is null
                ? $"'{v.Name}' is not defined" : $"Object is not callable: {Values.Describe(f, 2)}");
        return fn.Invoke(context, Args.Evaluate(context));
    }
}

internal sealed class MethodCallExpr(SourceLocation location, Expr target, string method, ArgumentExprs args) : Expr(location, Math.Max(target.Depth, args.Depth))
{
    private readonly Expr target = target;
    private readonly string method = method;
    private readonly ArgumentExprs args = args;

    protected override object? Eval(RenderContext context)
    {
        object? obj = target.Evaluate(context);
        var a = args.Evaluate(context);
        if (obj is null)
            throw new TemplateException($"Trying to call method '{method}' on null");
        return Methods.Call(context, obj, method, a);
    }
}

/// <summary><c>value | f | g(args)</c>: each part called with the value so far as its first argument.</summary>
internal sealed class FilterExpr(SourceLocation location, ImmutableArray<Expr> parts) : Expr(location, Deepest(parts))
{
    public ImmutableArray<Expr> Parts { get; } = parts;

    protected override object? Eval(RenderContext context)
    {
        object? result = Parts[0].Evaluate(context);
        for (int i = 1; i < Parts.Length; i++)
        {
            var part = Parts[i];
            Expr target = part is CallExpr call ? call.Target : part;
            object? f = target.Evaluate(context);
            if (f is not JinjaFunction fn)
                throw new TemplateException(target is VariableExpr v ? $"Unknown filter '{v.Name}'" : "A filter must be callable");
            var args = part is CallExpr c ? c.Args.Evaluate(context) : new Arguments();
            args.Positional.Insert(0, result);
            result = fn.Invoke(context, args);
        }
        return result;
    }
}

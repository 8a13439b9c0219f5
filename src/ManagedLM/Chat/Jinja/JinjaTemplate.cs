
namespace ManagedLM.Chat.Jinja;

/// <summary>
/// A parsed Jinja template (the subset chat templates use, with the semantics of minja, the engine llama.cpp renders
/// them with: a none value counts as undefined and prints nothing, <c>"s" + none</c> gives "None", <c>|safe</c> does
/// nothing, filters are functions). Immutable and safe to render from many threads at once; each render has its own
/// variables and bounded budget (<see cref="RenderLimits"/>). Parsing and rendering nest to bounded depths (the Max*
/// constants here, <see cref="RenderLimits.MaxCallDepth"/>, and whatever the thread's stack holds), so no template can
/// overflow the stack.
/// </summary>
public sealed class JinjaTemplate
{
    /// <summary>Deepest nesting of an expression: brackets, <c>not</c>, call arguments, operands of operator chains, ...</summary>
    public const int MaxExpressionDepth = 128;

    /// <summary>Deepest nesting of block statements (if, for, macro, call, filter, set, generation).</summary>
    public const int MaxBlockDepth = 128;

    /// <summary>Deepest nesting of list and mapping values a render prints, compares or sorts (a list that holds itself never ends).</summary>
    public const int MaxValueDepth = 256;

    private readonly Node _root;

    private JinjaTemplate(string source, Node root)
    {
        Source = source;
        _root = root;
    }

    /// <summary>The template text.</summary>
    public string Source { get; }

    /// <summary>Parses <paramref name="source"/>.</summary>
    /// <exception cref="TemplateException">The template is malformed or nests deeper than the limits (the message says what, Line/Column where).</exception>
    public static JinjaTemplate Parse(string source, TemplateOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        return new JinjaTemplate(source, Parser.Parse(source, options ?? TemplateOptions.ChatDefaults));
    }

    /// <summary>Renders with the given variables (template values: see <see cref="Values"/>; use <see cref="Values.FromJson"/> for JSON).</summary>
    /// <exception cref="TemplateException">The template raised an error or failed (the message says what, Line/Column where).</exception>
    public string Render(IEnumerable<KeyValuePair<string, object?>> variables, RenderLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(variables);
        var root = RenderContext.Root(Builtins.Create(), limits ?? RenderLimits.Default);
        var scope = root.Child();
        foreach (var (name, value) in variables)
            scope.Set(name, value);
        try
        {
            return _root.Render(scope);
        }
        catch (LoopControlSignal signal)
        {
            throw new TemplateException(signal.Message);
        }
        catch (InsufficientExecutionStackException e)
        {
            throw new TemplateException(Nesting.StackExhausted, inner: e);
        }
    }
}


namespace ManagedLM.Chat.Jinja;

/// <summary>
/// A parsed Jinja template (the subset chat templates use, with the semantics of minja, the engine llama.cpp renders
/// them with: a none value counts as undefined and prints nothing, <c>"s" + none</c> gives "None", <c>|safe</c> does
/// nothing, filters are functions). Immutable and safe to render from many threads at once; each render has its own
/// variables and bounded budget (<see cref="RenderLimits"/>).
/// </summary>
public sealed class JinjaTemplate
{
    private readonly Node _root;

    private JinjaTemplate(string source, Node root)
    {
        Source = source;
        _root = root;
    }

    /// <summary>The template text.</summary>
    public string Source { get; }

    /// <summary>Parses <paramref name="source"/>.</summary>
    /// <exception cref="TemplateException">The template is malformed (the message says what, Line/Column where).</exception>
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
        catch (StackOverflowException)
        {
            throw;
        }
        catch (InsufficientExecutionStackException e)
        {
            throw new TemplateException("The template nests too deeply.", inner: e);
        }
    }
}

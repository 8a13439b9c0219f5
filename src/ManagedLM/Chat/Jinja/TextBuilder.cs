using System.Text;

namespace ManagedLM.Chat.Jinja;

/// <summary>
/// A string under construction in a render: it throws as soon as it passes <see cref="RenderLimits.MaxOutputLength"/>
/// (not after it is built), and its characters count as work. Without a budget (error messages) it stops growing at
/// <paramref name="cap"/> characters instead: <see cref="Full"/> says when.
/// </summary>
internal sealed class TextBuilder(RenderBudget? budget, int cap = int.MaxValue)
{
    private readonly StringBuilder _text = new();

    public int Length => _text.Length;

    /// <summary>True once an unbudgeted builder holds its cap; callers stop appending.</summary>
    public bool Full => _text.Length >= cap;

    public TextBuilder Append(string s) => Append(s.AsSpan());

    public TextBuilder Append(ReadOnlySpan<char> s)
    {
        Reserve(s.Length);
        _text.Append(s);
        return this;
    }

    public TextBuilder Append(char c)
    {
        Reserve(1);
        _text.Append(c);
        return this;
    }

    public TextBuilder Append(char c, int repeat)
    {
        Reserve(repeat);
        _text.Append(c, repeat);
        return this;
    }

    /// <summary>Charges one item of a list or mapping written out.</summary>
    public void Visit() => budget?.Items(1);

    private void Reserve(int count)
    {
        if (budget is null)
            return;
        budget.CheckLength((long)_text.Length + count);
        budget.Characters(count);
    }

    /// <summary>The text; cut to the cap with "..." when it grew past it.</summary>
    public override string ToString() => _text.Length > cap ? _text.ToString(0, cap) + "..." : _text.ToString();
}

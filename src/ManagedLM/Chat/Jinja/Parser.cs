using System.Collections.Immutable;
using System.Globalization;
using System.Runtime.CompilerServices;

namespace ManagedLM.Chat.Jinja;

/// <summary>How a template is parsed (the settings HF transformers and llama.cpp use for chat templates are the defaults).</summary>
public sealed record TemplateOptions
{
    public static TemplateOptions ChatDefaults { get; } = new();

    /// <summary>Remove the first newline after a block tag or comment.</summary>
    public bool TrimBlocks { get; init; } = true;

    /// <summary>Remove spaces and tabs before a tag on its own line.</summary>
    public bool LStripBlocks { get; init; } = true;

    /// <summary>Keep the template's final newline.</summary>
    public bool KeepTrailingNewline { get; init; }
}

/// <summary>
/// Parses a template as minja does (the Jinja engine behind llama.cpp's chat templates): a scan into text, expression,
/// statement and comment tokens — expressions parsed in place with minja's grammar and precedence — then a tree.
/// Every recursive step counts its depth against <see cref="JinjaTemplate.MaxExpressionDepth"/> or
/// <see cref="JinjaTemplate.MaxBlockDepth"/> and checks the stack.
/// </summary>
internal sealed class Parser
{
    private readonly string _source;
    private readonly TemplateOptions _options;
    private readonly int[] _lineStarts;
    private int _pos;
    private int _expressionDepth;
    private int _blockDepth;

    private Parser(string source, TemplateOptions options)
    {
        _source = source;
        _options = options;
        var starts = new List<int> { 0 };
        for (int i = 0; i < source.Length; i++)
        {
            if (source[i] == '\n')
                starts.Add(i + 1);
        }
        _lineStarts = starts.ToArray();
    }

    public static Node Parse(string source, TemplateOptions options)
    {
        var parser = new Parser(source, options);
        var tokens = parser.Tokenize();
        int at = 0;
        var root = parser.BuildTree(tokens, ref at);
        if (at < tokens.Count)
            throw parser.Error($"Unexpected {tokens[at].Kind}", tokens[at].Offset);
        return root;
    }

    // ---- locations and errors

    private SourceLocation Locate(int offset)
    {
        int line = Array.BinarySearch(_lineStarts, offset);
        if (line < 0)
            line = ~line - 1;
        return new SourceLocation(line + 1, offset - _lineStarts[line] + 1);
    }

    private SourceLocation Here => Locate(_pos);

    private TemplateException Error(string message, int? offset = null)
    {
        var l = Locate(offset ?? _pos);
        return new TemplateException(message, l.Line, l.Column);
    }

    // One level deeper into an expression; Ascend() on the way back (an error ends the parse, so no finally is needed).
    private void Descend()
    {
        if (++_expressionDepth > JinjaTemplate.MaxExpressionDepth)
            throw Error(Nesting.TooDeep("Expressions", JinjaTemplate.MaxExpressionDepth));
        if (!RuntimeHelpers.TryEnsureSufficientExecutionStack())
            throw Error(Nesting.StackExhausted);
    }

    private void Ascend() => _expressionDepth--;

    // ---- low-level scanning (minja's consumeSpaces / consumeToken)

    private bool AtEnd => _pos >= _source.Length;

    private void SkipSpaces()
    {
        while (_pos < _source.Length && IsSpace(_source[_pos]))
            _pos++;
    }

    private static bool IsSpace(char c) => c is ' ' or '\t' or '\n' or '\r' or '\v' or '\f';

    private bool Peek(string symbol) => string.CompareOrdinal(_source, _pos, symbol, 0, symbol.Length) == 0;

    /// <summary>Skips spaces and consumes <paramref name="token"/> if it comes next.</summary>
    private bool Consume(string token)
    {
        int start = _pos;
        SkipSpaces();
        if (Peek(token))
        {
            _pos += token.Length;
            return true;
        }
        _pos = start;
        return false;
    }

    private static bool IsWordChar(char c) => char.IsAsciiLetterOrDigit(c) || c == '_';

    private bool WordEndsAt(int pos) => pos >= _source.Length || !IsWordChar(_source[pos]);

    /// <summary>Skips spaces and consumes the keyword <paramref name="word"/> if it comes next as a whole word.</summary>
    private bool ConsumeKeyword(string word)
    {
        int start = _pos;
        SkipSpaces();
        if (Peek(word) && WordEndsAt(_pos + word.Length))
        {
            _pos += word.Length;
            return true;
        }
        _pos = start;
        return false;
    }

    /// <summary>Skips spaces and consumes the first of <paramref name="words"/> that comes next as a whole word.</summary>
    private string? ConsumeKeyword(ReadOnlySpan<string> words)
    {
        foreach (string w in words)
        {
            if (ConsumeKeyword(w))
                return w;
        }
        return null;
    }

    /// <summary>Skips spaces and consumes the first of <paramref name="symbols"/> that comes next, unless <paramref name="rejectAt"/> (given the position after it) refuses it: minja's lookaheads.</summary>
    private string? ConsumeSymbol(ReadOnlySpan<string> symbols, Func<int, bool>? rejectAt = null)
    {
        int start = _pos;
        SkipSpaces();
        foreach (string symbol in symbols)
        {
            if (Peek(symbol) && (rejectAt is null || !rejectAt(_pos + symbol.Length)))
            {
                _pos += symbol.Length;
                return symbol;
            }
        }
        _pos = start;
        return null;
    }

    private bool CharAt(int pos, char c) => pos < _source.Length && _source[pos] == c;

    // `-` or `+` that is not the `-` of a closing `-}}`, `-%}` or `-#}`.
    private string? ConsumePlusMinus() => ConsumeSymbol(["+", "-"],
        at => _source[at - 1] == '-' && at + 1 < _source.Length && _source[at] is '}' or '%' or '#' && _source[at + 1] == '}');

    private static readonly System.Collections.Immutable.ImmutableArray<string> MulDivSymbols = ["**", "*", "//", "/", "%"];

    // `*`, `**`, `/`, `//`, or `%` not followed by `}`.
    private string? ConsumeMulDiv() => ConsumeSymbol(MulDivSymbols.AsSpan(), at => _source[at - 1] == '%' && CharAt(at, '}'));

    private static readonly System.Collections.Immutable.ImmutableArray<string> CompareSymbols = ["==", "!=", "<=", "<", ">=", ">"];

    private string? ConsumeCompare()
    {
        if (ConsumeSymbol(CompareSymbols.AsSpan()) is { } symbol)
            return symbol;
        if (ConsumeKeyword("in"))
            return "in";
        if (ConsumeKeyword("is"))
            return "is";
        int start = _pos;
        if (ConsumeKeyword("not") && ConsumeKeyword("in"))
            return "not in";
        _pos = start;
        return null;
    }

    private static readonly System.Collections.Immutable.ImmutableArray<string> Reserved = ["not", "is", "and", "or", "del"];

    private string? ConsumeIdentifierName()
    {
        int start = _pos;
        SkipSpaces();
        if (AtEnd || !(char.IsAsciiLetter(_source[_pos]) || _source[_pos] == '_'))
        {
            _pos = start;
            return null;
        }
        int end = _pos + 1;
        while (end < _source.Length && IsWordChar(_source[end]))
            end++;
        string name = _source[_pos..end];
        if (Reserved.Contains(name))
        {
            _pos = start;
            return null;
        }
        _pos = end;
        return name;
    }

    // A run of word characters at the position (no spaces skipped).
    private string? WordHere()
    {
        int end = _pos;
        while (end < _source.Length && IsWordChar(_source[end]))
            end++;
        if (end == _pos)
            return null;
        string word = _source[_pos..end];
        _pos = end;
        return word;
    }

    // ---- expressions (minja's grammar, loosest first)

    private Expr ParseExpression(bool allowIf = true)
    {
        Descend();
        var e = ParseConditional(allowIf);
        Ascend();
        return e;
    }

    private Expr ParseConditional(bool allowIf)
    {
        var left = ParseLogicalOr();
        if (AtEnd || !allowIf)
            return left;
        var location = Here;
        if (!ConsumeKeyword("if"))
            return left;
        var condition = ParseLogicalOr();
        Expr? otherwise = ConsumeKeyword("else") ? ParseExpression() : null;
        return new ConditionalExpr(location, condition, left, otherwise);
    }

    private Expr ParseLogicalOr()
    {
        var left = ParseLogicalAnd();
        var location = Here;
        while (ConsumeKeyword("or"))
            left = new BinaryExpr(location, BinaryOp.Or, left, ParseLogicalAnd());
        return left;
    }

    private Expr ParseLogicalAnd()
    {
        var left = ParseLogicalNot();
        var location = Here;
        while (ConsumeKeyword("and"))
            left = new BinaryExpr(location, BinaryOp.And, left, ParseLogicalNot());
        return left;
    }

    private Expr ParseLogicalNot()
    {
        var location = Here;
        if (!ConsumeKeyword("not"))
            return ParseLogicalCompare();
        Descend();
        var operand = ParseLogicalNot();
        Ascend();
        return new UnaryExpr(location, UnaryOp.Not, operand);
    }

    private Expr ParseLogicalCompare()
    {
        var left = ParseStringConcat();
        string? op;
        while ((op = ConsumeCompare()) is not null)
        {
            var location = Here;
            if (op == "is")
            {
                bool negated = ConsumeKeyword("not");
                var test = ParseIdentifier() ?? throw Error("Expected identifier after 'is' keyword");
                return new BinaryExpr(left.Location, negated ? BinaryOp.IsNot : BinaryOp.Is, left, test);
            }
            var right = ParseStringConcat();
            var kind = op switch
            {
                "==" => BinaryOp.Eq,
                "!=" => BinaryOp.Ne,
                "<" => BinaryOp.Lt,
                ">" => BinaryOp.Gt,
                "<=" => BinaryOp.Le,
                ">=" => BinaryOp.Ge,
                "in" => BinaryOp.In,
                _ => BinaryOp.NotIn,
            };
            left = new BinaryExpr(location, kind, left, right);
        }
        return left;
    }

    private Expr ParseStringConcat()
    {
        var left = ParseMathPow();
        if (ConsumeSymbol(["~"], at => CharAt(at, '}')) is null)
            return left;
        var location = Here;
        Descend();
        var right = ParseLogicalAnd();
        Ascend();
        return new BinaryExpr(location, BinaryOp.StrConcat, left, right);
    }

    private Expr ParseMathPow()
    {
        var left = ParseMathPlusMinus();
        while (Consume("**"))
            left = new BinaryExpr(Here, BinaryOp.Pow, left, ParseMathPlusMinus());
        return left;
    }

    private Expr ParseMathPlusMinus()
    {
        var left = ParseMathMulDiv();
        string? op;
        while ((op = ConsumePlusMinus()) is not null)
            left = new BinaryExpr(Here, op == "+" ? BinaryOp.Add : BinaryOp.Sub, left, ParseMathMulDiv());
        return left;
    }

    // `a * b | f | g(x)`: minja's grammar is right-recursive here; read as a loop, so a long filter chain is one flat
    // FilterExpr (located after its last `|`, or at a parenthesized chain it ends with, whose parts it takes over).
    private Expr ParseMathMulDiv()
    {
        var first = ParseMulDivOperands();
        if (!Consume("|"))
            return first;
        var parts = ImmutableArray.CreateBuilder<Expr>();
        parts.Add(first);
        SourceLocation location;
        Expr part;
        do
        {
            location = Here;
            part = ParseMulDivOperands();
            parts.Add(part);
        }
        while (Consume("|"));
        if (part is FilterExpr chain)
        {
            parts.RemoveAt(parts.Count - 1);
            parts.AddRange(chain.Parts);
            location = chain.Location;
        }
        return new FilterExpr(location, parts.ToImmutable());
    }

    private Expr ParseMulDivOperands()
    {
        var left = ParseMathUnaryPlusMinus();
        string? op;
        while ((op = ConsumeMulDiv()) is not null)
        {
            var kind = op switch { "*" => BinaryOp.Mul, "**" => BinaryOp.Pow, "/" => BinaryOp.Div, "//" => BinaryOp.FloorDiv, _ => BinaryOp.Mod };
            left = new BinaryExpr(Here, kind, left, ParseMathUnaryPlusMinus());
        }
        return left;
    }

    private Expr ParseMathUnaryPlusMinus()
    {
        var location = Here;
        string? op = ConsumePlusMinus();
        var e = ParseExpansion();
        return op is null ? e : new UnaryExpr(location, op == "+" ? UnaryOp.Plus : UnaryOp.Minus, e);
    }

    private Expr ParseExpansion()
    {
        var location = Here;
        string? op = ConsumeSymbol(["**", "*"]);
        var e = ParseValueExpression();
        return op is null ? e : new UnaryExpr(location, op == "*" ? UnaryOp.Expansion : UnaryOp.ExpansionDict, e);
    }

    private Expr ParseValueExpression()
    {
        var value = ParseValue();
        while (!AtEnd)
        {
            SkipSpaces();
            if (!Peek("[") && !Peek("."))
                break;
            if (Consume("["))
            {
                var location = Here;
                Expr? start = null, end = null, step = null;
                bool sliced = false;
                if (!PeekAfterSpaces(":"))
                    start = ParseExpression();
                if (Consume(":"))
                {
                    sliced = true;
                    if (!PeekAfterSpaces(":") && !PeekAfterSpaces("]"))
                        end = ParseExpression();
                    if (Consume(":") && !PeekAfterSpaces("]"))
                        step = ParseExpression();
                }
                Expr index = sliced ? new SliceExpr(location, start, end, step) : start ?? throw Error("Empty index in subscript");
                if (!Consume("]"))
                    throw Error("Expected closing bracket in subscript");
                value = new SubscriptExpr(value.Location, value, index);
            }
            else if (Consume("."))
            {
                var identifier = ParseIdentifier() ?? throw Error("Expected identifier in subscript");
                SkipSpaces();
                if (Peek("("))
                    value = new MethodCallExpr(identifier.Location, value, identifier.Name, ParseCallArgs());
                else
                    value = new SubscriptExpr(identifier.Location, value, new LiteralExpr(identifier.Location, identifier.Name));
            }
        }
        SkipSpaces();
        if (Peek("("))
        {
            var location = Here;
            value = new CallExpr(location, value, ParseCallArgs());
        }
        return value;
    }

    private bool PeekAfterSpaces(string symbol)
    {
        SkipSpaces();
        return Peek(symbol);
    }

    private Expr ParseValue()
    {
        var location = Here;
        if (TryParseConstant(out object? constant))
            return new LiteralExpr(location, constant);
        if (ConsumeKeyword("null"))
            return new LiteralExpr(location, null);
        if (ParseIdentifier() is { } identifier)
            return identifier;
        if (ParseParenthesized() is { } braced)
            return braced;
        if (ParseList() is { } list)
            return list;
        if (ParseDict() is { } dict)
            return dict;
        throw Error("Expected value expression");
    }

    private VariableExpr? ParseIdentifier()
    {
        SkipSpaces();
        var location = Here;
        string? name = ConsumeIdentifierName();
        return name is null ? null : new VariableExpr(location, name);
    }

    private bool TryParseConstant(out object? value)
    {
        int start = _pos;
        SkipSpaces();
        value = null;
        if (AtEnd)
        {
            _pos = start;
            return false;
        }
        if (_source[_pos] is '"' or '\'')
        {
            value = ParseString();
            return true;
        }
        if (ConsumeKeyword(["true", "True", "false", "False", "None"]) is { } word)
        {
            value = word switch { "true" or "True" => true, "false" or "False" => false, _ => null };
            return true;
        }
        if (TryParseNumber(out value))
            return true;
        _pos = start;
        return false;
    }

    private string ParseString()
    {
        char quote = _source[_pos];
        var sb = new System.Text.StringBuilder();
        bool escape = false;
        for (_pos++; _pos < _source.Length; _pos++)
        {
            char c = _source[_pos];
            if (escape)
            {
                escape = false;
                sb.Append(c switch { 'n' => '\n', 'r' => '\r', 't' => '\t', 'b' => '\b', 'f' => '\f', '\\' => '\\', _ => c });
            }
            else if (c == '\\')
                escape = true;
            else if (c == quote)
            {
                _pos++;
                return sb.ToString();
            }
            else
                sb.Append(c);
        }
        throw Error("Unterminated string");
    }

    private bool TryParseNumber(out object? value)
    {
        value = null;
        int start = _pos;
        if (_pos < _source.Length && _source[_pos] is '-' or '+')
            _pos++;
        bool decimalPoint = false, exponent = false;
        int digitsStart = _pos;
        while (_pos < _source.Length)
        {
            char c = _source[_pos];
            if (char.IsAsciiDigit(c))
                _pos++;
            else if (c == '.' && !decimalPoint && !exponent)
            {
                decimalPoint = true;
                _pos++;
            }
            else if ((c == 'e' || c == 'E') && _pos > digitsStart && !exponent)
            {
                exponent = true;
                _pos++;
                if (_pos < _source.Length && _source[_pos] is '-' or '+')
                    _pos++;
            }
            else
                break;
        }
        string text = _source[start.._pos];
        if (_pos == digitsStart || !text.Any(char.IsAsciiDigit))
        {
            _pos = start;
            return false;
        }
        if (!decimalPoint && !exponent && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l))
            value = l;
        else if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double d))
            value = d;
        else
            throw Error($"Failed to parse number: '{text}'");
        return true;
    }

    private Expr? ParseParenthesized()
    {
        var location = Here;
        if (!Consume("("))
            return null;
        var first = ParseExpression();
        if (Consume(")"))
            return first;
        var tuple = new List<Expr> { first };
        while (!AtEnd)
        {
            if (!Consume(","))
                throw Error("Expected comma in tuple");
            tuple.Add(ParseExpression());
            if (Consume(")"))
                return new ListExpr(location, [.. tuple]);
        }
        throw Error("Expected closing parenthesis");
    }

    private Expr? ParseList()
    {
        var location = Here;
        if (!Consume("["))
            return null;
        var items = new List<Expr>();
        if (Consume("]"))
            return new ListExpr(location, []);
        items.Add(ParseExpression());
        while (!AtEnd)
        {
            if (Consume(","))
                items.Add(ParseExpression());
            else if (Consume("]"))
                return new ListExpr(location, [.. items]);
            else
                throw Error("Expected comma or closing bracket in array");
        }
        throw Error("Expected closing bracket");
    }

    private Expr? ParseDict()
    {
        var location = Here;
        if (!Consume("{"))
            return null;
        var items = new List<(Expr, Expr)>();
        if (Consume("}"))
            return new DictExpr(location, []);
        void Pair()
        {
            var key = ParseExpression();
            if (!Consume(":"))
                throw Error("Expected colon between key and value in dictionary");
            items.Add((key, ParseExpression()));
        }
        Pair();
        while (!AtEnd)
        {
            if (Consume(","))
                Pair();
            else if (Consume("}"))
                return new DictExpr(location, [.. items]);
            else
                throw Error("Expected comma or closing brace in dictionary");
        }
        throw Error("Expected closing brace");
    }

    private ArgumentExprs ParseCallArgs()
    {
        SkipSpaces();
        if (!Consume("("))
            throw Error("Expected opening parenthesis in call args");
        var positional = new List<Expr>();
        var named = new List<(string, Expr)>();
        ArgumentExprs Done() => new([.. positional], [.. named]);
        while (!AtEnd)
        {
            if (Consume(")"))
                return Done();
            var e = ParseExpression();
            if (e is VariableExpr v && Consume("="))
                named.Add((v.Name, ParseExpression()));
            else
                positional.Add(e);
            if (!Consume(","))
            {
                if (!Consume(")"))
                    throw Error("Expected closing parenthesis in call args");
                return Done();
            }
        }
        throw Error("Expected closing parenthesis in call args");
    }

    private ImmutableArray<(string Name, Expr? Default)> ParseParameters()
    {
        SkipSpaces();
        if (!Consume("("))
            throw Error("Expected opening parenthesis in param list");
        var result = ImmutableArray.CreateBuilder<(string, Expr?)>();
        while (!AtEnd)
        {
            if (Consume(")"))
                return result.ToImmutable();
            var e = ParseExpression();
            if (e is not VariableExpr v)
                throw Error("Expected a parameter name");
            result.Add((v.Name, Consume("=") ? ParseExpression() : null));
            if (!Consume(","))
            {
                if (!Consume(")"))
                    throw Error("Expected closing parenthesis in param list");
                return result.ToImmutable();
            }
        }
        throw Error("Expected closing parenthesis in param list");
    }

    // name (, name)* as minja's varnames regex reads them.
    private ImmutableArray<string> ParseVarNames()
    {
        SkipSpaces();
        var names = new List<string>();
        string name = WordHere() ?? throw Error("Expected variable names");
        names.Add(name);
        while (true)
        {
            int start = _pos;
            SkipSpaces();
            if (!Peek(","))
            {
                _pos = start;
                break;
            }
            _pos++;
            SkipSpaces();
            if (WordHere() is not { } next)
            {
                _pos = start;
                break;
            }
            names.Add(next);
        }
        SkipSpaces();
        return [.. names];
    }

    // ns.name, for {% set ns.name = ... %}.
    private (string Namespace, string Name)? ConsumeNamespacedVar()
    {
        int start = _pos;
        SkipSpaces();
        if (WordHere() is { } ns)
        {
            SkipSpaces();
            if (Peek("."))
            {
                _pos++;
                SkipSpaces();
                if (WordHere() is { } name)
                    return (ns, name);
            }
        }
        _pos = start;
        return null;
    }

    // ---- tokens

    private enum Kind { Text, Expression, If, Elif, Else, EndIf, For, EndFor, Generation, EndGeneration, Set, EndSet, Macro, EndMacro, Call, EndCall, Filter, EndFilter, Break, Continue, Comment }

    private sealed class Token(Kind kind, int offset, bool stripBefore, bool stripAfter)
    {
        public Kind Kind { get; } = kind;
        public int Offset { get; } = offset;
        public bool StripBefore { get; } = stripBefore;   // `{%-`, `{{-`, `{#-`
        public bool StripAfter { get; } = stripAfter;     // `-%}`, `-}}`, `-#}`
        public string Text = "";
        public Expr? Expression;
        public ImmutableArray<string> Names = [];
        public string? Namespace;
        public bool Recursive;
        public ImmutableArray<(string Name, Expr? Default)> Parameters = [];
    }

    private static readonly System.Collections.Immutable.ImmutableArray<string> BlockKeywords =
    [
        "if", "else", "elif", "endif", "for", "endfor", "generation", "endgeneration", "set", "endset", "block", "endblock",
        "macro", "endmacro", "call", "endcall", "filter", "endfilter", "break", "continue",
    ];

    private List<Token> Tokenize()
    {
        var tokens = new List<Token>();
        while (!AtEnd)
        {
            int offset = _pos;
            if (Peek("{#"))
                tokens.Add(ParseComment(offset));
            else if (Peek("{{"))
            {
                _pos += 2;
                bool strip = ConsumeModifier();
                var e = ParseExpression();
                bool stripAfter = ConsumeClose("}}") ?? throw Error("Expected closing expression tag");
                tokens.Add(new Token(Kind.Expression, offset, strip, stripAfter) { Expression = e });
            }
            else if (Peek("{%"))
            {
                _pos += 2;
                bool strip = ConsumeModifier();
                SkipSpaces();
                tokens.Add(ParseBlock(offset, strip));
            }
            else
            {
                int end = NextTag(_pos);
                tokens.Add(new Token(Kind.Text, offset, false, false) { Text = _source[_pos..end] });
                _pos = end;
            }
        }
        return tokens;
    }

    // Where the next {{, {% or {# starts (the end of the source when none does).
    private int NextTag(int from)
    {
        int at = from;
        while ((at = _source.IndexOf('{', at)) >= 0 && at + 1 < _source.Length)
        {
            if (_source[at + 1] is '{' or '%' or '#')
                return at;
            at++;
        }
        return _source.Length;
    }

    // `-` (strip) or `~` right after an opening delimiter.
    private bool ConsumeModifier()
    {
        if (!AtEnd && _source[_pos] is '-' or '~')
            return _source[_pos++] == '-';
        return false;
    }

    // Spaces, an optional `-`/`~`, then the closing delimiter; null when it is not there. True when it strips after.
    private bool? ConsumeClose(string close)
    {
        int start = _pos;
        SkipSpaces();
        bool strip = false;
        if (!AtEnd && _source[_pos] is '-' or '~')
            strip = _source[_pos++] == '-';
        if (Peek(close))
        {
            _pos += close.Length;
            return strip;
        }
        _pos = start;
        return null;
    }

    private Token ParseComment(int offset)
    {
        _pos += 2;
        bool stripBefore = ConsumeModifier();
        int end = _source.IndexOf("#}", _pos, StringComparison.Ordinal);
        if (end < 0)
            throw Error("Missing end of comment tag", offset);
        bool stripAfter = end > _pos && _source[end - 1] == '-';
        _pos = end + 2;
        return new Token(Kind.Comment, offset, stripBefore, stripAfter);
    }

    private Token ParseBlock(int offset, bool stripBefore)
    {
        int keywordAt = _pos;
        string? keyword = WordHere();
        if (keyword is null || !BlockKeywords.Contains(keyword))
            throw Error("Expected block keyword", keywordAt);
        Token Close(Kind kind, Action<Token>? fill = null)
        {
            var token = new Token(kind, offset, stripBefore, false);
            fill?.Invoke(token);
            bool stripAfter = ConsumeClose("%}") ?? throw Error("Expected closing block tag");
            return new Token(kind, offset, stripBefore, stripAfter)
            {
                Expression = token.Expression, Names = token.Names, Namespace = token.Namespace, Recursive = token.Recursive,
                Parameters = token.Parameters, Text = token.Text,
            };
        }
        switch (keyword)
        {
            case "if":
                return Close(Kind.If, t => t.Expression = ParseExpression());
            case "elif":
                return Close(Kind.Elif, t => t.Expression = ParseExpression());
            case "else":
                return Close(Kind.Else);
            case "endif":
                return Close(Kind.EndIf);
            case "for":
                return Close(Kind.For, t =>
                {
                    t.Names = ParseVarNames();
                    if (!ConsumeKeyword("in"))
                        throw Error("Expected 'in' keyword in for block");
                    t.Expression = ParseExpression(allowIf: false);
                    if (ConsumeKeyword("if"))
                        t.Parameters = [("if", ParseExpression())];
                    t.Recursive = ConsumeKeyword("recursive");
                });
            case "endfor":
                return Close(Kind.EndFor);
            case "generation":
                return Close(Kind.Generation);
            case "endgeneration":
                return Close(Kind.EndGeneration);
            case "set":
                return Close(Kind.Set, t =>
                {
                    if (ConsumeNamespacedVar() is { } ns)
                    {
                        t.Namespace = ns.Namespace;
                        t.Names = [ns.Name];
                        if (!Consume("="))
                            throw Error("Expected equals sign in set block");
                        t.Expression = ParseExpression();
                    }
                    else
                    {
                        t.Names = ParseVarNames();
                        if (Consume("="))
                            t.Expression = ParseExpression();
                    }
                });
            case "endset":
                return Close(Kind.EndSet);
            case "macro":
                return Close(Kind.Macro, t =>
                {
                    t.Text = (ParseIdentifier() ?? throw Error("Expected macro name in macro block")).Name;
                    t.Parameters = ParseParameters();
                });
            case "endmacro":
                return Close(Kind.EndMacro);
            case "call":
                return Close(Kind.Call, t =>
                {
                    t.Expression = ParseExpression();
                    if (t.Expression is not CallExpr)
                        throw Error("Expected a macro call in call block");
                });
            case "endcall":
                return Close(Kind.EndCall);
            case "filter":
                return Close(Kind.Filter, t => t.Expression = ParseExpression());
            case "endfilter":
                return Close(Kind.EndFilter);
            case "break":
                return Close(Kind.Break);
            case "continue":
                return Close(Kind.Continue);
            default:
                throw Error($"Unexpected block: {keyword}");
        }
    }

    // ---- tree

    private static ReadOnlySpan<Kind> Terminators => [Kind.EndFor, Kind.EndSet, Kind.EndMacro, Kind.EndCall, Kind.EndFilter, Kind.EndIf, Kind.Else, Kind.Elif, Kind.EndGeneration];

    private Node BuildTree(List<Token> tokens, ref int at)
    {
        var children = new List<Node>();
        while (at < tokens.Count)
        {
            int index = at;
            var token = tokens[at++];
            var location = Locate(token.Offset);
            switch (token.Kind)
            {
                case Kind.If:
                {
                    var branches = ImmutableArray.CreateBuilder<(Expr?, Node)>();
                    branches.Add((token.Expression, Body(tokens, ref at, token)));
                    while (at < tokens.Count && tokens[at].Kind == Kind.Elif)
                    {
                        var elif = tokens[at++];
                        branches.Add((elif.Expression, Body(tokens, ref at, token)));
                    }
                    if (at < tokens.Count && tokens[at].Kind == Kind.Else)
                    {
                        at++;
                        branches.Add((null, Body(tokens, ref at, token)));
                    }
                    Expect(tokens, ref at, Kind.EndIf, token);
                    children.Add(new IfNode(location, branches.ToImmutable()));
                    break;
                }
                case Kind.For:
                {
                    var body = Body(tokens, ref at, token);
                    Node? otherwise = null;
                    if (at < tokens.Count && tokens[at].Kind == Kind.Else)
                    {
                        at++;
                        otherwise = Body(tokens, ref at, token);
                    }
                    Expect(tokens, ref at, Kind.EndFor, token);
                    var condition = token.Parameters.Length > 0 ? token.Parameters[0].Default : null;
                    children.Add(new ForNode(location, token.Names, token.Expression!, condition, body, otherwise, token.Recursive));
                    break;
                }
                case Kind.Generation:
                {
                    // Marks assistant text for training masks; renders its body as is.
                    var body = Body(tokens, ref at, token);
                    Expect(tokens, ref at, Kind.EndGeneration, token);
                    children.Add(body);
                    break;
                }
                case Kind.Text:
                    children.Add(new TextNode(location, ShapeText(tokens, index)));
                    break;
                case Kind.Expression:
                    children.Add(new OutputNode(location, token.Expression!));
                    break;
                case Kind.Set:
                    if (token.Expression is not null)
                        children.Add(new SetNode(location, token.Namespace, token.Names, token.Expression));
                    else
                    {
                        var body = Body(tokens, ref at, token);
                        Expect(tokens, ref at, Kind.EndSet, token);
                        if (token.Namespace is not null || token.Names.Length != 1)
                            throw Error("A set block assigns exactly one plain variable", token.Offset);
                        children.Add(new SetBlockNode(location, token.Names[0], body));
                    }
                    break;
                case Kind.Macro:
                {
                    var body = Body(tokens, ref at, token);
                    Expect(tokens, ref at, Kind.EndMacro, token);
                    children.Add(new MacroNode(location, token.Text, token.Parameters, body));
                    break;
                }
                case Kind.Call:
                {
                    var body = Body(tokens, ref at, token);
                    Expect(tokens, ref at, Kind.EndCall, token);
                    children.Add(new CallBlockNode(location, (CallExpr)token.Expression!, body));
                    break;
                }
                case Kind.Filter:
                {
                    var body = Body(tokens, ref at, token);
                    Expect(tokens, ref at, Kind.EndFilter, token);
                    children.Add(new FilterBlockNode(location, token.Expression!, body));
                    break;
                }
                case Kind.Comment:
                    break;
                case Kind.Break:
                case Kind.Continue:
                    children.Add(new LoopControlNode(location, token.Kind == Kind.Break ? LoopControl.Break : LoopControl.Continue));
                    break;
                default:
                    if (Terminators.Contains(token.Kind))
                    {
                        at--;
                        return Sequence(children);
                    }
                    throw Error($"Unexpected {token.Kind}", token.Offset);
            }
        }
        return Sequence(children);
    }

    // The body of a block statement, one level deeper.
    private Node Body(List<Token> tokens, ref int at, Token opening)
    {
        if (++_blockDepth > JinjaTemplate.MaxBlockDepth)
            throw Error(Nesting.TooDeep("Blocks", JinjaTemplate.MaxBlockDepth), opening.Offset);
        if (!RuntimeHelpers.TryEnsureSufficientExecutionStack())
            throw Error(Nesting.StackExhausted, opening.Offset);
        var body = BuildTree(tokens, ref at);
        _blockDepth--;
        return body;
    }

    private static Node Sequence(List<Node> children) =>
        children.Count switch { 0 => new TextNode(new SourceLocation(1, 1), ""), 1 => children[0], _ => new SequenceNode(children[0].Location, [.. children]) };

    private void Expect(List<Token> tokens, ref int at, Kind kind, Token opening)
    {
        if (at >= tokens.Count || tokens[at].Kind != kind)
            throw Error($"Unterminated {opening.Kind.ToString().ToLowerInvariant()}", opening.Offset);
        at++;
    }

    // Whitespace control around a text token, as minja applies it: `-` strips all whitespace on that side; otherwise
    // lstrip_blocks removes the spaces and tabs before the next tag on its line, and trim_blocks the newline after a
    // block tag or comment (not after an expression); the template's final newline goes unless kept.
    private string ShapeText(List<Token> tokens, int index)
    {
        string text = tokens[index].Text;
        bool hasNext = index + 1 < tokens.Count;
        if (hasNext && tokens[index + 1].StripBefore)
            text = text.TrimEnd(' ', '\t', '\n', '\r', '\v', '\f');
        else if (_options.LStripBlocks && hasNext)
        {
            int i = text.Length;
            while (i > 0 && text[i - 1] is ' ' or '\t')
                i--;
            if ((i == 0 && index == 0) || (i > 0 && text[i - 1] == '\n'))
                text = text[..i];
        }
        if (index > 0 && tokens[index - 1].StripAfter)
            text = text.TrimStart(' ', '\t', '\n', '\r', '\v', '\f');
        else if (_options.TrimBlocks && index > 0 && tokens[index - 1].Kind != Kind.Expression && text.StartsWith('\n'))
            text = text[1..];
        if (!hasNext && !_options.KeepTrailingNewline && text.EndsWith('\n'))
            text = text.EndsWith("\r\n", StringComparison.Ordinal) ? text[..^2] : text[..^1];
        return text;
    }
}

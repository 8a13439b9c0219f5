using System.Runtime.CompilerServices;
using System.Text;

namespace ManagedLM.Tokenization;

/// <summary>
/// A backtracking regular expression over integer units, with ECMAScript semantics as C++ std::regex
/// implements them (ordered alternation, greedy quantifiers, lookahead, <c>$</c> at the end of the
/// searched range, <c>\s</c> = [\t\n\v\f\r ]). Units are code points or llama.cpp's collapsed category
/// bytes; <c>\p{..}</c> is resolved by the caller. Supported: literals, escapes, classes with ranges and
/// negation, escapes <c>\xHH \uHHHH \u{H..}</c>, <c>. ^ $ \b \B</c>, groups <c>( ) (?: ) (?= ) (?! )</c>, quantifiers <c>? * + {n} {n,} {n,m}</c>
/// and their lazy forms.
/// </summary>
internal sealed class UnitRegex
{
    private static readonly UnitSet Space = UnitSet.Of([(9, 13), (32, 32)]);
    private static readonly UnitSet Digit = UnitSet.Of([('0', '9')]);
    private static readonly UnitSet Word = UnitSet.Of([('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')]);
    private static readonly UnitSet AnyButNewline = UnitSet.Of([(10, 10), (13, 13), (0x2028, 0x2029)]).Complement();

    private readonly Node _start;

    /// <param name="pattern">The expression.</param>
    /// <param name="property">Resolves the name inside <c>\p{name}</c> to a set; throws for names it does not know.</param>
    public UnitRegex(string pattern, Func<string, UnitSet> property)
    {
        var parser = new Parser(pattern, property);
        var ast = parser.ParseAll();
        _start = Build(ast, AcceptNode.Instance);
    }

    /// <summary>
    /// Splits every chunk of <paramref name="units"/> (lengths in <paramref name="chunks"/>, in order) into
    /// its matches and the unmatched gaps between them, appending the piece lengths to <paramref name="pieces"/>.
    /// </summary>
    public void Split(int[] units, List<int> chunks, List<int> pieces)
    {
        var m = new Matcher(units);
        int chunkStart = 0;
        foreach (int length in chunks)
        {
            int chunkEnd = chunkStart + length;
            m.Start = chunkStart;
            m.End = chunkEnd;
            int done = chunkStart;
            int pos = chunkStart;
            while (pos < chunkEnd)
            {
                int at = pos;
                while (at < chunkEnd && !_start.Match(m, at))
                    at++;
                if (at == chunkEnd)
                    break;
                int end = m.MatchEnd;
                if (at > done)
                    pieces.Add(at - done);
                if (end > at)
                {
                    pieces.Add(end - at);
                    done = end;
                    pos = end;
                }
                else
                {
                    done = at;
                    pos = at + 1;
                }
            }
            if (done < chunkEnd)
                pieces.Add(chunkEnd - done);
            chunkStart = chunkEnd;
        }
    }

    /// <summary>The end of the match that starts exactly at <paramref name="start"/>, or -1.</summary>
    public int MatchAt(int[] units, int start, int end)
    {
        var m = new Matcher(units) { Start = start, End = end };
        return _start.Match(m, start) ? m.MatchEnd : -1;
    }

    private sealed class Matcher(int[] text)
    {
        public readonly int[] Text = text;
        public int Start;
        public int End;
        public int MatchEnd;
        private int[] _frames = new int[16];
        private int _top;

        public void Push(int count, int start)
        {
            if (_top + 2 > _frames.Length)
                Array.Resize(ref _frames, _frames.Length * 2);
            _frames[_top++] = count;
            _frames[_top++] = start;
        }

        public (int Count, int Start) Pop()
        {
            _top -= 2;
            return (_frames[_top], _frames[_top + 1]);
        }

        public bool IsWord(int pos) => pos >= Start && pos < End && Word.Contains(Text[pos]);
    }

    // ---- matching graph: each node matches itself, then its continuation ----

    private abstract class Node
    {
        public abstract bool Match(Matcher m, int pos);
    }

    private sealed class AcceptNode : Node
    {
        public static readonly AcceptNode Instance = new();
        public override bool Match(Matcher m, int pos)
        {
            m.MatchEnd = pos;
            return true;
        }
    }

    private sealed class LookAcceptNode : Node
    {
        public static readonly LookAcceptNode Instance = new();
        public override bool Match(Matcher m, int pos) => true;
    }

    // Nodes keep their parameters in readonly fields: a compiled expression is shared by every thread.

    private sealed class SetNode(UnitSet set, Node next) : Node
    {
        private readonly UnitSet _set = set;
        private readonly Node _next = next;

        public override bool Match(Matcher m, int pos) =>
            pos < m.End && _set.Contains(m.Text[pos]) && _next.Match(m, pos + 1);
    }

    /// <summary>A quantified single-unit class: counts the run once, then tries the continuation from each length.</summary>
    private sealed class RepeatSetNode(UnitSet set, int min, int max, bool lazy, Node next) : Node
    {
        private readonly UnitSet _set = set;
        private readonly int _min = min;
        private readonly int _max = max;
        private readonly bool _lazy = lazy;
        private readonly Node _next = next;

        public override bool Match(Matcher m, int pos)
        {
            int limit = (int)Math.Min((long)pos + _max, m.End);
            int run = pos;
            if (_lazy)
            {
                while (run - pos < _min)
                {
                    if (run >= limit || !_set.Contains(m.Text[run]))
                        return false;
                    run++;
                }
                while (true)
                {
                    if (_next.Match(m, run))
                        return true;
                    if (run >= limit || !_set.Contains(m.Text[run]))
                        return false;
                    run++;
                }
            }
            while (run < limit && _set.Contains(m.Text[run]))
                run++;
            for (; run - pos >= _min; run--)
            {
                if (_next.Match(m, run))
                    return true;
            }
            return false;
        }
    }

    private sealed class AltNode(Node[] branches) : Node
    {
        private readonly Node[] _branches = branches;

        public override bool Match(Matcher m, int pos)
        {
            foreach (var branch in _branches)
            {
                if (branch.Match(m, pos))
                    return true;
            }
            return false;
        }
    }

    /// <summary>A quantified group; iteration counts live on the matcher's frame stack.</summary>
    private sealed class GroupRepeatNode : Node
    {
        private readonly int _min;
        private readonly int _max;
        private readonly bool _lazy;
        private readonly Node _next;
        private readonly Node _body;

        // buildBody builds the body, which ends in a LoopTailNode back to this node.
        public GroupRepeatNode(int min, int max, bool lazy, Node next, Func<GroupRepeatNode, Node> buildBody)
        {
            _min = min;
            _max = max;
            _lazy = lazy;
            _next = next;
            _body = buildBody(this);
        }

        public int Min => _min;

        public override bool Match(Matcher m, int pos) => Iterate(m, pos, 0);

        public bool Iterate(Matcher m, int pos, int count)
        {
            RuntimeHelpers.EnsureSufficientExecutionStack();
            if (_lazy && count >= _min && _next.Match(m, pos))
                return true;
            if (count < _max)
            {
                m.Push(count, pos);
                bool matched = _body.Match(m, pos);
                m.Pop();
                if (matched)
                    return true;
            }
            return !_lazy && count >= _min && _next.Match(m, pos);
        }
    }

    private sealed class LoopTailNode(GroupRepeatNode owner) : Node
    {
        private readonly GroupRepeatNode _owner = owner;

        public override bool Match(Matcher m, int pos)
        {
            var (count, start) = m.Pop();
            // An empty iteration once the minimum is met fails (ECMAScript), which also ends empty loops.
            bool matched = !(pos == start && count + 1 > _owner.Min) && _owner.Iterate(m, pos, count + 1);
            m.Push(count, start);
            return matched;
        }
    }

    private sealed class LookaheadNode(Node body, bool negate, Node next) : Node
    {
        private readonly Node _body = body;
        private readonly bool _negate = negate;
        private readonly Node _next = next;

        public override bool Match(Matcher m, int pos) => _body.Match(m, pos) != _negate && _next.Match(m, pos);
    }

    private enum AnchorKind { Start, End, WordBoundary, NotWordBoundary }

    private sealed class AnchorNode(AnchorKind kind, Node next) : Node
    {
        private readonly AnchorKind _kind = kind;
        private readonly Node _next = next;

        public override bool Match(Matcher m, int pos)
        {
            bool holds = _kind switch
            {
                AnchorKind.Start => pos == m.Start,
                AnchorKind.End => pos == m.End,
                AnchorKind.WordBoundary => m.IsWord(pos - 1) != m.IsWord(pos),
                _ => m.IsWord(pos - 1) == m.IsWord(pos),
            };
            return holds && _next.Match(m, pos);
        }
    }

    // ---- syntax tree ----

    private abstract record Ast;
    private sealed record SetAst(UnitSet Set) : Ast;
    private sealed record SeqAst(List<Ast> Items) : Ast;
    private sealed record AltAst(List<Ast> Branches) : Ast;
    private sealed record RepeatAst(Ast Body, int Min, int Max, bool Lazy) : Ast;
    private sealed record LookAst(Ast Body, bool Negate) : Ast;
    private sealed record AnchorAst(AnchorKind Kind) : Ast;

    private static Node Build(Ast ast, Node next)
    {
        switch (ast)
        {
            case SetAst s:
                return new SetNode(s.Set, next);
            case SeqAst seq:
                for (int i = seq.Items.Count - 1; i >= 0; i--)
                    next = Build(seq.Items[i], next);
                return next;
            case AltAst alt:
                return new AltNode(alt.Branches.Select(b => Build(b, next)).ToArray());
            case RepeatAst { Body: SetAst set } r:
                return new RepeatSetNode(set.Set, r.Min, r.Max, r.Lazy, next);
            case RepeatAst r:
                return new GroupRepeatNode(r.Min, r.Max, r.Lazy, next, loop => Build(r.Body, new LoopTailNode(loop)));
            case LookAst look:
                return new LookaheadNode(Build(look.Body, LookAcceptNode.Instance), look.Negate, next);
            case AnchorAst a:
                return new AnchorNode(a.Kind, next);
            default:
                throw new InvalidOperationException($"Unexpected regex node {ast.GetType().Name}.");
        }
    }

    private sealed class Parser
    {
        private readonly string _pattern;
        private readonly int[] _cps;
        private readonly Func<string, UnitSet> _property;
        private int _pos;

        public Parser(string pattern, Func<string, UnitSet> property)
        {
            _pattern = pattern;
            _cps = pattern.EnumerateRunes().Select(r => r.Value).ToArray();
            _property = property;
        }

        public Ast ParseAll()
        {
            var ast = ParseAlternation();
            if (_pos != _cps.Length)
                throw Error("unbalanced ')'");
            return ast;
        }

        private bool AtEnd => _pos >= _cps.Length;
        private int Peek(int ahead = 0) => _pos + ahead < _cps.Length ? _cps[_pos + ahead] : -1;
        private int Next() => AtEnd ? throw Error("unexpected end of pattern") : _cps[_pos++];

        private ArgumentException Error(string what) =>
            new($"Invalid tokenizer regex at position {_pos}: {what}. Pattern: {_pattern}");

        private Ast ParseAlternation()
        {
            var branches = new List<Ast> { ParseSequence() };
            while (Peek() == '|')
            {
                _pos++;
                branches.Add(ParseSequence());
            }
            return branches.Count == 1 ? branches[0] : new AltAst(branches);
        }

        private Ast ParseSequence()
        {
            var items = new List<Ast>();
            while (!AtEnd && Peek() != '|' && Peek() != ')')
            {
                var atom = ParseAtom();
                items.Add(ParseQuantifier(atom));
            }
            return items.Count == 1 ? items[0] : new SeqAst(items);
        }

        private Ast ParseQuantifier(Ast atom)
        {
            int min, max;
            switch (Peek())
            {
                case '*': _pos++; (min, max) = (0, int.MaxValue); break;
                case '+': _pos++; (min, max) = (1, int.MaxValue); break;
                case '?': _pos++; (min, max) = (0, 1); break;
                case '{':
                    _pos++;
                    min = ParseNumber();
                    max = min;
                    if (Peek() == ',')
                    {
                        _pos++;
                        max = Peek() == '}' ? int.MaxValue : ParseNumber();
                    }
                    if (Next() != '}' || max < min)
                        throw Error("malformed {n,m} quantifier");
                    break;
                default:
                    return atom;
            }
            if (atom is AnchorAst or LookAst)
                throw Error("quantifier after an assertion");
            bool lazy = Peek() == '?';
            if (lazy)
                _pos++;
            return new RepeatAst(atom, min, max, lazy);
        }

        private int ParseNumber()
        {
            int start = _pos;
            long value = 0;
            while (Peek() is >= '0' and <= '9')
                value = Math.Min(value * 10 + (Next() - '0'), int.MaxValue);
            if (_pos == start)
                throw Error("expected a number");
            return (int)value;
        }

        private Ast ParseAtom()
        {
            int c = Next();
            switch (c)
            {
                case '(':
                {
                    bool? negate = null;
                    if (Peek() == '?')
                    {
                        _pos++;
                        int kind = Next();
                        negate = kind switch
                        {
                            ':' => null,
                            '=' => false,
                            '!' => true,
                            _ => throw Error($"unsupported group kind '(?{char.ConvertFromUtf32(kind)}'"),
                        };
                    }
                    var body = ParseAlternation();
                    if (Next() != ')')
                        throw Error("missing ')'");
                    return negate is bool n ? new LookAst(body, n) : body;
                }
                case '[':
                    return new SetAst(ParseClass());
                case '.':
                    return new SetAst(AnyButNewline);
                case '^':
                    return new AnchorAst(AnchorKind.Start);
                case '$':
                    return new AnchorAst(AnchorKind.End);
                case '\\':
                    if (Peek() == 'b' || Peek() == 'B')
                        return new AnchorAst(Next() == 'b' ? AnchorKind.WordBoundary : AnchorKind.NotWordBoundary);
                    return new SetAst(ParseEscape(out _));
                case ')' or '*' or '+' or '?':
                    throw Error($"unexpected '{(char)c}'");
                default:
                    return new SetAst(UnitSet.Single(c));
            }
        }

        /// <summary>Parses an escape after '\'; <paramref name="single"/> is its unit when it names one unit, else -1.</summary>
        private UnitSet ParseEscape(out int single)
        {
            single = -1;
            int c = Next();
            switch (c)
            {
                case 'd': return Digit;
                case 'D': return Digit.Complement();
                case 's': return Space;
                case 'S': return Space.Complement();
                case 'w': return Word;
                case 'W': return Word.Complement();
                case 'p':
                {
                    if (Next() != '{')
                        throw Error("expected '{' after \\p");
                    var name = new StringBuilder();
                    for (int ch = Next(); ch != '}'; ch = Next())
                        name.Append(char.ConvertFromUtf32(ch));
                    return _property(name.ToString());
                }
                case 'x': single = ParseHex(2); break;
                case 'u':
                    if (Peek() != '{')
                    {
                        single = ParseHex(4);
                        break;
                    }
                    _pos++;
                    single = 0;
                    for (int digits = 0; Peek() != '}'; digits++)
                        single = digits < 6 ? single * 16 + ParseHex(1) : throw Error("code point too long");
                    _pos++;
                    break;
                case 'r': single = '\r'; break;
                case 'n': single = '\n'; break;
                case 't': single = '\t'; break;
                case 'f': single = '\f'; break;
                case 'v': single = '\v'; break;
                case '0': single = 0; break;
                default: single = c; break;
            }
            return UnitSet.Single(single);
        }

        private int ParseHex(int digits)
        {
            int value = 0;
            for (int i = 0; i < digits; i++)
            {
                int d = Next();
                int v = d switch
                {
                    >= '0' and <= '9' => d - '0',
                    >= 'a' and <= 'f' => d - 'a' + 10,
                    >= 'A' and <= 'F' => d - 'A' + 10,
                    _ => throw Error("expected a hex digit"),
                };
                value = value * 16 + v;
            }
            return value;
        }

        private UnitSet ParseClass()
        {
            bool negate = Peek() == '^';
            if (negate)
                _pos++;
            var ranges = new List<(int Lo, int Hi)>();
            while (Peek() != ']')
            {
                var (set, single) = ParseClassItem();
                if (single >= 0 && Peek() == '-' && Peek(1) != ']' && Peek(1) != -1)
                {
                    _pos++;
                    var (_, hi) = ParseClassItem();
                    if (hi < 0 || hi < single)
                        throw Error("invalid class range");
                    ranges.Add((single, hi));
                }
                else
                {
                    ranges.AddRange(set.Ranges);
                }
            }
            _pos++;
            var result = UnitSet.Of(ranges);
            return negate ? result.Complement() : result;
        }

        private (UnitSet Set, int Single) ParseClassItem()
        {
            int c = Next();
            if (c != '\\')
                return (UnitSet.Single(c), c);
            var set = ParseEscape(out int single);
            return (set, single);
        }
    }
}

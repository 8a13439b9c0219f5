using System.Collections.Immutable;
using System.Text;

namespace ManagedLM.Chat.Tools;

/// <summary>
/// What a parse of a reply (or of the part of it generated so far, when <see cref="Partial"/>) found. Partial scans
/// hold back what may still change — a possible marker prefix, trailing whitespace, a call not known to be one yet —
/// so that each partial scan's parts are prefixes of the next one's.
/// </summary>
internal sealed class ReplyScan(bool partial, ToolCallIds ids, int generatedIdLength)
{
    readonly StringBuilder _content = new();
    StringBuilder? _reasoning;

    public bool Partial { get; } = partial;

    public List<CallSnapshot> Calls { get; } = [];

    public string Content => _content.ToString().Trim();

    public string? Reasoning => _reasoning?.ToString().Trim();

    public void AddContent(string s, int start, int end)
    {
        if (end > start) _content.Append(s, start, end - start);
    }

    public void AddContent(string text) => _content.Append(text);

    /// <summary>s[start..]: all of it when final; when partial, up to where one of <paramref name="markers"/> may begin.</summary>
    public void AddContentTail(string s, int start, ReadOnlySpan<string> markers) =>
        AddContent(s, start, Partial ? SafeEnd(s, start, markers) : s.Length);

    public void AddReasoning(string s, int start, int end)
    {
        _reasoning ??= new StringBuilder();
        if (end > start) _reasoning.Append(s, start, end - start);
    }

    /// <summary>Adds a call; a null <paramref name="id"/> gets a generated one.</summary>
    public void AddCall(string? id, string name, string arguments, bool complete) =>
        Calls.Add(new CallSnapshot(id ?? NewId(Calls.Count), name, arguments, complete));

    string NewId(int index) => generatedIdLength > 0 ? ids.Characters(index, generatedIdLength) : ids.For(index);

    /// <summary>Adds what <see cref="CallObject.Read"/> found: a complete call, or (partial scans) one whose name and id are known.</summary>
    /// <returns>Whether a call was added.</returns>
    public bool AddCall(string s, CallObject call, bool needsId)
    {
        if (call.Status == CallStatus.Complete)
        {
            AddCall(call.Id, call.Name!, call.ArgumentsStart < 0 ? "{}" : Arguments(s, call.ArgumentsStart, call.ArgumentsEnd)!, complete: true);
            return true;
        }
        if (!Partial || call.Status != CallStatus.Incomplete || call.Name is null || (needsId && call.Id is null))
            return false;
        // Arguments written as a JSON string are released whole, once decoded.
        string arguments = call.ArgumentsStart < 0 || s[call.ArgumentsStart] == '"' ? ""
            : call.ArgumentsEnd >= 0 ? Arguments(s, call.ArgumentsStart, call.ArgumentsEnd) ?? ""
            : JsonScan.Compact(s, call.ArgumentsStart, s.Length);
        AddCall(call.Id, call.Name, arguments, complete: false);
        return true;
    }

    /// <summary>
    /// The compact arguments of the complete value s[start..end]: an object or array as written, or a JSON string that
    /// holds one (as some templates teach models to write them); null when it is neither.
    /// </summary>
    public static string? Arguments(string s, int start, int end)
    {
        if (s[start] is '{' or '[') return JsonScan.Compact(s, start, end);
        if (s[start] != '"' || JsonScan.DecodeString(s, start, end) is not { } inner) return null;
        int first = JsonScan.SkipWhitespace(inner, 0);
        if (first == inner.Length || inner[first] is not ('{' or '[') || JsonScan.ValueEnd(inner, first) is var valueEnd && valueEnd < 0
            || JsonScan.SkipWhitespace(inner, valueEnd) != inner.Length || !JsonScan.IsValid(inner, first, valueEnd))
            return null;
        return JsonScan.Compact(inner, first, valueEnd);
    }

    public ParsedReply ToReply() => new(Content, Reasoning, [.. Calls.Select(c => new ToolCall(c.Id, c.Name, c.Arguments))]);

    /// <summary>The first index from <paramref name="start"/> at which s[i..] is a proper prefix of a marker (s.Length if none).</summary>
    public static int SafeEnd(string s, int start, ReadOnlySpan<string> markers)
    {
        for (int i = Math.Max(start, s.Length - MaxLength(markers) + 1); i < s.Length; i++)
        {
            foreach (var marker in markers)
            {
                if (s.Length - i < marker.Length && marker.AsSpan().StartsWith(s.AsSpan(i)))
                    return i;
            }
        }
        return s.Length;
    }

    static int MaxLength(ReadOnlySpan<string> markers)
    {
        int max = 0;
        foreach (var m in markers) max = Math.Max(max, m.Length);
        return max;
    }

    /// <summary>Whether s[i..] is a proper prefix of <paramref name="marker"/> (the text may still become it).</summary>
    public static bool MayBecome(string s, int i, string marker) => s.Length - i < marker.Length && marker.AsSpan().StartsWith(s.AsSpan(i));
}

/// <summary>A call as a scan saw it; <see cref="Complete"/> false: arguments may still grow.</summary>
internal readonly record struct CallSnapshot(string Id, string Name, string Arguments, bool Complete);

internal enum CallStatus { Complete, Incomplete, Invalid }

/// <summary>
/// A call written as a JSON object: a name member, an arguments member (an object) and optionally an id member;
/// other members are skipped.
/// </summary>
internal readonly record struct CallKeys(ImmutableArray<string> Name, ImmutableArray<string> Arguments, string? Id)
{
    public static CallKeys NameArguments { get; } = new(["name"], ["arguments", "parameters"], null);
}

/// <summary>What reading a call object found.</summary>
internal readonly record struct CallObject(CallStatus Status, int End, string? Name, string? Id, int ArgumentsStart, int ArgumentsEnd)
{
    static CallObject Fail => new(CallStatus.Invalid, -1, null, null, -1, -1);

    /// <summary>Reads the call object at s[i] ('{').</summary>
    public static CallObject Read(string s, int i, CallKeys keys)
    {
        if (i >= s.Length) return new(CallStatus.Incomplete, -1, null, null, -1, -1);
        if (s[i] != '{') return Fail;
        string? name = null, id = null;
        int argsStart = -1, argsEnd = -1;
        int j = JsonScan.SkipWhitespace(s, i + 1);
        bool first = true;
        while (true)
        {
            if (j >= s.Length) return new(CallStatus.Incomplete, -1, name, id, argsStart, argsEnd);
            if (s[j] == '}')
            {
                if (name is null || !JsonScan.IsValid(s, i, j + 1)) return Fail;
                if (argsStart >= 0 && ReplyScan.Arguments(s, argsStart, argsEnd) is null) return Fail;
                return new(CallStatus.Complete, j + 1, name, id, argsStart, argsEnd);
            }
            if (!first)
            {
                if (s[j] != ',') return Fail;
                j = JsonScan.SkipWhitespace(s, j + 1);
                if (j >= s.Length) return new(CallStatus.Incomplete, -1, name, id, argsStart, argsEnd);
            }
            first = false;
            if (s[j] != '"') return Fail;
            int keyEnd = JsonScan.StringEnd(s, j);
            if (keyEnd < 0) return new(CallStatus.Incomplete, -1, name, id, argsStart, argsEnd);
            string? key = JsonScan.DecodeString(s, j, keyEnd);
            if (key is null) return Fail;
            j = JsonScan.SkipWhitespace(s, keyEnd);
            if (j >= s.Length) return new(CallStatus.Incomplete, -1, name, id, argsStart, argsEnd);
            if (s[j] != ':') return Fail;
            j = JsonScan.SkipWhitespace(s, j + 1);
            bool isArguments = keys.Arguments.Contains(key) && argsStart < 0;
            if (isArguments && j < s.Length) argsStart = j;
            int end = JsonScan.ValueEnd(s, j);
            if (end == JsonScan.Invalid) return Fail;
            if (end == JsonScan.Incomplete) return new(CallStatus.Incomplete, -1, name, id, argsStart, argsEnd);
            if (isArguments) argsEnd = end;
            else if (keys.Name.Contains(key) || key == keys.Id)
            {
                if (s[j] != '"') return Fail;
                string? value = JsonScan.DecodeString(s, j, end);
                if (value is null) return Fail;
                if (key == keys.Id) id = value;
                else name ??= value.Length > 0 ? value : null;
            }
            j = JsonScan.SkipWhitespace(s, end);
        }
    }
}

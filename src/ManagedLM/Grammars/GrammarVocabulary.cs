using ManagedLM.Tokenization;

namespace ManagedLM.Grammars;

/// <summary>
/// A tokenizer's tokens as grammar text: each token's bytes, which tokens end generation, and a prefix trie over the
/// bytes so that <see cref="GrammarMatcher.Mask"/> walks shared prefixes once. Build it once per tokenizer; immutable
/// and safe to share between threads and grammars. Tokens without text (control, unknown) never match grammar text;
/// end-of-generation tokens match only where the grammar is complete.
/// </summary>
public sealed class GrammarVocabulary
{
    private readonly byte[] _bytes;
    private readonly int[] _starts;
    private readonly bool[] _endOfGeneration;

    // Trie nodes in depth-first order (node i's subtree is i..NodeSubtreeEnds[i]-1); node i adds the byte NodeBytes[i]
    // at depth NodeDepths[i] (1 = first byte), and the tokens whose bytes end there are
    // NodeTokens[NodeTokenStarts[i]..NodeTokenStarts[i + 1]].
    internal readonly byte[] NodeBytes;
    internal readonly int[] NodeDepths;
    internal readonly int[] NodeSubtreeEnds;
    internal readonly int[] NodeTokenStarts;
    internal readonly int[] NodeTokens;
    internal readonly int[] EndOfGenerationTokens;

    /// <summary>
    /// Builds the vocabulary from each token's bytes (index = token id; empty: a token without text) and the ids
    /// that end generation.
    /// </summary>
    /// <exception cref="ArgumentException">A token's byte array is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An end-of-generation id outside the vocabulary.</exception>
    public GrammarVocabulary(IReadOnlyList<byte[]> tokenBytes, IEnumerable<int> endOfGenerationTokens)
    {
        ArgumentNullException.ThrowIfNull(tokenBytes);
        ArgumentNullException.ThrowIfNull(endOfGenerationTokens);
        _starts = new int[tokenBytes.Count + 1];
        for (int i = 0; i < tokenBytes.Count; i++)
        {
            if (tokenBytes[i] is null)
                throw new ArgumentException($"Token {i} has no byte array (use an empty one for a token without text).", nameof(tokenBytes));
            _starts[i + 1] = _starts[i] + tokenBytes[i].Length;
        }
        _bytes = new byte[_starts[^1]];
        for (int i = 0; i < tokenBytes.Count; i++)
            tokenBytes[i].CopyTo(_bytes, _starts[i]);
        _endOfGeneration = new bool[tokenBytes.Count];
        foreach (int id in endOfGenerationTokens)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(id, nameof(endOfGenerationTokens));
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(id, tokenBytes.Count, nameof(endOfGenerationTokens));
            _endOfGeneration[id] = true;
        }
        EndOfGenerationTokens = Enumerable.Range(0, Count).Where(t => _endOfGeneration[t]).ToArray();
        (NodeBytes, NodeDepths, NodeSubtreeEnds, NodeTokenStarts, NodeTokens) = BuildTrie();
        MaxTokenBytes = NodeDepths.Length == 0 ? 0 : NodeDepths.Max();
    }

    /// <summary>The vocabulary of <paramref name="tokenizer"/>: its tokens' bytes (control and unknown tokens have none) and end-of-generation ids.</summary>
    public static GrammarVocabulary FromTokenizer(Tokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var bytes = new byte[tokenizer.VocabSize][];
        var endOfGeneration = new List<int>();
        for (int id = 0; id < bytes.Length; id++)
        {
            bytes[id] = tokenizer.TokenBytes(id).ToArray();
            if (tokenizer.IsEndOfGeneration(id))
                endOfGeneration.Add(id);
        }
        return new GrammarVocabulary(bytes, endOfGeneration);
    }

    /// <summary>Number of tokens.</summary>
    public int Count => _endOfGeneration.Length;

    /// <summary>Longest token, in bytes.</summary>
    public int MaxTokenBytes { get; }

    /// <summary>Trie nodes (distinct non-empty token prefixes).</summary>
    internal int NodeCount => NodeBytes.Length;

    /// <summary>The bytes <paramref name="token"/> stands for (empty for tokens without text).</summary>
    public ReadOnlySpan<byte> TokenBytes(int token) => _bytes.AsSpan(_starts[token], _starts[token + 1] - _starts[token]);

    /// <summary>Whether <paramref name="token"/> ends generation.</summary>
    public bool IsEndOfGeneration(int token) => _endOfGeneration[token];

    private (byte[], int[], int[], int[], int[]) BuildTrie()
    {
        var ids = Enumerable.Range(0, Count).Where(id => !_endOfGeneration[id] && _starts[id + 1] > _starts[id]).ToArray();
        Array.Sort(ids, (a, b) =>
        {
            int c = TokenBytes(a).SequenceCompareTo(TokenBytes(b));
            return c != 0 ? c : a.CompareTo(b);
        });
        var nodeBytes = new List<byte>();
        var depths = new List<int>();
        var tokenStarts = new List<int>();
        var path = new List<int>();
        var subtreeEnds = new List<int>();
        ReadOnlySpan<byte> previous = default;
        for (int t = 0; t < ids.Length; t++)
        {
            var bytes = TokenBytes(ids[t]);
            int common = bytes.CommonPrefixLength(previous);
            // Nodes below the shared prefix are finished: their subtrees end where the next node starts.
            for (int d = common; d < path.Count; d++)
                subtreeEnds[path[d]] = nodeBytes.Count;
            path.RemoveRange(common, path.Count - common);
            for (int d = common; d < bytes.Length; d++)
            {
                path.Add(nodeBytes.Count);
                nodeBytes.Add(bytes[d]);
                depths.Add(d + 1);
                tokenStarts.Add(t);
                subtreeEnds.Add(0);
            }
            previous = bytes;
        }
        foreach (int node in path)
            subtreeEnds[node] = nodeBytes.Count;
        tokenStarts.Add(ids.Length);
        return ([.. nodeBytes], [.. depths], [.. subtreeEnds], [.. tokenStarts], ids);
    }
}

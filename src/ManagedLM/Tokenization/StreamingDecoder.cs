using System.Text;

namespace ManagedLM.Tokenization;

/// <summary>
/// Turns a stream of token ids into text, one token at a time: bytes of a character split across tokens
/// (e.g. an emoji as &lt;0xF0&gt;&lt;0x9F&gt;&lt;0x98&gt;&lt;0x81&gt;) are held back until the character completes; invalid
/// sequences become U+FFFD. Pieces are appended as they are (no space-prefix removal or space clean-up).
/// One decoder per stream; not thread-safe.
/// </summary>
public sealed class StreamingDecoder
{
    private readonly Tokenizer _tokenizer;
    private readonly bool _skipSpecialTokens;
    private readonly Decoder _decoder = new UTF8Encoding(false, false).GetDecoder();

    internal StreamingDecoder(Tokenizer tokenizer, bool skipSpecialTokens)
    {
        _tokenizer = tokenizer;
        _skipSpecialTokens = skipSpecialTokens;
    }

    /// <summary>The text that <paramref name="tokenId"/> completes ("" while a character is incomplete).</summary>
    public string Append(int tokenId)
    {
        var bytes = _tokenizer.TokenBytes(tokenId, !_skipSpecialTokens);
        int count = _decoder.GetCharCount(bytes, flush: false);
        if (count == 0)
        {
            _decoder.GetChars(bytes, Span<char>.Empty, flush: false);
            return "";
        }
        return string.Create(count, (this, tokenId), static (dest, state) =>
            state.Item1._decoder.GetChars(state.Item1._tokenizer.TokenBytes(state.tokenId, !state.Item1._skipSpecialTokens), dest, flush: false));
    }

    /// <summary>Writes the text <paramref name="tokenId"/> completes into <paramref name="dest"/>; returns the char count. Allocates nothing.</summary>
    /// <exception cref="ArgumentException"><paramref name="dest"/> is too short (it never needs more than the token's byte count + 1).</exception>
    public int Append(int tokenId, Span<char> dest)
    {
        var bytes = _tokenizer.TokenBytes(tokenId, !_skipSpecialTokens);
        int count = _decoder.GetCharCount(bytes, flush: false);
        if (count > dest.Length)
            throw new ArgumentException($"Token {tokenId} completes {count} chars; the destination holds {dest.Length}.", nameof(dest));
        return _decoder.GetChars(bytes, dest, flush: false);
    }

    /// <summary>Ends the stream: bytes of an unfinished character come out as U+FFFD.</summary>
    public string Flush()
    {
        int count = _decoder.GetCharCount([], flush: true);
        if (count == 0)
            return "";
        var chars = new char[count];
        _decoder.GetChars([], chars, flush: true);
        return new string(chars);
    }

    /// <summary>Forgets any held-back bytes, ready for a new stream.</summary>
    public void Reset() => _decoder.Reset();
}

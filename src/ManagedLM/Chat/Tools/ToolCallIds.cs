namespace ManagedLM.Chat.Tools;

/// <summary>Ids for calls whose format carries none: <c>call_</c> and 24 letters and digits, a function of a seed and the call's index.</summary>
internal readonly struct ToolCallIds(long seed)
{
    const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    public static ToolCallIds From(ReplyParseOptions options) => new(options.IdSeed ?? Random.Shared.NextInt64());

    /// <summary><c>call_</c> and 24 characters.</summary>
    public string For(int index) => "call_" + Characters(index, 24);

    /// <summary><paramref name="length"/> letters and digits (Mistral's ids have 9).</summary>
    public string Characters(int index, int length)
    {
        ulong state = (ulong)seed ^ (0x9E3779B97F4A7C15UL * (ulong)(index + 1));
        return string.Create(length, state, static (span, s) =>
        {
            for (int i = 0; i < span.Length; i++)
            {
                // SplitMix64.
                s += 0x9E3779B97F4A7C15UL;
                ulong z = s;
                z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
                z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
                span[i] = Alphabet[(int)((z ^ (z >> 31)) % (ulong)Alphabet.Length)];
            }
        });
    }
}

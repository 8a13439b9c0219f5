using System.Diagnostics;
using System.Text;
using ManagedLM.Sampling;
using ManagedLM.Tokenization;

namespace ManagedLM.Generation;

/// <summary>
/// One request between tokens: its prompt, options, sampler, stop matcher, streaming decoder, what it has generated and,
/// once finished, its result. <see cref="Generator"/> drives it one token at a time and <see cref="Batching.BatchEngine"/>
/// one step for many sequences, through the same two calls: <see cref="Stopping"/> before the pending token is evaluated,
/// <see cref="Accept"/> with the logits after it. So every request feature behaves the same in both.
/// </summary>
internal sealed class Sequence
{
    private readonly Tokenizer _tokenizer;
    private readonly StreamingDecoder _decoder;
    private readonly StopStringMatcher _stops;
    private readonly List<int> _generated = [];
    private readonly StringBuilder _text = new();
    private readonly List<TokenOutput>? _outputs;
    private readonly GrammarConstraint? _grammar;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private TimeSpan _promptTime;

    /// <param name="tokenizer">The model's tokenizer (end-of-generation ids).</param>
    /// <param name="prompt">The checked prompt ids (see <see cref="Generator.CheckPrompt"/>).</param>
    /// <param name="options">The request's options, validated.</param>
    /// <param name="sampler">The sampler to draw with, reset as the options ask.</param>
    /// <param name="decoder">The streaming decoder of the generator the sequence runs on; reset here.</param>
    public Sequence(Tokenizer tokenizer, int[] prompt, GenerationOptions options, SamplerChain sampler, StreamingDecoder decoder)
    {
        _tokenizer = tokenizer;
        _decoder = decoder;
        _decoder.Reset();
        _stops = new StopStringMatcher(options.StopStrings);
        _outputs = options.Logprobs ? [] : null;
        if (options.Grammar is { } grammar)
            _grammar = new GrammarConstraint(grammar, options.GrammarTriggers, tokenizer, sampler.VocabSize);
        Prompt = prompt;
        Options = options;
        Sampler = sampler;
    }

    /// <summary>The prompt's ids.</summary>
    public int[] Prompt { get; }

    /// <summary>The request's options.</summary>
    public GenerationOptions Options { get; }

    /// <summary>The sampler drawing this request's tokens.</summary>
    public SamplerChain Sampler { get; }

    /// <summary>Leading tokens a context shift never discards (<see cref="Generator.KeepFor"/>); 0 when the request stops at a full context.</summary>
    public int Keep { get; set; }

    /// <summary>Context shifts so far.</summary>
    public int Shifts { get; private set; }

    /// <summary>Tokens the context shifts discarded so far.</summary>
    public int Discarded { get; private set; }

    /// <summary>Counts a context shift that discarded <paramref name="count"/> tokens.</summary>
    public void Shifted(int count)
    {
        Shifts++;
        Discarded += count;
    }

    /// <summary>Leading prompt tokens found in the cache, not evaluated again.</summary>
    public int Reused { get; set; }

    /// <summary>The token sampled and emitted last, not yet evaluated; null before the first and once evaluated.</summary>
    public int? Pending { get; set; }

    /// <summary>True once the request has ended (<see cref="Result"/> is set).</summary>
    public bool Finished => Result is not null;

    /// <summary>The outcome, once finished.</summary>
    public GenerationResult? Result { get; private set; }

    /// <summary>Marks the prompt as evaluated: the decode clock starts.</summary>
    public void PromptDone()
    {
        _promptTime = _clock.Elapsed;
        _clock.Restart();
    }

    /// <summary>
    /// Before evaluating the pending token at <paramref name="position"/>: ends the sequence if it may not produce another
    /// token (MaxTokens reached, or a full context that the request does not shift), giving the last output (held-back
    /// text) in <paramref name="final"/>. A full context that the request shifts is left to <see cref="Generator.MakeRoom"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The context is full and the options ask for an exception.</exception>
    public bool Stopping(int position, int contextLength, out TokenOutput? final)
    {
        final = null;
        if (_generated.Count >= Options.MaxTokens)
        {
            final = Finish(StopReason.MaxTokens);
            return true;
        }
        if (Pending is not null && position >= contextLength && Options.ContextOverflow == ContextOverflow.Stop)
        {
            if (Options.ThrowOnContextFull)
                throw new InvalidOperationException($"The context is full ({contextLength} tokens).");
            final = Finish(StopReason.ContextFull);
            return true;
        }
        return false;
    }

    /// <summary>
    /// With the logits after the last evaluated token ([vocab]) and the ids evaluated so far: samples the next token and
    /// emits it (it becomes <see cref="Pending"/>), or ends the sequence (end of generation; a stop string, or a grammar
    /// that allows nothing more, ends it after the token that completes it). Null when it ended with no text left to release.
    /// </summary>
    public TokenOutput? Accept(ReadOnlySpan<float> logits, ReadOnlySpan<int> history)
    {
        int id = _grammar is null ? Sampler.Sample(logits, history) : _grammar.Sample(Sampler, logits, history);
        if (id < 0 || (!Options.IgnoreEndOfGeneration && _tokenizer.IsEndOfGeneration(id)))
            return Finish(StopReason.EndOfGeneration);

        _grammar?.Accept(id);
        _generated.Add(id);
        Pending = id;
        string text = _stops.Append(_decoder.Append(id));
        _text.Append(text);
        if (_stops.Stopped)
            Finish(StopReason.StopString);
        else if (_grammar is { Done: true } && Finish(StopReason.EndOfGeneration) is { } rest)
            text += rest.Text;
        var output = new TokenOutput(id, text);
        if (Options.Logprobs)
        {
            output = output with { Logprob = LogProbabilities.Of(logits, id), TopLogprobs = TopLogprobs(logits, Options.TopLogprobs) };
            _outputs!.Add(output);
        }
        return output;
    }

    // Ends the sequence. Text still held back (an incomplete character, a possible stop string) comes out as a last
    // output with no token.
    private TokenOutput? Finish(StopReason reason)
    {
        string rest = "";
        if (reason != StopReason.StopString)
            rest = _stops.Append(_decoder.Flush()) + _stops.Flush();
        _text.Append(rest);
        Result = new GenerationResult(Prompt, _generated.ToArray(), _text.ToString(), reason, _promptTime, _clock.Elapsed)
        {
            ReusedPromptTokens = Reused,
            Tokens = _outputs,
            ContextShifts = Shifts,
            DiscardedTokens = Discarded,
        };
        return rest.Length > 0 ? new TokenOutput(TokenOutput.NoToken, rest) : null;
    }

    private static TokenLogprob[]? TopLogprobs(ReadOnlySpan<float> logits, int count)
    {
        if (count == 0)
            return null;
        Span<int> ids = stackalloc int[count];
        Span<float> logprobs = stackalloc float[count];
        int n = LogProbabilities.Top(logits, ids, logprobs);
        var top = new TokenLogprob[n];
        for (int i = 0; i < n; i++)
            top[i] = new TokenLogprob(ids[i], logprobs[i]);
        return top;
    }
}

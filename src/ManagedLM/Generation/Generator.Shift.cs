using ManagedLM.Inference;

namespace ManagedLM.Generation;

public sealed partial class Generator
{
    /// <summary>Positions a context shift needs beyond the kept tokens (llama.cpp keeps n_keep ≤ n_ctx − 4).</summary>
    public const int MinimumShiftRoom = 4;

    /// <summary>
    /// Discards the <paramref name="discard"/> cached tokens after the first <paramref name="keep"/> and moves the later
    /// ones down (llama.cpp's <c>seq_rm</c> + <c>seq_add</c>): their keys are rotated to their new positions, their values
    /// kept. The logits stay those after the last token. The moved entries were computed with the discarded tokens in view,
    /// so a prompt that continues <see cref="Tokens"/> reuses only the first <paramref name="keep"/> of them.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">keep &lt; 0, discard &lt; 1, or keep + discard beyond <see cref="Position"/>.</exception>
    public void ShiftContext(int keep, int discard)
    {
        Enter();
        try
        {
            if (keep < 0 || keep > Position)
                throw new ArgumentOutOfRangeException(nameof(keep), keep, $"keep must be in [0, {Position}].");
            if (discard < 1 || discard > Position - keep)
                throw new ArgumentOutOfRangeException(nameof(discard), discard, $"discard must be in [1, {Position - keep}] after keeping {keep} of {Position} tokens.");
            ShiftCore(keep, discard);
        }
        finally
        {
            Exit();
        }
    }

    private void ShiftCore(int keep, int discard)
    {
        ContextShift.Apply(Model, _cache, keep, discard, Position);
        _tokens.RemoveRange(keep, discard);
        _exactPrefix = Math.Min(_exactPrefix, keep);
    }

    /// <summary>
    /// Before the pending token of <paramref name="run"/> is evaluated: when it does not fit the context and the request
    /// shifts, discards tokens after the kept ones (<see cref="GenerationOptions.DiscardTokens"/>, or half of them).
    /// Depends only on this sequence's own state, so a request shifts the same alone and batched.
    /// </summary>
    internal void MakeRoom(Sequence run)
    {
        if (run.Pending is null || Position < ContextLength || run.Options.ContextOverflow == ContextOverflow.Stop)
            return;
        int left = Position - run.Keep;
        int discard = Math.Clamp(run.Options.DiscardTokens > 0 ? run.Options.DiscardTokens : left / 2, 1, Math.Max(1, left - 1));
        ShiftCore(run.Keep, discard);
        run.Shifted(discard);
    }

    /// <summary>
    /// The leading tokens a context shift keeps for <paramref name="prompt"/> (0 when the options stop at a full context):
    /// a leading BOS, then <see cref="GenerationOptions.KeepTokens"/> prompt tokens (-1: all of them).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">KeepTokens exceeds the prompt, or what is kept leaves fewer than
    /// <see cref="MinimumShiftRoom"/> positions of the context (paramName "KeepTokens").</exception>
    internal static int KeepFor(ReadOnlySpan<int> prompt, GenerationOptions options, int contextLength, int bosTokenId)
    {
        if (options.ContextOverflow == ContextOverflow.Stop)
            return 0;
        int bos = prompt.Length > 0 && prompt[0] == bosTokenId ? 1 : 0;
        if (options.KeepTokens > prompt.Length - bos)
            throw new ArgumentOutOfRangeException(nameof(GenerationOptions.KeepTokens), options.KeepTokens,
                $"KeepTokens must be in [-1, {prompt.Length - bos}]: the prompt has {prompt.Length - bos} tokens{(bos == 1 ? " after its BOS" : "")}.");
        int keep = options.KeepTokens < 0 ? prompt.Length : bos + options.KeepTokens;
        int most = contextLength - MinimumShiftRoom;
        if (keep > most)
            throw new ArgumentOutOfRangeException(nameof(GenerationOptions.KeepTokens), options.KeepTokens,
                $"A context shift keeps {keep} tokens{(options.KeepTokens < 0 ? " (the whole prompt)" : "")}; it may keep at most {Math.Max(0, most)} " +
                $"(the context length {contextLength} − {MinimumShiftRoom}).");
        return keep;
    }
}

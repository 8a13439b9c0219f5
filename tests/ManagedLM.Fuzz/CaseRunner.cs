using System.Diagnostics;
using ManagedLM.Chat;
using ManagedLM.Chat.Jinja;
using ManagedLM.Generation;
using ManagedLM.Gguf;
using ManagedLM.Model;
using ManagedLM.Sampling;

namespace ManagedLM.Fuzz;

/// <summary>How a case ended: loaded and generated, failed with a clean exception, or a bad outcome.</summary>
public sealed record CaseOutcome(FuzzInput Input, string Result, bool Bad, Exception? Error, bool Loaded)
{
    /// <summary>How long the case ran.</summary>
    public TimeSpan Duration { get; init; }

    /// <summary>The case, how it ended, and for a bad outcome the exception with its stack.</summary>
    public string Report() =>
        $"case {Input.Index} ({Input.Kind}) of seed file {Input.Seed}: {Input.Description}\n  -> {Result}" +
        (Bad && Error is not null ? $"\n{Error}" : "");
}

/// <summary>
/// Runs one case in process: load the mutated bytes, 4 greedy and 4 sampled tokens (with log-probabilities), and one
/// chat turn when the file has a template. Clean outcomes are success or one of <see cref="CleanExceptionTypes"/>; after a
/// failure the generator must still be usable (its guard released), and a known-good model must still give its text.
/// </summary>
public sealed class CaseRunner : IDisposable
{
    /// <summary>The exception types (and their subclasses) that count as a clean rejection.</summary>
    public static readonly Type[] CleanExceptionTypes =
    [
        typeof(GgufFormatException), typeof(NotSupportedException), typeof(ArgumentException), typeof(TemplateException),
        typeof(OperationCanceledException), typeof(NonFiniteLogitsException),
    ];

    private const string Prompt = "Once upon a time";
    private static readonly GenerationOptions Greedy = new() { MaxTokens = 4, Sampling = SamplingOptions.Greedy };
    private static readonly GenerationOptions Sampled = new()
    {
        MaxTokens = 4, Logprobs = true, TopLogprobs = 3,
        Sampling = new SamplingOptions { Temperature = 0.8f, TopK = 40, TopP = 0.95f, MinP = 0.05f, RepeatPenalty = 1.1f, Seed = 7 },
    };
    private static readonly ChatMessage[] Conversation = [ChatMessage.System("You tell short stories."), ChatMessage.User("Tell me one about a cat.")];
    private static readonly ChatTemplateOptions ChatOptions = new()
    {
        Now = new DateTime(2025, 1, 1, 0, 0, 0, DateTimeKind.Utc), Limits = new RenderLimits { MaxOutputLength = 1 << 16 },
    };

    private readonly TransformerModel _reference;
    private readonly string _referenceText;

    /// <param name="referenceModel">A known-good model file's bytes (stories260K): checked after every failure.</param>
    public CaseRunner(byte[] referenceModel)
    {
        _reference = TransformerModel.Load(referenceModel);
        _referenceText = ReferenceText();
    }

    /// <summary>Runs the case and classifies its end.</summary>
    public CaseOutcome Run(FuzzInput input)
    {
        long start = Stopwatch.GetTimestamp();
        return Classify(input) with { Duration = Stopwatch.GetElapsedTime(start) };
    }

    private CaseOutcome Classify(FuzzInput input)
    {
        bool loaded = false;
        try
        {
            string what = Exercise(input.Bytes, ref loaded);
            return new CaseOutcome(input, what, Bad: false, null, loaded);
        }
        catch (Exception e) when (IsClean(e))
        {
            string text;
            try
            {
                text = ReferenceText();
            }
            catch (Exception after)
            {
                return new CaseOutcome(input, $"the known-good model failed after {e.GetType().Name}: {after.GetType().Name}", Bad: true, after, loaded);
            }
            if (text != _referenceText)
                return new CaseOutcome(input, $"the known-good model's text changed after {e.GetType().Name}: \"{text}\", was \"{_referenceText}\"", Bad: true, e, loaded);
            return new CaseOutcome(input, e.GetType().Name, Bad: false, e, loaded);
        }
        catch (Exception e)
        {
            return new CaseOutcome(input, $"unexpected {e.GetType().FullName}: {e.Message}", Bad: true, e, loaded);
        }
    }

    /// <summary>Whether <paramref name="e"/> is one of <see cref="CleanExceptionTypes"/> or a subclass.</summary>
    public static bool IsClean(Exception e) => CleanExceptionTypes.Any(t => t.IsInstanceOfType(e));

    private static string Exercise(byte[] bytes, ref bool loaded)
    {
        using var model = TransformerModel.Load(bytes);
        loaded = true;
        using var g = model.CreateGenerator(new GeneratorOptions { ContextLength = Math.Min(model.MaxContextLength, 512) });
        KeepUsable(g, () =>
        {
            g.Complete(Prompt, Greedy);
            g.Complete(Prompt, Sampled);
        });
        if (!model.Metadata.ContainsKey("tokenizer.chat_template"))
            return "generated";
        KeepUsable(g, () =>
        {
            var template = model.ChatTemplate;
            int[] ids = template.Tokenize(model.Tokenizer, template.Render(Conversation, ChatOptions));
            g.Complete(ids, template.ForReply(Greedy with { MaxTokens = 2 }));
        });
        return model.ChatTemplateWarning is null ? "generated, chat turn" : "generated, chat turn with the ChatML fallback";
    }

    // Runs `work`; when it fails cleanly, the generator must take the next call (its guard released).
    private static void KeepUsable(Generator g, Action work)
    {
        try
        {
            work();
        }
        catch (Exception e) when (IsClean(e))
        {
            try
            {
                g.Reset();
            }
            catch (Exception reset)
            {
                throw new InvalidOperationException($"The generator is unusable after {e.GetType().Name} ({e.Message}): {reset.Message}", reset);
            }
            throw;
        }
    }

    private string ReferenceText()
    {
        using var g = _reference.CreateGenerator();
        return g.Generate(Prompt, Greedy with { MaxTokens = 8 });
    }

    /// <summary>Unloads the known-good model.</summary>
    public void Dispose() => _reference.Dispose();
}

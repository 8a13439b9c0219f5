using System.Runtime.CompilerServices;
using ManagedLM.Chat.Jinja;
using ManagedLM.Gguf;
using ManagedLM.Model;
using ManagedLM.Tokenization;

namespace ManagedLM.Chat;

/// <summary>
/// A model's prompt format: its <c>tokenizer.chat_template</c> with its BOS/EOS strings, parsed once per model on first
/// use. The Chat layer owns it, so the model itself knows nothing of templates.
/// </summary>
public static class ModelChatTemplates
{
    [ThreadSafeStatic("a ConditionalWeakTable (thread-safe) of values computed from an immutable model and never changed; an entry goes with its model")]
    private static readonly ConditionalWeakTable<TransformerModel, Loaded> Templates = new();

    private sealed record Loaded(ChatTemplate Template, string? Warning);

    extension(TransformerModel model)
    {
        /// <summary>
        /// The model's prompt format: its <c>tokenizer.chat_template</c> with its BOS/EOS strings, or <see cref="ChatTemplate.ChatML"/>
        /// when the file has none or it does not parse (then <see cref="get_ChatTemplateWarning"/> says so).
        /// </summary>
        public ChatTemplate ChatTemplate => Of(model).Template;

        /// <summary>Why the model's <c>ChatTemplate</c> is the ChatML fallback, or null when it is the model's own.</summary>
        public string? ChatTemplateWarning => Of(model).Warning;
    }

    private static Loaded Of(TransformerModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Templates.GetValue(model, m => Load(m.Metadata, m.Tokenizer));
    }

    private static Loaded Load(GgufMetadata metadata, Tokenizer tokenizer)
    {
        string Text(int id) => id >= 0 && id < tokenizer.VocabSize ? tokenizer.TokenText(id) : "";
        string bos = Text(tokenizer.BosTokenId), eos = Text(tokenizer.EosTokenId);
        if (metadata.GetStringOrNull("tokenizer.chat_template") is not { } source)
            return new(ChatTemplate.ChatML.WithTokens(bos, eos), "The model has no tokenizer.chat_template; using ChatML.");
        try
        {
            return new(ChatTemplate.Parse(source, bos, eos), null);
        }
        catch (TemplateException e)
        {
            return new(ChatTemplate.ChatML.WithTokens(bos, eos), $"The model's chat template does not parse ({e.MessageWithLocation}); using ChatML.");
        }
    }
}

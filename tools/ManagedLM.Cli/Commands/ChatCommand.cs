using System.CommandLine;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ManagedLM.Chat;
using ManagedLM.Chat.Jinja;
using ManagedLM.Generation;
using ManagedLM.Model;

namespace ManagedLM.Cli.Commands;

/// <summary>
/// `managedlm chat`: an interactive conversation with a model (the reply streams; /reset, /system TEXT, /save FILE,
/// /load FILE, /help, /exit; Ctrl+C stops the reply, not the program), or with --render-only the exact prompt a template
/// renders for a conversation file — the way to debug a template.
/// </summary>
internal static class ChatCommand
{
    public static Command Create()
    {
        var model = CliOptions.Model();
        var renderOnly = new Option<bool>("--render-only") { Description = "Print the rendered prompt of --messages (exact bytes, no newline added) and exit." };
        var messages = new Option<string?>("--messages") { Description = "Conversation JSON ({\"messages\": [...], \"tools\": [...]}) for --render-only." };
        var template = new Option<string?>("--template", "--chat-template-file") { Description = "Jinja chat template file (default: the model's tokenizer.chat_template)." };
        var noGenerationPrompt = new Option<bool>("--no-generation-prompt") { Description = "Render without the assistant's turn header (add_generation_prompt = false)." };
        var bos = new Option<string?>("--bos-token") { Description = "bos_token the template sees (default: the model's, or empty)." };
        var eos = new Option<string?>("--eos-token") { Description = "eos_token the template sees (default: the model's, or empty)." };
        var system = new Option<string?>("--system") { Description = "System prompt." };
        var truncateHistory = new Option<bool>("--truncate-history")
        {
            Description = "When the conversation outgrows the context, drop its oldest turns (the system prompt stays); a reply that fills the context shifts it.",
        };
        var flags = new SamplingFlags(256, "Most tokens per reply");
        var threads = CliOptions.Threads();
        var ctx = CliOptions.ContextSize();
        var kvType = CliOptions.KvType();
        var command = new CliCommand("chat", "Chat with a model, or render a chat template (--render-only).",
        [
            new("Chat with a model, with a system prompt", "managedlm chat -m model.gguf --system \"You are a helpful assistant.\" --temp 0.7"),
            new("Greedy replies of at most 128 tokens in a context of 8192", "managedlm chat -m model.gguf --temp 0 -n 128 -c 8192"),
            new("A conversation that goes on past the context: the oldest turns leave", "managedlm chat -m model.gguf -c 2048 --truncate-history"),
            new("Sampled with generate's flags, a reply ending where it starts a user's turn", "managedlm chat -m model.gguf --top-k 20 --min-p 0.1 --repeat-penalty 1.1 --stop \"User:\""),
            new("The exact prompt a template file renders for a conversation", "managedlm chat --render-only --messages conversation.json --template template.jinja"),
            new("The model's own template, without the assistant's turn header",
                "managedlm chat -m model.gguf --render-only --messages conversation.json --no-generation-prompt"),
        ])
        {
            model, renderOnly, messages, template, noGenerationPrompt, bos, eos, system, truncateHistory,
        };
        foreach (var option in flags.All)
            command.Options.Add(option);
        command.Options.Add(threads);
        command.Options.Add(ctx);
        command.Options.Add(kvType);
        command.SetAction(parse =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            if (parse.GetValue(renderOnly))
            {
                var request = new RenderRequest(parse.GetValue(messages), parse.GetValue(model), parse.GetValue(template),
                    !parse.GetValue(noGenerationPrompt), parse.GetValue(bos), parse.GetValue(eos));
                using var stdout = Console.OpenStandardOutput();
                RenderOnly(request, stdout, error);
                return ExitCodes.Ok;
            }
            var generation = flags.Generation(parse);
            if (parse.GetValue(truncateHistory))
                generation = generation with { ContextOverflow = ContextOverflow.TruncateHistory };
            var options = new ChatSessionOptions
            {
                SystemPrompt = parse.GetValue(system),
                Generation = generation,
                Generator = new GeneratorOptions { Threads = parse.GetValue(threads), ContextLength = parse.GetValue(ctx), KvCacheType = parse.GetValue(kvType) },
            };
            return Interactive(ModelLocator.Resolve(parse.GetValue(model)), parse.GetValue(template), options, Console.In, output, error);
        });
        return command;
    }

    public sealed record RenderRequest(string? MessagesPath, string? ModelPath, string? TemplatePath, bool AddGenerationPrompt, string? BosToken, string? EosToken);

    /// <summary>
    /// Renders the conversation to <paramref name="output"/> as UTF-8. Throws <see cref="ArgumentException"/> without
    /// --messages; the exceptions of a bad conversation, template or model file otherwise (<see cref="ExitCodes"/>).
    /// </summary>
    public static void RenderOnly(RenderRequest r, Stream output, TextWriter error)
    {
        if (r.MessagesPath is null)
            throw new ArgumentException("--render-only needs --messages FILE.");
        var conversation = JsonNode.Parse(File.ReadAllText(r.MessagesPath)) ?? throw new InvalidDataException("The conversation file is empty.");
        ChatTemplate chat;
        if (r.TemplatePath is not null)
            chat = ChatTemplate.Parse(File.ReadAllText(r.TemplatePath), r.BosToken ?? "", r.EosToken ?? "");
        else
        {
            using var model = ModelLoading.Load(ModelLocator.Resolve(r.ModelPath), error);
            chat = model.ChatTemplate;
            if (model.ChatTemplateWarning is { } warning)
                error.WriteLine($"managedlm chat: {warning}");
            chat = chat.WithTokens(r.BosToken ?? chat.BosToken, r.EosToken ?? chat.EosToken);
        }
        byte[] bytes = Encoding.UTF8.GetBytes(chat.Render(conversation, new ChatTemplateOptions { AddGenerationPrompt = r.AddGenerationPrompt }));
        output.Write(bytes);
        output.Flush();
    }

    /// <summary>Loads the model and runs the conversation loop on <paramref name="input"/> (a terminal, or redirected stdin).</summary>
    public static int Interactive(string modelPath, string? templatePath, ChatSessionOptions options, TextReader input, TextWriter output, TextWriter error)
    {
        using var model = ModelLoading.Load(modelPath, error);
        CliOptions.CheckContext(options.Generator.ContextLength, model.MaxContextLength);
        if (templatePath is not null)
            options = options with { Template = ChatTemplate.Parse(File.ReadAllText(templatePath), model.ChatTemplate.BosToken, model.ChatTemplate.EosToken) };
        else if (model.ChatTemplateWarning is { } warning)
            error.WriteLine($"managedlm chat: {warning}");
        using var session = new ChatSession(model, options);
        using var ctrlC = new CancelKeyHandler();
        return Repl(session, input, output, error, ctrlC);
    }

    /// <summary>The conversation loop: a line is a message, or a command. Returns 0 at end of input or /exit.</summary>
    public static int Repl(ChatSession session, TextReader input, TextWriter output, TextWriter error, IReplyCancellation? cancellation = null)
    {
        output.WriteLine("Chat with the model. /help lists the commands; Ctrl+C stops a reply.");
        while (true)
        {
            output.Write("> ");
            output.Flush();
            string? line = input.ReadLine();
            if (line is null)
            {
                output.WriteLine();
                return 0;
            }
            if (line.Length == 0)
                continue;
            if (line.StartsWith('/'))
            {
                if (!Command(session, line, output, error))
                    return 0;
                continue;
            }
            var token = cancellation?.BeginReply() ?? CancellationToken.None;
            int droppedBefore = session.DroppedMessages;
            try
            {
                var result = session.Send(line, t =>
                {
                    output.Write(t.Text);
                    output.Flush();
                }, token);
                output.WriteLine();
                int dropped = session.DroppedMessages - droppedBefore;
                error.WriteLine($"[{result.GeneratedTokens.Length} tokens, {result.DecodeTokensPerSecond:F1} tokens/s, {result.ReusedPromptTokens} prompt tokens reused, stop: {result.StopReason}" +
                    (dropped > 0 ? $", {dropped} oldest messages dropped" : "") + (result.ContextShifts > 0 ? $", {result.ContextShifts} context shifts" : "") + "]");
            }
            catch (OperationCanceledException)
            {
                output.WriteLine();
                error.WriteLine("[stopped]");
            }
            catch (Exception e) when (e is TemplateException or ArgumentException or InvalidOperationException)
            {
                ReportAndContinue(e, error);
            }
            finally
            {
                cancellation?.EndReply();
            }
        }
    }

    // Runs a /command; false means leave.
    private static bool Command(ChatSession session, string line, TextWriter output, TextWriter error)
    {
        int space = line.IndexOf(' ');
        string name = space < 0 ? line : line[..space], argument = space < 0 ? "" : line[(space + 1)..].Trim();
        try
        {
            switch (name)
            {
                case "/exit":
                case "/quit":
                    return false;
                case "/reset":
                    session.Reset();
                    output.WriteLine("[conversation cleared]");
                    break;
                case "/system":
                    session.SystemPrompt = argument.Length == 0 ? null : argument;
                    output.WriteLine(argument.Length == 0 ? "[system prompt removed]" : "[system prompt set]");
                    break;
                case "/save":
                    if (argument.Length == 0)
                        throw new ArgumentException("/save needs a file name.");
                    using (var file = File.Create(argument))
                        session.Save(file);
                    output.WriteLine($"[saved {session.Messages.Count} messages to {argument}]");
                    break;
                case "/load":
                    if (argument.Length == 0)
                        throw new ArgumentException("/load needs a file name.");
                    using (var file = File.OpenRead(argument))
                        session.Load(file);
                    output.WriteLine($"[loaded {session.Messages.Count} messages from {argument}]");
                    break;
                case "/prompt":
                    output.WriteLine(session.RenderPrompt());
                    break;
                case "/help":
                    output.WriteLine("/reset  clear the conversation · /system TEXT  set the system prompt (empty: none) · /save FILE · /load FILE · /prompt  show the rendered prompt · /exit");
                    break;
                default:
                    error.WriteLine($"managedlm chat: error: unknown command {name}; /help lists them.");
                    break;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or ArgumentException or TemplateException)
        {
            ReportAndContinue(e, error);
        }
        return true;
    }

    // An error of one message or command ends it, not the conversation.
    private static void ReportAndContinue(Exception e, TextWriter error) => error.WriteLine($"managedlm chat: error: {ExitCodes.Message(e)}");

    /// <summary>Cancels the reply in progress on request (Ctrl+C in a terminal).</summary>
    public interface IReplyCancellation
    {
        CancellationToken BeginReply();
        void EndReply();
    }

    // Ctrl+C during a reply cancels it and keeps the program; at the prompt it ends the program as usual.
    private sealed class CancelKeyHandler : IReplyCancellation, IDisposable
    {
        private CancellationTokenSource? _reply;

        public CancelKeyHandler() => Console.CancelKeyPress += OnCancel;

        public CancellationToken BeginReply()
        {
            _reply = new CancellationTokenSource();
            return _reply.Token;
        }

        public void EndReply()
        {
            Interlocked.Exchange(ref _reply, null)?.Dispose();
        }

        private void OnCancel(object? sender, ConsoleCancelEventArgs e)
        {
            if (Volatile.Read(ref _reply) is { } reply)
            {
                e.Cancel = true;
                try
                {
                    reply.Cancel();
                }
                catch (ObjectDisposedException)
                {
                    // The reply has just ended.
                }
            }
        }

        public void Dispose() => Console.CancelKeyPress -= OnCancel;
    }
}

using System.CommandLine;
using System.Text;
using ManagedLM.Gguf;
using ManagedLM.Tokenization;

namespace ManagedLM.Cli.Commands;

/// <summary>`managedlm tokenize [--model FILE] ("text" | --file F)`: the token ids of a text, as a prompt would be encoded.</summary>
internal static class TokenizeCommand
{
    public static Command Create()
    {
        var text = new Argument<string?>("text") { Description = "Text to tokenize.", Arity = ArgumentArity.ZeroOrOne };
        var model = new Option<string?>("--model", "-m")
        {
            Description = $"GGUF file (.gguf or .gguf.gz); only its tokenizer is read. Default: ${ModelLocator.EnvironmentVariable}, then ../shared/models/stories260K.gguf.",
        };
        var file = new Option<string?>("--file", "-f") { Description = "Tokenize this file's bytes (read as UTF-8) instead of the text argument." };
        var noBos = new Option<bool>("--no-bos") { Description = "Add no BOS/EOS tokens (the model's add_bos/add_eos otherwise decide)." };
        var parseSpecial = new Option<bool>("--parse-special") { Description = "Turn control tokens written in the text (e.g. <|im_start|>) into their ids." };
        var pieces = new Option<bool>("--pieces") { Description = "Print one token per line: id and piece." };
        var command = new CliCommand("tokenize", "Print the token ids of a text.",
        [
            new("Token ids of a text, with BOS when the model adds it", "managedlm tokenize -m model.gguf \"Hello world\""),
            new("One token per line with its piece; control tokens written in the text become their ids",
                "managedlm tokenize -m model.gguf --pieces --parse-special \"<|im_start|>user\""),
            new("A file's text, without BOS/EOS", "managedlm tokenize -m model.gguf --no-bos --file prompt.txt"),
        ])
        {
            text, model, file, noBos, parseSpecial, pieces,
        };
        command.SetAction(parse =>
        {
            string? inline = parse.GetValue(text);
            string? path = parse.GetValue(file);
            if (inline is null && path is null)
                throw new ArgumentException("Nothing to tokenize: give the text as an argument or a file with --file.");
            if (inline is not null && path is not null)
                throw new ArgumentException("Give the text either as an argument or with --file, not both.");
            var tokenizer = LoadTokenizer(ModelLocator.Resolve(parse.GetValue(model)));
            string input = inline ?? new UTF8Encoding(false, false).GetString(File.ReadAllBytes(path!));
            int[] ids = tokenizer.Encode(input, addSpecialTokens: !parse.GetValue(noBos), parseSpecialTokens: parse.GetValue(parseSpecial));
            Write(tokenizer, ids, parse.GetValue(pieces), parse.InvocationConfiguration.Output);
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>Reads only the metadata of a .gguf (memory-mapped) or .gguf.gz file and builds its tokenizer.</summary>
    public static Tokenizer LoadTokenizer(string path)
    {
        using var gguf = GgufFile.OpenOrUnzip(path);
        return Tokenizer.FromGguf(gguf.Metadata);
    }

    public static void Write(Tokenizer tokenizer, int[] ids, bool pieces, TextWriter output)
    {
        if (!pieces)
        {
            output.WriteLine(string.Join(' ', ids));
            return;
        }
        foreach (int id in ids)
            output.WriteLine($"{id,6} -> '{tokenizer.TokenToPiece(id)}'");
    }
}

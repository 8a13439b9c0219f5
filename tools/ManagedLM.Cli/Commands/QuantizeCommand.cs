using System.CommandLine;
using ManagedLM.Quantization;

namespace ManagedLM.Cli.Commands;

/// <summary>`managedlm quantize IN OUT --type T`: llama-quantize's per-tensor mix with the reference quantizers (<see cref="ModelQuantizer"/>).</summary>
internal static class QuantizeCommand
{
    public static Command Create()
    {
        var input = new Argument<string>("in") { Description = "Source GGUF model (.gguf or .gguf.gz)." };
        var output = new Argument<string>("out") { Description = "GGUF file to write." };
        var type = ConversionCli.FileType();
        type.Required = true;
        var tokenEmbd = ConversionCli.TokenEmbeddingType();
        var outputType = ConversionCli.OutputTensorType();
        var requantize = new Option<bool>("--allow-requantize") { Description = "Allow quantized source tensors to be quantized again." };
        var threads = ConversionCli.Threads();
        var command = new Command("quantize", "Quantize a GGUF model with llama.cpp's per-tensor type mix.")
        {
            input, output, type, tokenEmbd, outputType, requantize, threads,
        };
        command.SetAction(parse => ConversionCli.Execute("quantize", parse, log =>
        {
            var options = ConversionCli.Options(parse.GetValue(type)!, parse.GetValue(tokenEmbd), parse.GetValue(outputType),
                parse.GetValue(threads), parse.GetValue(requantize));
            string outPath = parse.GetValue(output)!;
            return (outPath, options.FileType, ModelQuantizer.QuantizeFile(parse.GetValue(input)!, outPath, options, ConversionCli.Progress(log)));
        }));
        return command;
    }
}

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
        var command = new CliCommand("quantize", "Quantize a GGUF model with llama.cpp's per-tensor type mix.",
        [
            new("Q4_K_M of an F32 or F16 model", "managedlm quantize model-f16.gguf model-Q4_K_M.gguf --type Q4_K_M"),
            new("Q8_0 with the output matrix kept at F16, on 4 threads", "managedlm quantize model-f16.gguf model-Q8_0.gguf --type Q8_0 --output-tensor-type F16 -t 4"),
            new("Requantize a Q8_0 model to Q4_0, keeping token_embd at Q8_0", "managedlm quantize model-Q8_0.gguf model-Q4_0.gguf --type Q4_0 --allow-requantize --token-embedding-type Q8_0"),
        ])
        {
            input, output, type, tokenEmbd, outputType, requantize, threads,
        };
        command.SetAction(parse => ConversionCli.Execute(parse, progress =>
        {
            var options = ConversionCli.Options(parse.GetValue(type)!, parse.GetValue(tokenEmbd), parse.GetValue(outputType),
                parse.GetValue(threads), parse.GetValue(requantize));
            string outPath = parse.GetValue(output)!;
            try
            {
                return (outPath, options.FileType, ModelQuantizer.QuantizeFile(ModelLocator.NotADirectory(parse.GetValue(input)!), outPath, options, progress));
            }
            catch (InvalidOperationException e)
            {
                // The one InvalidOperationException QuantizeFile documents: requantizing without --allow-requantize, a usage error.
                throw new ArgumentException(e.Message, e);
            }
        }));
        return command;
    }
}

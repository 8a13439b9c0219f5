using System.Collections.Immutable;
using ManagedLM.Gguf;
using ManagedLM.Kernels;

namespace ManagedLM.Quantization;

/// <summary>
/// Re-types the tensors of a GGUF model as llama.cpp's <c>llama-quantize</c> does: tensors in llama.cpp's order, each
/// given the type <see cref="QuantizationMix"/> chooses, dequantized to F32 a chunk of rows at a time and quantized with
/// the reference quantizers (byte for byte as ggml's); a tensor already of its new type is copied. The metadata is
/// copied in order with <c>general.quantization_version</c> and <c>general.file_type</c> moved to the end (as
/// <c>gguf_set_val</c> re-adds them) and the split keys removed.
/// </summary>
public static class ModelQuantizer
{
    private static readonly ImmutableArray<string> SplitKeys = ["split.no", "split.count", "split.tensors.count"];

    /// <summary>Writes the quantized model to <paramref name="output"/> (left open).</summary>
    /// <exception cref="NotSupportedException">A tensor type that cannot be read or written, or a model the mix does not cover.</exception>
    /// <exception cref="InvalidOperationException">A quantized tensor would be requantized without <see cref="QuantizationOptions.AllowRequantize"/>.</exception>
    public static unsafe ConversionSummary Quantize(GgufFile source, Stream output, QuantizationOptions options, TensorProgress? progress = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(options);
        var plan = QuantizationMix.Plan(options, MixModel.FromMetadata(source.Metadata), source.Tensors.Select(GgufTensorSpec.From));
        foreach (var target in plan)
        {
            var from = source.GetTensor(target.Name);
            if (from.Type == target.Type)
                continue;
            if (!Dequantize.Supports(from.Type))
                throw new NotSupportedException($"Tensor \"{from.Name}\": reading {GgmlTypes.Name(from.Type)} is not supported.");
            if (!Kernels.Quantize.Supports(target.Type))
                throw new NotSupportedException($"Tensor \"{from.Name}\": writing {GgmlTypes.Name(target.Type)} is not supported.");
            if (IsBlockQuantized(from.Type) && !options.AllowRequantize)
                throw new InvalidOperationException(
                    $"Tensor \"{from.Name}\" is {GgmlTypes.Name(from.Type)}: requantizing to {GgmlTypes.Name(target.Type)} loses precision; allow it explicitly (--allow-requantize).");
        }

        using var writer = new QuantizingWriter(output, Metadata(source.Metadata, options.FileType), plan, options.Threads, progress);
        foreach (var target in plan)
        {
            var from = source.GetTensor(target.Name);
            byte* data = source.GetTensorPointer(from);
            if (from.Type == target.Type)
            {
                writer.WriteRaw(data);
                continue;
            }
            long rowBytes = GgmlTypes.RowBytes(from.Type, from.Columns);
            writer.WriteRows((first, rows) =>
            {
                long bytes = rows.Length / from.Columns * rowBytes;
                Dequantize.Row(from.Type, new ReadOnlySpan<byte>(data + first * rowBytes, checked((int)bytes)), rows);
            });
        }
        return writer.Finish();
    }

    /// <summary>Quantizes the file at <paramref name="inputPath"/> (.gguf, or .gguf.gz) into <paramref name="outputPath"/>.</summary>
    public static ConversionSummary QuantizeFile(string inputPath, string outputPath, QuantizationOptions options, TensorProgress? progress = null)
    {
        using var source = GgufFile.OpenOrUnzip(inputPath);
        return ConversionOutput.WriteFile(outputPath, stream => Quantize(source, stream, options, progress));
    }

    /// <summary>The output metadata: the source's pairs in order, less the split keys, then the quantization version (2) and the file type.</summary>
    public static List<KeyValuePair<string, GgufValue>> Metadata(GgufMetadata source, LlamaFileType fileType)
    {
        ArgumentNullException.ThrowIfNull(source);
        var pairs = source.ToKeyValueList();
        pairs.RemoveAll(p => SplitKeys.Contains(p.Key) || p.Key is ConversionOutput.QuantizationVersionKey or ConversionOutput.FileTypeKey);
        ConversionOutput.AddFileType(pairs, fileType);
        return pairs;
    }

    private static bool IsBlockQuantized(GgmlType type) => GgmlTypes.BlockSize(type) > 1;
}

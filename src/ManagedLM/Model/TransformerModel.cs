using System.Globalization;
using ManagedLM.Gguf;
using ManagedLM.Kernels;
using ManagedLM.Tokenization;

namespace ManagedLM.Model;

/// <summary>
/// A loaded model: configuration and weights (memory-mapped from the GGUF file). Immutable after
/// <see cref="Load(string, ModelOptions?)"/> and safe to share between any number of threads; all per-request state lives
/// in the generators created from it (<c>model.CreateGenerator()</c>, ManagedLM.Generation).
/// </summary>
public sealed class TransformerModel : IDisposable
{
    private readonly GgufFile _file;

    public ModelConfig Config { get; }
    public ModelWeights Weights { get; }
    /// <summary>The model's tokenizer, built from its GGUF metadata.</summary>
    public Tokenizer Tokenizer { get; }
    /// <summary>The file's metadata (tokenizer, chat template, provenance).</summary>
    public GgufMetadata Metadata => _file.Metadata;
    /// <summary>The file the model was loaded from (null when loaded from memory).</summary>
    public string? Path => _file.Path;
    /// <summary>
    /// The model's id in APIs: its file's name without the extension (and without a split's <c>-00001-of-0000N</c>), else its
    /// <c>general.name</c>, else "managedlm".
    /// </summary>
    public string Name => Path is { } file ? SplitName(System.IO.Path.GetFileNameWithoutExtension(file)) : Metadata.GetStringOrNull("general.name") ?? "managedlm";

    private string SplitName(string name) =>
        _file.SplitCount > 1 && name.Length > 15 && name[^15] == '-' && name.AsSpan(name.Length - 9, 4).SequenceEqual("-of-") ? name[..^15] : name;
    /// <summary>Largest context a generator may use.</summary>
    public int MaxContextLength { get; }
    internal ModelRope Rope { get; }
    /// <summary>Identifies the weights (tensor names, types, shapes, offsets, file size): saved generator state only loads into the same model.</summary>
    internal ulong Fingerprint { get; }

    private TransformerModel(GgufFile file, ModelConfig config, ModelWeights weights, ModelOptions options)
    {
        _file = file;
        Config = config;
        Weights = weights;
        Tokenizer = Tokenizer.FromGguf(file.Metadata);
        if (Tokenizer.VocabSize != Config.VocabSize)
            throw new GgufFormatException(file.DataOffset, $"the tokenizer has {Tokenizer.VocabSize} tokens but the model's vocabulary is {Config.VocabSize}");
        int max = options.MaxContextLength ?? Config.ContextLength;
        if (max <= 0)
            throw new ArgumentOutOfRangeException(nameof(options), max, "MaxContextLength must be positive.");
        MaxContextLength = max;
        Fingerprint = ComputeFingerprint(file);
        Rope = new ModelRope(Config, Weights, file.Metadata);
        if (options.Progress is { } progress)
            ReadIn(file, Weights.Matrices.Where(m => m.FileBytesReleased).Select(m => m.TensorName).ToHashSet(), progress);
        WarmsUp = options.WarmUp;
    }

    /// <summary><see cref="ModelOptions.WarmUp"/>: the first generator of this model runs its kernels once first.</summary>
    internal bool WarmsUp { get; }

    // Touches one byte per page of the tensor data still read (not the pages given back after repacking, which
    // loading has read already), reporting progress about every 1%.
    private static unsafe void ReadIn(GgufFile file, HashSet<string> released, IProgress<double> progress)
    {
        var tensors = file.Tensors.Where(t => !released.Contains(t.Name)).ToList();
        long total = tensors.Sum(t => t.ByteSize), done = 0, reported = 0;
        int sum = 0;
        progress.Report(0);
        foreach (var t in tensors)
        {
            byte* p = file.GetTensorPointer(t);
            for (long i = 0; i < t.ByteSize; i += 4096)
                sum += p[i];
            done += t.ByteSize;
            if (done - reported >= total / 100)
            {
                reported = done;
                progress.Report((double)done / total);
            }
        }
        GC.KeepAlive(sum);
        progress.Report(1);
    }

    /// <summary>Loads a GGUF model: one file, or a split model (<c>NAME-00001-of-0000N.gguf</c> ...) given its first split (<see cref="GgufFile.OpenModel"/>).</summary>
    /// <exception cref="GgufFormatException">The file is malformed or lacks a required key or tensor.</exception>
    /// <exception cref="NotSupportedException">The architecture or a tensor type is not supported.</exception>
    /// <exception cref="FileNotFoundException">The file, or a split of a split model, does not exist.</exception>
    public static TransformerModel Load(string path, ModelOptions? options = null) => Load(GgufFile.OpenModel(path), options);

    /// <summary>
    /// Loads a GGUF model held in memory (an embedded resource, a download): the bytes are pinned, not copied, and must
    /// not change while the model is in use. <see cref="Path"/> is null and <see cref="Name"/> comes from <c>general.name</c>.
    /// </summary>
    /// <exception cref="GgufFormatException">The bytes are malformed or lack a required key or tensor.</exception>
    /// <exception cref="NotSupportedException">The architecture or a tensor type is not supported.</exception>
    public static TransformerModel Load(ReadOnlyMemory<byte> bytes, ModelOptions? options = null) => Load(GgufFile.Parse(bytes), options);

    private static TransformerModel Load(GgufFile file, ModelOptions? options)
    {
        options ??= ModelOptions.Default;
        ModelWeights? weights = null;
        try
        {
            var config = ModelConfig.FromGguf(file);
            weights = ModelWeights.Load(file, config, options.RepackWeights, options.LargePages);
            return new TransformerModel(file, config, weights, options);
        }
        catch
        {
            weights?.Arena?.Dispose(); // the copies of a model that failed to load go at once, not with a finalizer
            file.Dispose();
            throw;
        }
    }

    // FNV-1a over the tensor table and the file size.
    private static ulong ComputeFingerprint(GgufFile file)
    {
        ulong h = 0xcbf29ce484222325UL;
        void Mix(ulong v)
        {
            for (int i = 0; i < 8; i++, v >>= 8)
                h = (h ^ (v & 0xFF)) * 0x100000001b3UL;
        }
        Mix((ulong)file.FileSize);
        foreach (var t in file.Tensors)
        {
            foreach (char ch in t.Name)
                Mix(ch);
            Mix((ulong)t.Type);
            Mix((ulong)t.FileOffset);
            foreach (long d in t.Shape)
                Mix((ulong)d);
        }
        return h;
    }

    /// <summary>Unmaps the file and frees the weights' copies. Generators of this model must not be used afterwards.</summary>
    public void Dispose()
    {
        _file.Dispose();
        Weights.Arena?.Dispose();
    }
}

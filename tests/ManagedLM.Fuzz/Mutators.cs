using System.Buffers.Binary;
using System.Text;
using ManagedLM.Gguf;
using ManagedLM.Kernels;

namespace ManagedLM.Fuzz;

/// <summary>The kinds of damage a case does to its seed.</summary>
public enum MutationKind
{
    /// <summary>The file cut short, at a field boundary or anywhere.</summary>
    Truncation,
    /// <summary>Bits flipped in the header, metadata or tensor infos.</summary>
    MetadataByteFlip,
    /// <summary>A count, length, offset, type id or scalar overwritten with 0, 2^31−1, 2^62, 2^64−1, ...</summary>
    FieldOverwrite,
    /// <summary>A metadata key or tensor name that appears twice.</summary>
    DuplicateKey,
    /// <summary>A tensor's data offset out of range, misaligned or overlapping another.</summary>
    TensorOffset,
    /// <summary>A tensor's dimensions zero, huge, swapped, dropped or too many.</summary>
    TensorDims,
    /// <summary>A tensor's type id unknown, unsupported or of another size.</summary>
    TensorType,
    /// <summary>A key, string or tensor name length of 2^62 and the like.</summary>
    HugeStringLength,
    /// <summary>An array count far past the file.</summary>
    HugeArrayCount,
    /// <summary>NaN, ±∞, zero, negative, tiny or huge float hyper-parameters.</summary>
    FloatHyperParameter,
    /// <summary>Zero, negative, off-by-one or huge integer hyper-parameters (block_count 2^31−1, ...).</summary>
    IntHyperParameter,
    /// <summary>A value of the wrong type (a string for a count, nested arrays, ...).</summary>
    ValueType,
    /// <summary>NaN, ±∞ or huge values written into tensor data (norms, an embedding row, block scales).</summary>
    NonFiniteWeights,
    /// <summary>Deep (the reproductions), broken or damaged real chat templates.</summary>
    ChatTemplate,
    /// <summary>Tokenizer metadata: duplicate, empty or invalid tokens, bad types, scores, merges, ids, model names.</summary>
    TokenizerMetadata,
}

/// <summary>One case's file and what was done to it.</summary>
public sealed record FuzzInput(long Index, string Seed, MutationKind Kind, string Description, byte[] Bytes);

/// <summary>Builds the file of a case: a pure function of (campaign seed, case index) and the corpus.</summary>
internal static class Mutators
{
    public static readonly MutationKind[] Kinds = Enum.GetValues<MutationKind>();

    // The kinds that edit the image by meaning (the others work on the written bytes).
    private static readonly MutationKind[] StructuralKinds = Kinds.Except(
        [MutationKind.Truncation, MutationKind.MetadataByteFlip, MutationKind.FieldOverwrite, MutationKind.HugeStringLength, MutationKind.HugeArrayCount]).ToArray();

    private static readonly ulong[] Special64 =
    [
        0, 1, 2, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x100000000, 1UL << 40, 1UL << 62, long.MaxValue, 1UL << 63, ulong.MaxValue,
    ];

    private static readonly uint[] Special32 = [0, 1, 2, 13, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF];

    private static readonly float[] SpecialFloats =
    [
        float.NaN, -float.NaN, float.PositiveInfinity, float.NegativeInfinity, 0f, -0f, -1f, -1e-5f, float.Epsilon,
        1e-38f, 1e-30f, 1e30f, float.MaxValue, -float.MaxValue, 0.5f, 2f,
    ];

    public static FuzzInput Create(FuzzCorpus corpus, ulong seed, long index)
    {
        var rng = FuzzRandom.ForCase(seed, index);
        var kind = Kinds[index % Kinds.Length];
        var source = rng.Pick(corpus.Seeds);
        var image = source.Image.Clone();
        // One case in five first takes a second, structure-aware edit: damage that only shows in combination.
        string? first = null;
        if (rng.Chance(20))
        {
            var other = rng.Pick(StructuralKinds);
            first = $"{other}: {Edit(other, image, corpus, rng)}; then ";
        }
        var (description, bytes) = kind switch
        {
            MutationKind.Truncation => Truncate(image, rng),
            MutationKind.MetadataByteFlip => FlipBits(image, rng),
            MutationKind.FieldOverwrite => OverwriteField(image, rng),
            MutationKind.HugeStringLength => OverwriteLength(image, rng),
            MutationKind.HugeArrayCount => OverwriteArrayCount(image, rng),
            _ => (Edit(kind, image, corpus, rng), null),
        };
        return new FuzzInput(index, source.Name, kind, first + description, bytes ?? image.Serialize());
    }

    private static string Edit(MutationKind kind, GgufImage image, FuzzCorpus corpus, FuzzRandom rng) => kind switch
    {
        MutationKind.DuplicateKey => DuplicateKey(image, rng),
        MutationKind.TensorOffset => TensorOffset(image, rng),
        MutationKind.TensorDims => TensorDims(image, rng),
        MutationKind.TensorType => TensorType(image, rng),
        MutationKind.FloatHyperParameter => FloatHyperParameter(image, rng),
        MutationKind.IntHyperParameter => IntHyperParameter(image, rng),
        MutationKind.ValueType => ValueType(image, rng),
        MutationKind.NonFiniteWeights => NonFiniteWeights(image, rng),
        MutationKind.ChatTemplate => ChatTemplates.Mutate(image, corpus.Templates, rng),
        MutationKind.TokenizerMetadata => TokenizerMetadata(image, rng),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    // ---- byte-level mutators: the serialized file and its field map ----

    private static (string, byte[]) Truncate(GgufImage image, FuzzRandom rng)
    {
        var fields = new List<Field>();
        byte[] bytes = image.Serialize(fields);
        int cut = rng.Next(3) switch
        {
            0 => rng.Pick(fields) is var f ? f.Offset + rng.Next(f.Size + 1) : 0,
            1 => bytes.Length - rng.Next(1, Math.Min(bytes.Length, 4096)),
            _ => rng.Next(bytes.Length),
        };
        return ($"cut to {cut} of {bytes.Length} bytes", bytes[..cut]);
    }

    private static (string, byte[]) FlipBits(GgufImage image, FuzzRandom rng)
    {
        var fields = new List<Field>();
        byte[] bytes = image.Serialize(fields);
        int end = fields.Max(f => f.Offset + f.Size);
        int flips = rng.Next(1, 9);
        var at = new List<string>();
        for (int i = 0; i < flips; i++)
        {
            int p = rng.Chance(60) && rng.Pick(fields) is var f ? f.Offset + rng.Next(f.Size) : rng.Next(end);
            int bit = rng.Next(8);
            bytes[p] ^= (byte)(1 << bit);
            at.Add($"{p}.{bit}");
        }
        return ($"flipped bits (byte.bit) {string.Join(' ', at)} in the first {end} bytes", bytes);
    }

    private static (string, byte[]) OverwriteField(GgufImage image, FuzzRandom rng)
    {
        var fields = new List<Field>();
        byte[] bytes = image.Serialize(fields);
        var f = rng.Pick(fields);
        return (Overwrite(bytes, f, rng, []), bytes);
    }

    private static (string, byte[]) OverwriteLength(GgufImage image, FuzzRandom rng)
    {
        var fields = new List<Field>();
        byte[] bytes = image.Serialize(fields);
        var f = rng.Pick(fields.Where(f => f.Kind is FieldKind.StringLength or FieldKind.KeyLength or FieldKind.TensorNameLength).ToList());
        ulong old = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(f.Offset));
        ulong left = (ulong)(bytes.Length - f.Offset - 8);
        return (Overwrite(bytes, f, rng, [1UL << 62, 1UL << 62, old + 1, left, left + 1, (ulong)bytes.Length]), bytes);
    }

    private static (string, byte[]) OverwriteArrayCount(GgufImage image, FuzzRandom rng)
    {
        var fields = new List<Field>();
        byte[] bytes = image.Serialize(fields);
        var counts = fields.Where(f => f.Kind == FieldKind.ArrayCount).ToList();
        if (counts.Count == 0)
            return ("no array to grow (unchanged)", bytes);
        var f = rng.Pick(counts);
        ulong old = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(f.Offset));
        return (Overwrite(bytes, f, rng, [1UL << 62, 1UL << 28, old + 1, old * 2, (ulong)bytes.Length, (ulong)bytes.Length / 8 + 1]), bytes);
    }

    // Writes a special value (or one of `extra`, or a random one) into field f.
    private static string Overwrite(byte[] bytes, Field f, FuzzRandom rng, ulong[] extra)
    {
        if (f.Size == 8)
        {
            ulong v = rng.Next(4) switch
            {
                0 when extra.Length > 0 => rng.Pick(extra),
                1 => rng.NextUInt64(),
                _ => rng.Pick(Special64),
            };
            ulong old = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(f.Offset));
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(f.Offset), v);
            return $"{f.Kind} at byte {f.Offset}: {old} -> {v}";
        }
        ulong value = rng.Chance(30) ? rng.NextUInt64() : rng.Pick(Special32);
        ulong before = 0;
        for (int i = f.Size - 1; i >= 0; i--)
            before = before << 8 | bytes[f.Offset + i];
        for (int i = 0; i < f.Size; i++)
            bytes[f.Offset + i] = (byte)(value >> (8 * i));
        return $"{f.Kind} at byte {f.Offset} ({f.Size} bytes): {before} -> {value & (f.Size == 4 ? 0xFFFFFFFFUL : (1UL << (8 * f.Size)) - 1)}";
    }

    // ---- structure-aware mutators: edit the image, the file is written afterwards ----

    private static string DuplicateKey(GgufImage image, FuzzRandom rng)
    {
        switch (rng.Next(4))
        {
            case 0:
            {
                int i = rng.Next(image.Entries.Count), at = rng.Next(image.Entries.Count + 1);
                image.Entries.Insert(at, image.Entries[i]);
                return $"metadata \"{image.Entries[at].KeyText}\" repeated at pair {at}";
            }
            case 1:
            {
                int i = rng.Next(image.Entries.Count), j = rng.Next(image.Entries.Count);
                image.Entries[j] = image.Entries[j] with { Key = image.Entries[i].Key };
                return $"metadata pair {j} renamed to \"{image.Entries[i].KeyText}\" (pair {i})";
            }
            case 2 when image.Tensors.Count > 0:
            {
                int i = rng.Next(image.Tensors.Count);
                image.Tensors.Insert(rng.Next(image.Tensors.Count + 1), image.Tensors[i]);
                return $"tensor info \"{image.Tensors[i].NameText}\" repeated";
            }
            default:
            {
                if (image.Tensors.Count == 0)
                    return "no tensors to rename (unchanged)";
                int i = rng.Next(image.Tensors.Count), j = rng.Next(image.Tensors.Count);
                image.Tensors[j] = image.Tensors[j] with { Name = image.Tensors[i].Name };
                return $"tensor {j} renamed to \"{image.Tensors[i].NameText}\"";
            }
        }
    }

    private static string TensorOffset(GgufImage image, FuzzRandom rng)
    {
        int i = rng.Next(image.Tensors.Count);
        var t = image.Tensors[i];
        ulong data = (ulong)image.Data.Length, align = image.Alignment;
        ulong[] choices =
        [
            0, image.Tensors[rng.Next(image.Tensors.Count)].Offset, t.Offset + 1, t.Offset + align, data, data - 1, data + align,
            data - align, 1UL << 31, 1UL << 32, 1UL << 62, long.MaxValue, 1UL << 63, ulong.MaxValue, rng.NextUInt64(),
        ];
        ulong v = rng.Pick(choices);
        image.Tensors[i] = t with { Offset = v };
        return $"tensor \"{t.NameText}\" offset {t.Offset} -> {v} (data section {data} bytes)";
    }

    private static string TensorDims(GgufImage image, FuzzRandom rng)
    {
        int i = rng.Next(image.Tensors.Count);
        var t = image.Tensors[i];
        var dims = t.Dims.ToList();
        string what;
        switch (rng.Next(5))
        {
            case 0 when dims.Count > 1:
                (dims[0], dims[1]) = (dims[1], dims[0]);
                what = "swapped dims 0 and 1";
                break;
            case 1 when dims.Count > 0:
                dims.RemoveAt(rng.Next(dims.Count));
                what = "dropped a dim";
                break;
            case 2:
                int add = rng.Next(1, 5);
                for (int k = 0; k < add; k++)
                    dims.Add(rng.Chance(70) ? 1UL : (ulong)rng.Next(2, 5));
                what = $"added {add} dims";
                break;
            default:
                if (dims.Count == 0)
                    dims.Add(1);
                int d = rng.Next(dims.Count);
                ulong old = dims[d];
                dims[d] = rng.Next(3) switch
                {
                    0 => rng.Pick(Special64),
                    1 => old + (ulong)rng.Next(1, 3) - (rng.Chance(50) ? 0UL : 3UL),
                    _ => old * 2,
                };
                what = $"dim {d} {old} -> {dims[d]}";
                break;
        }
        image.Tensors[i] = t with { Dims = [.. dims] };
        return $"tensor \"{t.NameText}\" [{string.Join(", ", t.Dims)}]: {what} -> [{string.Join(", ", dims)}]";
    }

    private static string TensorType(GgufImage image, FuzzRandom rng)
    {
        int i = rng.Next(image.Tensors.Count);
        var t = image.Tensors[i];
        uint v = rng.Next(3) switch
        {
            0 => (uint)rng.Next(42),
            1 => (uint)rng.Pick(Enum.GetValues<GgmlType>()),
            _ => rng.Pick(Special32),
        };
        image.Tensors[i] = t with { Type = v };
        return $"tensor \"{t.NameText}\" type {GgmlTypes.Name((GgmlType)t.Type)} -> {GgmlTypes.Name((GgmlType)v)}";
    }

    private static string FloatHyperParameter(GgufImage image, FuzzRandom rng)
    {
        string arch = image.Architecture;
        string key = rng.Pick([
            $"{arch}.attention.layer_norm_rms_epsilon", $"{arch}.attention.layer_norm_rms_epsilon", $"{arch}.rope.freq_base",
            $"{arch}.rope.freq_base", $"{arch}.rope.scaling.factor", $"{arch}.rope.scale_linear", $"{arch}.attention.layer_norm_epsilon",
        ]);
        float v = rng.Chance(85) ? rng.Pick(SpecialFloats) : BitConverter.Int32BitsToSingle((int)rng.NextUInt64());
        GgufValue value = rng.Next(10) switch
        {
            < 7 => GgufValue.Of(v),
            < 9 => GgufValue.Of((double)v),
            _ => GgufValue.Of(float.IsFinite(v) ? (int)Math.Clamp(v, int.MinValue, int.MaxValue) : -1),
        };
        image.Set(key, value);
        if (key.EndsWith("scaling.factor", StringComparison.Ordinal) && rng.Chance(70))
            image.Set($"{arch}.rope.scaling.type", GgufValue.Of("linear"));
        return $"{key} = {value.Describe()} ({value.Type})";
    }

    private static string IntHyperParameter(GgufImage image, FuzzRandom rng)
    {
        string arch = image.Architecture;
        string key = rng.Pick([
            $"{arch}.block_count", $"{arch}.block_count", $"{arch}.embedding_length", $"{arch}.feed_forward_length",
            $"{arch}.attention.head_count", $"{arch}.attention.head_count_kv", $"{arch}.context_length", $"{arch}.vocab_size",
            $"{arch}.attention.key_length", $"{arch}.attention.value_length", $"{arch}.rope.dimension_count",
            "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
            "tokenizer.ggml.padding_token_id", GgufFile.AlignmentKey,
        ]);
        long current = image.Find(key) is { } e && e.Type is not (GgufValueType.String or GgufValueType.Array or GgufValueType.Float32 or GgufValueType.Float64)
            ? ReadInteger(e) : 64;
        long v = rng.Pick([0L, 1, 2, 3, 7, -1, int.MinValue, 1L << 27, int.MaxValue, 1L << 31, uint.MaxValue, 1L << 62,
            current + 1, current - 1, current * 2, current / 2, current + 1, current - 1]);
        GgufValue value = rng.Next(8) switch
        {
            0 => GgufValue.Of(v),
            1 => GgufValue.Of((ulong)v),
            2 => GgufValue.Of((int)v),
            3 => GgufValue.Of((byte)v),
            4 => GgufValue.Of((short)v),
            _ => GgufValue.Of((uint)v),
        };
        image.Set(key, value);
        return $"{key} = {value.Describe()} ({value.Type}; was {current})";
    }

    private static long ReadInteger(RawEntry e)
    {
        var span = e.TypedValue.AsSpan(4);
        return e.Type switch
        {
            GgufValueType.UInt8 => span[0], GgufValueType.Int8 => (sbyte)span[0], GgufValueType.Bool => span[0],
            GgufValueType.UInt16 => BinaryPrimitives.ReadUInt16LittleEndian(span), GgufValueType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(span),
            GgufValueType.UInt32 => BinaryPrimitives.ReadUInt32LittleEndian(span), GgufValueType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(span),
            _ => BinaryPrimitives.ReadInt64LittleEndian(span),
        };
    }

    private static string ValueType(GgufImage image, FuzzRandom rng)
    {
        int i = rng.Next(image.Entries.Count);
        var e = image.Entries[i];
        if (e.Type == GgufValueType.Array && rng.Chance(30))
        {
            // The element type changes, the payload stays: the items are read as another type.
            byte[] v = (byte[])e.TypedValue.Clone();
            uint element = (uint)rng.Next(14);
            BinaryPrimitives.WriteUInt32LittleEndian(v.AsSpan(4), element);
            image.Entries[i] = e with { TypedValue = v };
            return $"\"{e.KeyText}\": array element type -> {element}, items kept";
        }
        GgufValue value = rng.Next(9) switch
        {
            0 => GgufValue.Of(""),
            1 => GgufValue.Of("llama"),
            2 => GgufValue.Of(7),
            3 => GgufValue.Of(1.5f),
            4 => GgufValue.Of(true),
            5 => GgufValue.Of(GgufArray.Of([1, 2, 3])),
            6 => GgufValue.Of(GgufArray.Of(["a", "b"])),
            7 => GgufValue.Of(new GgufArray(GgufValueType.Float32, Array.Empty<float>())),
            _ => GgufValue.Of(Nested(rng.Next(1, 12))),
        };
        image.Entries[i] = e with { TypedValue = GgufImage.Encode(value) };
        return $"\"{e.KeyText}\" ({e.Type}) -> {value.Describe()} ({value.Type})";
    }

    private static GgufArray Nested(int depth) =>
        depth == 1 ? GgufArray.Of([1]) : GgufArray.Of([Nested(depth - 1)]);

    private static string NonFiniteWeights(GgufImage image, FuzzRandom rng)
    {
        // Mostly the tensors every token reads (norms, the embedding, the output), sometimes any.
        var preferred = image.Tensors.Where(t => t.NameText.Contains("norm", StringComparison.Ordinal) || t.NameText.StartsWith("token_embd", StringComparison.Ordinal)
            || t.NameText.StartsWith("output", StringComparison.Ordinal) || t.NameText.Contains("bias", StringComparison.Ordinal)).ToList();
        var t = rng.Chance(70) && preferred.Count > 0 ? rng.Pick(preferred) : rng.Pick(image.Tensors);
        var type = (GgmlType)t.Type;
        if (Size(t) is not (long elements, long bytes) || t.Offset > (ulong)image.Data.Length || (long)t.Offset + bytes > image.Data.Length)
            return $"tensor \"{t.NameText}\" has no valid data (unchanged)"; // an earlier edit broke its type, shape or offset
        byte[] data = (byte[])image.Data.Clone();
        image.Data = data;
        var tensor = data.AsSpan((int)t.Offset, (int)bytes);
        float v = rng.Pick([float.NaN, float.NaN, float.PositiveInfinity, float.NegativeInfinity, float.MaxValue, 65504f]);
        long columns = t.Dims.Length > 0 ? (long)t.Dims[0] : 1;
        long rows = columns == 0 ? 0 : elements / columns;
        string where;
        (long first, long count) = rng.Next(4) switch
        {
            0 => (0L, 1L),
            1 => (rng.Next((int)Math.Max(1, Math.Min(elements, int.MaxValue))), 1L),
            2 when rows > 0 => (rng.Next((int)Math.Min(rows, int.MaxValue)) * columns, columns), // one row: one token's embedding
            _ => (0L, elements),
        };
        where = count == elements ? "every element" : count == 1 ? $"element {first}" : $"row {first / Math.Max(1, columns)}";
        int written = WriteValue(type, tensor, first, count, v);
        return written == 0 ? $"tensor \"{t.NameText}\" ({GgmlTypes.Name(type)}): no element written (unchanged)"
            : $"tensor \"{t.NameText}\" ({GgmlTypes.Name(type)}) {where} = {v} ({written} values)";
    }

    // Elements and bytes of a tensor, or null when its type or shape (as an earlier edit may have left it) has none.
    private static (long Elements, long Bytes)? Size(RawTensor t)
    {
        if (!GgmlTypes.IsKnown(t.Type) || t.Dims.Any(d => d > int.MaxValue))
            return null;
        long elements = 1;
        foreach (ulong d in t.Dims)
        {
            if (d != 0 && elements > int.MaxValue / (long)d)
                return null;
            elements *= (long)d;
        }
        if (elements % GgmlTypes.BlockSize((GgmlType)t.Type) != 0)
            return null;
        return (elements, GgmlTypes.RowBytes((GgmlType)t.Type, elements));
    }

    // Writes v over elements [first, first + count): floats directly, and for block types the block scale (an F16 at a fixed
    // offset in each block) of the blocks those elements fall in. Returns how many values were written.
    private static int WriteValue(GgmlType type, Span<byte> tensor, long first, long count, float v)
    {
        int written = 0;
        switch (type)
        {
            case GgmlType.F32:
                for (long e = first; e < first + count && (e + 1) * 4 <= tensor.Length; e++, written++)
                    BinaryPrimitives.WriteSingleLittleEndian(tensor[(int)(e * 4)..], v);
                return written;
            case GgmlType.F16:
                for (long e = first; e < first + count && (e + 1) * 2 <= tensor.Length; e++, written++)
                    BinaryPrimitives.WriteHalfLittleEndian(tensor[(int)(e * 2)..], (Half)v);
                return written;
            case GgmlType.BF16:
                for (long e = first; e < first + count && (e + 1) * 2 <= tensor.Length; e++, written++)
                    BinaryPrimitives.WriteUInt16LittleEndian(tensor[(int)(e * 2)..], (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16));
                return written;
        }
        int scaleAt = type switch
        {
            GgmlType.Q2_K => 80, GgmlType.Q3_K => 108, GgmlType.Q6_K => 208, _ => 0,
        };
        int blockSize = GgmlTypes.BlockSize(type), blockBytes = GgmlTypes.BlockBytes(type);
        for (long b = first / blockSize; b <= (first + count - 1) / blockSize && b * blockBytes + scaleAt + 2 <= tensor.Length; b++, written++)
            BinaryPrimitives.WriteHalfLittleEndian(tensor[(int)(b * blockBytes + scaleAt)..], (Half)v);
        return written;
    }

    private static string TokenizerMetadata(GgufImage image, FuzzRandom rng)
    {
        const string p = "tokenizer.ggml.";
        string[] tokens = image.Find(p + "tokens") is { Type: GgufValueType.Array } e && Decode(e) is { Length: > 0 } t ? t : ["a", "b"];
        int n = tokens.Length;
        switch (rng.Next(9))
        {
            case 0:
            {
                string[] edited = (string[])tokens.Clone();
                int i = rng.Next(n);
                string what;
                (edited[i], what) = rng.Next(5) switch
                {
                    0 => (edited[rng.Next(n)], "a copy of another token"),
                    1 => ("", "empty"),
                    2 => (new string('x', 20000), "20000 chars"),
                    3 => ("\uD800", "a lone surrogate"),
                    _ => ("<|im_start|>", "<|im_start|>"),
                };
                image.Set(p + "tokens", GgufValue.Of(GgufArray.Of(edited)));
                return $"token {i} -> {what}";
            }
            case 1:
            {
                int keep = rng.Pick([0, 1, n - 1, n + 1, n / 2]);
                var edited = tokens.Take(keep).Concat(Enumerable.Range(0, Math.Max(0, keep - n)).Select(k => $"<extra{k}>")).ToArray();
                image.Set(p + "tokens", GgufValue.Of(GgufArray.Of(edited)));
                return $"tokens: {n} -> {edited.Length}";
            }
            case 2:
            {
                int[] types = [.. Enumerable.Range(0, rng.Chance(80) ? n : rng.Next(n)).Select(_ => rng.Chance(90) ? 1 : rng.Pick([-1, 0, 2, 3, 4, 5, 6, 7, 1000, int.MinValue]))];
                image.Set(p + "token_type", GgufValue.Of(GgufArray.Of(types)));
                return $"token_type: {types.Length} entries, odd values mixed in";
            }
            case 3:
            {
                float[] scores = [.. Enumerable.Range(0, rng.Chance(80) ? n : rng.Next(n)).Select(k => rng.Chance(80) ? -k : rng.Pick(SpecialFloats))];
                image.Set(p + "scores", GgufValue.Of(GgufArray.Of(scores)));
                return $"scores: {scores.Length} entries, NaN/∞ mixed in";
            }
            case 4:
            {
                var merges = Enumerable.Range(0, rng.Next(1, 200)).Select(_ => rng.Next(6) switch
                {
                    0 => "",
                    1 => tokens[rng.Next(n)],
                    2 => $"{tokens[rng.Next(n)]} {tokens[rng.Next(n)]} {tokens[rng.Next(n)]}",
                    3 => "x y",
                    _ => $"{tokens[rng.Next(n)]} {tokens[rng.Next(n)]}",
                }).ToArray();
                image.Set(p + "merges", GgufValue.Of(GgufArray.Of(merges)));
                return $"merges: {merges.Length} random entries";
            }
            case 5:
            {
                string model = rng.Pick(["gpt2", "llama", "bert", "", "none", "t5"]);
                image.Set(p + "model", GgufValue.Of(model));
                return $"tokenizer.ggml.model = \"{model}\"";
            }
            case 6:
            {
                string pre = rng.Pick(["qwen2", "llama-bpe", "gpt-2", "deepseek-llm", "unknown-pre", "", "default"]);
                image.Set(p + "pre", GgufValue.Of(pre));
                return $"tokenizer.ggml.pre = \"{pre}\"";
            }
            case 7:
            {
                string key = p + rng.Pick(["bos_token_id", "eos_token_id", "eot_token_id", "unknown_token_id", "padding_token_id"]);
                var value = rng.Chance(50) ? GgufValue.Of(rng.Pick([-1, n, n - 1, int.MaxValue, int.MinValue]))
                    : GgufValue.Of(rng.Pick([(uint)n, uint.MaxValue, 0u]));
                image.Set(key, value);
                if (rng.Chance(50))
                    image.Set(p + rng.Pick(["add_bos_token", "add_eos_token", "add_space_prefix"]), GgufValue.Of(rng.Chance(50)));
                return $"{key} = {value.Describe()} ({value.Type})";
            }
            default:
            {
                string key = p + rng.Pick(["tokens", "scores", "token_type", "merges", "model"]);
                image.Entries.RemoveAll(x => x.KeyText == key);
                return $"removed {key}";
            }
        }
    }

    // The strings of an array value (null when an earlier edit left it something else): a file holding just this pair,
    // read by the library.
    private static string[]? Decode(RawEntry e)
    {
        var image = new GgufImage();
        image.Entries.Add(new RawEntry(Encoding.UTF8.GetBytes("k"), e.TypedValue));
        try
        {
            using var file = GgufFile.Parse(image.Serialize());
            return file.Metadata.GetArrayOrNull<string>("k");
        }
        catch (GgufFormatException)
        {
            return null;
        }
    }
}

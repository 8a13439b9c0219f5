using ManagedLM.Sampling;

namespace ManagedLM.Synthesis;

/// <summary>How a synthetic tensor's normal draws n become values.</summary>
public enum SyntheticTensorKind
{
    /// <summary>Weight matrix: <c>(float)(std · n)</c>.</summary>
    Matrix,

    /// <summary>RMSNorm weight: <c>(float)(1 + 0.1 · n)</c>.</summary>
    NormWeight,

    /// <summary>Bias: <c>(float)(std · n)</c> (0.2 in the fixtures but bert's, 0.1).</summary>
    Bias,

    /// <summary>Scaled RMSNorm weight (Gemma's post-norms): <c>(float)(std · (1 + 0.1 · n))</c>.</summary>
    ScaledNormWeight,
}

/// <summary>
/// Deterministic random tensors, bit-exact with the generator that made the synthetic GGUF fixtures
/// (../shared/models/synthetic/README.md, "How they were made"). Each tensor has its own stream,
/// so its values depend only on (seed, name, element count, kind, std):
/// FNV-1a 64 of the name XOR seed feeds splitmix64, whose first four outputs seed xoshiro256**;
/// uniforms u = (next() &gt;&gt; 11)·2⁻⁵³ give normals by Box–Muller in double
/// (u1 = 1 − u from one draw, u2 = u from the next; r·cos(2πu2), then r·sin(2πu2)).
/// Values are in GGUF storage order (ne0 fastest).
/// </summary>
public static class SyntheticWeights
{
    /// <summary>FNV-1a 64 of the UTF-8 bytes of <paramref name="name"/>.</summary>
    public static ulong NameHash(string name)
    {
        ulong h = 0xcbf29ce484222325UL;
        foreach (byte b in System.Text.Encoding.UTF8.GetBytes(name))
        {
            h ^= b;
            h *= 0x100000001b3UL;
        }
        return h;
    }

    /// <summary>
    /// Fills <paramref name="dst"/> with the values of tensor <paramref name="name"/> drawn from <paramref name="seed"/>;
    /// <paramref name="std"/> scales <see cref="SyntheticTensorKind.Matrix"/> and <see cref="SyntheticTensorKind.ScaledNormWeight"/> values and is ignored for the other kinds.
    /// </summary>
    public static void Fill(ulong seed, string name, SyntheticTensorKind kind, double std, Span<float> dst) =>
        new SyntheticTensorStream(seed, name, kind, std).Fill(dst);

    /// <summary>The <paramref name="count"/> values of tensor <paramref name="name"/>.</summary>
    public static float[] Generate(ulong seed, string name, int count, SyntheticTensorKind kind, double std = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var values = new float[count];
        Fill(seed, name, kind, std, values);
        return values;
    }

    /// <summary>
    /// Kind and std the fixtures use for a GGUF tensor name: norms (<c>*_norm.weight</c>) and biases
    /// (<c>*.bias</c>) by suffix; matrices by role: attn_q/attn_k 0.08, attn_v/attn_output/ffn_* 0.12,
    /// token_embd 0.1, output 0.2.
    /// </summary>
    public static (SyntheticTensorKind Kind, double Std) ForTensor(string name) => ForTensor(name, "llama");

    /// <summary>
    /// Kind and std for a tensor of an <paramref name="architecture"/>, as in its synthetic fixture: <see cref="ForTensor(string)"/>,
    /// and the second wave's: attn_qkv 0.08 (its q and k rows; the synthesizer draws the v rows at 0.12), the router
    /// ffn_gate_inp 0.15, experts (ffn_*_exps) 0.12; gemma2 attn_q/attn_k 0.12; Gemma's token_embd 0.2; granite
    /// attn_q/attn_k 0.25 and output 1.5 (unit-scale scores and logits after its 1/64 and 1/8 multipliers); bert attn_q/attn_k
    /// 0.3, the embeddings (token, position, token type) 0.1, other matrices 0.2, biases 0.1 · n.
    /// </summary>
    public static (SyntheticTensorKind Kind, double Std) ForTensor(string name, string architecture)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.EndsWith(".bias", StringComparison.Ordinal))
            return (SyntheticTensorKind.Bias, architecture == "bert" ? 0.1 : 0.2);
        if (name.EndsWith("_norm.weight", StringComparison.Ordinal))
            return (SyntheticTensorKind.NormWeight, 0);
        string role = name.EndsWith(".weight", StringComparison.Ordinal) ? name[..^".weight".Length] : name;
        role = role[(role.LastIndexOf('.') + 1)..];
        double std = (role, architecture) switch
        {
            ("attn_q" or "attn_k", "bert") => 0.3,
            ("token_embd" or "position_embd" or "token_types", "bert") => 0.1,
            (_, "bert") => 0.2,
            ("attn_q" or "attn_k", "gemma2") => 0.12,
            ("attn_q" or "attn_k", "granite") => 0.25,
            ("attn_q" or "attn_k" or "attn_qkv", _) => 0.08,
            ("attn_v" or "attn_output" or "ffn_gate" or "ffn_up" or "ffn_down", _) => 0.12,
            ("ffn_gate_exps" or "ffn_up_exps" or "ffn_down_exps", _) => 0.12,
            ("ffn_gate_inp", _) => 0.15,
            ("token_embd", "gemma2" or "gemma3") => 0.2,
            ("token_embd", _) => 0.1,
            ("output", "granite") => 1.5,
            ("output", _) => 0.2,
            _ => throw new ArgumentException($"No synthetic std for tensor '{name}'.", nameof(name)),
        };
        return (SyntheticTensorKind.Matrix, std);
    }
}

/// <summary>
/// The values of one synthetic tensor in storage order, produced in pieces: consecutive <see cref="Fill(Span{float})"/>
/// calls continue where the previous one stopped, so a huge tensor can be generated row chunk by row chunk
/// with the same values as <see cref="SyntheticWeights.Fill"/> gives in one call.
/// </summary>
public sealed class SyntheticTensorStream
{
    private readonly SyntheticTensorKind _kind;
    private readonly double _std;
    private NormalStream _normals;

    /// <summary>Starts the stream of tensor <paramref name="name"/> (see <see cref="SyntheticWeights.Fill"/>).</summary>
    public SyntheticTensorStream(ulong seed, string name, SyntheticTensorKind kind, double std)
    {
        ArgumentNullException.ThrowIfNull(name);
        _kind = kind;
        _std = std;
        _normals = new NormalStream(seed ^ SyntheticWeights.NameHash(name));
    }

    /// <summary>Writes the next <paramref name="dst"/>.Length values.</summary>
    public void Fill(Span<float> dst) => Fill(dst, _std);

    /// <summary>Writes the next <paramref name="dst"/>.Length values with <paramref name="std"/> in place of the stream's (a fused tensor's parts).</summary>
    public void Fill(Span<float> dst, double std)
    {
        switch (_kind)
        {
            case SyntheticTensorKind.Matrix:
                for (int i = 0; i < dst.Length; i++)
                    dst[i] = (float)(std * _normals.Next());
                break;
            case SyntheticTensorKind.NormWeight:
                for (int i = 0; i < dst.Length; i++)
                    dst[i] = (float)(1 + 0.1 * _normals.Next());
                break;
            case SyntheticTensorKind.ScaledNormWeight:
                for (int i = 0; i < dst.Length; i++)
                    dst[i] = (float)(std * (1 + 0.1 * _normals.Next()));
                break;
            default:
                for (int i = 0; i < dst.Length; i++)
                    dst[i] = (float)(std * _normals.Next());
                break;
        }
    }

    // Normals in Box–Muller pairs from xoshiro256** seeded by splitmix64.
    private struct NormalStream(ulong seed)
    {
        private Xoshiro256 _rng = new(seed);
        private double _spare;
        private bool _hasSpare;

        public double Next()
        {
            if (_hasSpare)
            {
                _hasSpare = false;
                return _spare;
            }
            double u1 = 1 - _rng.NextDouble();
            double u2 = _rng.NextDouble();
            double r = Math.Sqrt(-2 * Math.Log(u1));
            double angle = 2 * Math.PI * u2;
            _spare = r * Math.Sin(angle);
            _hasSpare = true;
            return r * Math.Cos(angle);
        }
    }
}

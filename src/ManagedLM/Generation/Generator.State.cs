using System.Text;
using ManagedLM.Inference;
using ManagedLM.Kernels;
using ManagedLM.Sampling;

namespace ManagedLM.Generation;

public sealed partial class Generator
{
    private static ReadOnlySpan<byte> StateMagic => "MLMSTATE"u8;
    private const uint StateVersion = 1;

    /// <summary>
    /// A new generator with this one's tokens, KV cache, logits and sampler state: two continuations of
    /// one prefix, each computing only what comes after it. The fork has this generator's options
    /// (or <paramref name="sampling"/>, for a different sampler).
    /// </summary>
    public Generator Fork(SamplingOptions? sampling = null)
    {
        Enter();
        try
        {
            var fork = new Generator(Model, sampling is null ? Options : Options with { Sampling = sampling });
            _cache.CopyTo(fork._cache, Position);
            fork._tokens.AddRange(_tokens);
            fork._exactPrefix = _exactPrefix;
            fork._hasLogits = _hasLogits;
            if (_hasLogits)
                _state.Logits.AsSpan().CopyTo(fork._state.Logits);
            if (sampling is null)
                fork.Sampler.State = Sampler.State;
            return fork;
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>
    /// Writes the tokens, KV cache, logits and sampler RNG state to <paramref name="stream"/> in a
    /// versioned binary format that <see cref="LoadState"/> reads back into a generator of the same model.
    /// </summary>
    public void SaveState(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        Enter();
        try
        {
            using var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
            var c = Model.Config;
            w.Write(StateMagic);
            w.Write(StateVersion);
            w.Write(Model.Fingerprint);
            w.Write(c.VocabSize);
            w.Write(c.BlockCount);
            w.Write(_cache.RowLength);
            w.Write((byte)_cache.Type);
            w.Write(Position);
            foreach (int t in _tokens)
                w.Write(t);
            w.Write(_hasLogits);
            if (_hasLogits)
                w.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(_state.Logits.AsSpan()));
            var rng = Sampler.State;
            w.Write(Sampler.Seed);
            w.Write(rng.S0);
            w.Write(rng.S1);
            w.Write(rng.S2);
            w.Write(rng.S3);
            var rows = new byte[(long)Position * _cache.RowBytes];
            for (int l = 0; l < c.BlockCount; l++)
            {
                _cache.ReadRows(l, values: false, Position, rows);
                w.Write(rows);
                _cache.ReadRows(l, values: true, Position, rows);
                w.Write(rows);
            }
            w.Write(StateMagic);
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>
    /// Replaces this generator's tokens, KV cache, logits and RNG state with those saved by
    /// <see cref="SaveState"/>. Everything is read and checked before anything changes: on an
    /// exception the generator is as it was.
    /// </summary>
    /// <exception cref="InvalidDataException">Not a saved state, an unsupported version, another model's state, or truncated.</exception>
    /// <exception cref="ArgumentException">The saved sequence is longer than this generator's context.</exception>
    public void LoadState(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        Enter();
        try
        {
            var saved = ReadState(stream);
            TrimCore(0);
            _cache.EnsureCapacity(saved.Tokens.Length);
            var source = new KvCache(saved.CacheType, Model.Config.BlockCount, _cache.Layout, Math.Max(1, saved.Tokens.Length), Math.Max(1, saved.Tokens.Length));
            for (int l = 0; l < Model.Config.BlockCount; l++)
            {
                source.WriteRows(l, values: false, saved.Tokens.Length, saved.Keys[l]);
                source.WriteRows(l, values: true, saved.Tokens.Length, saved.Values[l]);
            }
            source.CopyTo(_cache, saved.Tokens.Length);
            _tokens.AddRange(saved.Tokens);
            _exactPrefix = saved.Tokens.Length; // a restored session is taken as given
            _hasLogits = saved.Logits is not null;
            saved.Logits?.CopyTo(_state.Logits, 0);
            if (Sampler.Seed != saved.Seed)
                Sampler = new SamplerChain(Sampler.Options with { Seed = saved.Seed }, Model.Config.VocabSize);
            Sampler.State = saved.Rng;
        }
        finally
        {
            Exit();
        }
    }

    private sealed record SavedState(int[] Tokens, float[]? Logits, ulong Seed, SamplerState Rng, KvCacheType CacheType, byte[][] Keys, byte[][] Values);

    private SavedState ReadState(Stream stream)
    {
        var c = Model.Config;
        using var r = new BinaryReader(stream, Encoding.UTF8, leaveOpen: true);
        try
        {
            if (!r.ReadBytes(StateMagic.Length).AsSpan().SequenceEqual(StateMagic))
                throw new InvalidDataException("Not a ManagedLM generator state (bad magic).");
            uint version = r.ReadUInt32();
            if (version != StateVersion)
                throw new InvalidDataException($"Generator state version {version} is not supported (this build reads version {StateVersion}).");
            if (r.ReadUInt64() != Model.Fingerprint || r.ReadInt32() != c.VocabSize || r.ReadInt32() != c.BlockCount || r.ReadInt32() != _cache.RowLength)
                throw new InvalidDataException("The generator state was saved from a different model.");
            byte type = r.ReadByte();
            if (type > (byte)KvCacheType.Q4_0)
                throw new InvalidDataException($"Unknown KV cache type {type} in the generator state.");
            var cacheType = (KvCacheType)type;
            if (cacheType is KvCacheType.Q8_0 or KvCacheType.Q4_0 && _cache.RowLength % KvQuantLayout.QuantBlock != 0)
                throw new InvalidDataException($"The generator state holds a {cacheType} cache, which this model's rows of {_cache.RowLength} values cannot have.");
            int position = r.ReadInt32();
            if (position < 0)
                throw new InvalidDataException($"Invalid token count {position} in the generator state.");
            if (position > ContextLength)
                throw new ArgumentException($"The saved state holds {position} tokens; this generator's context length is {ContextLength}.", nameof(stream));
            var tokens = new int[position];
            for (int i = 0; i < position; i++)
            {
                tokens[i] = r.ReadInt32();
                if ((uint)tokens[i] >= (uint)c.VocabSize)
                    throw new InvalidDataException($"Token id {tokens[i]} in the generator state is outside the vocabulary [0, {c.VocabSize}).");
            }
            float[]? logits = null;
            if (r.ReadBoolean())
            {
                logits = new float[c.VocabSize];
                ReadExactly(r, System.Runtime.InteropServices.MemoryMarshal.AsBytes(logits.AsSpan()));
            }
            ulong seed = r.ReadUInt64();
            var rng = new SamplerState(r.ReadUInt64(), r.ReadUInt64(), r.ReadUInt64(), r.ReadUInt64());
            long rowBytes = KvCache.RowBytesOf(cacheType, _cache.RowLength);
            var keys = new byte[c.BlockCount][];
            var values = new byte[c.BlockCount][];
            for (int l = 0; l < c.BlockCount; l++)
            {
                keys[l] = new byte[(long)position * rowBytes];
                ReadExactly(r, keys[l]);
                values[l] = new byte[(long)position * rowBytes];
                ReadExactly(r, values[l]);
            }
            if (!r.ReadBytes(StateMagic.Length).AsSpan().SequenceEqual(StateMagic))
                throw new InvalidDataException("The generator state does not end where expected.");
            return new SavedState(tokens, logits, seed, rng, cacheType, keys, values);
        }
        catch (EndOfStreamException)
        {
            throw new InvalidDataException("The generator state is truncated.");
        }
    }

    private static void ReadExactly(BinaryReader r, Span<byte> buffer)
    {
        for (int total = 0; total < buffer.Length;)
        {
            int n = r.Read(buffer[total..]);
            if (n == 0)
                throw new EndOfStreamException();
            total += n;
        }
    }
}

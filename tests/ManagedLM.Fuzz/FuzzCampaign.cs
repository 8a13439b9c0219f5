using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;

namespace ManagedLM.Fuzz;

/// <summary>What a campaign runs: which cases, on how many threads, for how long.</summary>
public sealed record FuzzOptions
{
    /// <summary>The campaign seed: case i is a pure function of (Seed, i).</summary>
    public ulong Seed { get; init; } = 1;
    /// <summary>The first case index.</summary>
    public long FirstCase { get; init; }
    /// <summary>How many cases to run; null: until <see cref="Duration"/> has passed.</summary>
    public long? Cases { get; init; }
    /// <summary>How long to run; null: until <see cref="Cases"/> have run.</summary>
    public TimeSpan? Duration { get; init; }
    /// <summary>Cases run in parallel, one per thread.</summary>
    public int Threads { get; init; } = 1;
    /// <summary>Stack size of the worker threads in bytes (0: the runtime's default).</summary>
    public int ThreadStackBytes { get; init; }
    /// <summary>A case still running after this long is a hang: a bad outcome that ends the campaign.</summary>
    public TimeSpan CaseTimeout { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>Where the seeds and the known-good model are; null: ../shared/models beside the repository.</summary>
    public string? ModelsDirectory { get; init; }
    /// <summary>
    /// When set, worker w writes the case it is about to run to this path + ".w" (seed, index, mutation), so that a
    /// process death names its case.
    /// </summary>
    public string? CurrentCaseFile { get; init; }
    /// <summary>Where progress lines go (about every 10 s), or null.</summary>
    public TextWriter? Progress { get; init; }
}

/// <summary>What a campaign did: cases, outcomes by result, cases by mutation kind, and every bad outcome.</summary>
public sealed class FuzzSummary
{
    internal readonly ConcurrentDictionary<string, long> OutcomeCounts = new();
    internal readonly ConcurrentDictionary<MutationKind, long> KindCounts = new();
    internal readonly ConcurrentQueue<CaseOutcome> BadQueue = new();
    internal long CaseCount, LoadedCount;
    private readonly List<CaseOutcome> _slowest = [];

    /// <summary>Cases run.</summary>
    public long Cases => Interlocked.Read(ref CaseCount);
    /// <summary>Cases whose file loaded as a model (whatever happened next).</summary>
    public long Loaded => Interlocked.Read(ref LoadedCount);
    /// <summary>Cases by result: "generated", "generated, chat turn", or the clean exception's type name.</summary>
    public IReadOnlyDictionary<string, long> Outcomes => OutcomeCounts;
    /// <summary>Cases by mutation kind.</summary>
    public IReadOnlyDictionary<MutationKind, long> Kinds => KindCounts;
    /// <summary>Bad outcomes: an unexpected exception type, a hang, an unusable generator or known-good model afterwards.</summary>
    public IReadOnlyList<CaseOutcome> Bad => [.. BadQueue];
    /// <summary>Wall time of the campaign.</summary>
    public TimeSpan Elapsed { get; internal set; }

    internal void Add(CaseOutcome o)
    {
        Interlocked.Increment(ref CaseCount);
        if (o.Loaded)
            Interlocked.Increment(ref LoadedCount);
        OutcomeCounts.AddOrUpdate(o.Bad ? "BAD" : o.Result, 1, (_, n) => n + 1);
        KindCounts.AddOrUpdate(o.Input.Kind, 1, (_, n) => n + 1);
        if (o.Bad)
            BadQueue.Enqueue(o);
        lock (_slowest)
        {
            if (_slowest.Count < SlowestKept || o.Duration > _slowest[^1].Duration)
            {
                _slowest.Add(o);
                _slowest.Sort((a, b) => b.Duration.CompareTo(a.Duration));
                if (_slowest.Count > SlowestKept)
                    _slowest.RemoveAt(SlowestKept);
            }
        }
    }

    private const int SlowestKept = 5;

    /// <summary>The slowest cases, slowest first.</summary>
    public IReadOnlyList<CaseOutcome> Slowest
    {
        get
        {
            lock (_slowest)
                return [.. _slowest];
        }
    }

    /// <summary>Counts by outcome and kind, then each bad outcome in full.</summary>
    public override string ToString()
    {
        var s = new StringBuilder();
        s.AppendLine($"{Cases} cases in {Elapsed.TotalSeconds:F1} s ({Cases / Math.Max(Elapsed.TotalSeconds, 1e-9):F0}/s), {Loaded} loaded as a model, {Bad.Count} bad outcomes");
        s.AppendLine("outcomes:");
        foreach (var (result, n) in Outcomes.OrderByDescending(kv => kv.Value))
            s.AppendLine($"  {n,8}  {result}");
        s.AppendLine("mutation kinds:");
        foreach (var (kind, n) in Kinds.OrderBy(kv => kv.Key))
            s.AppendLine($"  {n,8}  {kind}");
        s.AppendLine("slowest cases:");
        foreach (var slow in Slowest)
            s.AppendLine($"  {slow.Duration.TotalMilliseconds,8:F0} ms  case {slow.Input.Index} ({slow.Input.Kind}, {slow.Input.Seed}) -> {slow.Result}");
        foreach (var bad in Bad)
            s.AppendLine("BAD " + bad.Report());
        return s.ToString();
    }
}

/// <summary>Runs cases on worker threads with a watchdog for hangs.</summary>
public static class FuzzCampaign
{
    /// <summary>Runs the campaign the options describe and returns its summary.</summary>
    public static FuzzSummary Run(FuzzOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Cases is null && options.Duration is null)
            throw new ArgumentException("Give a number of cases or a duration.", nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Threads, 1);
        string models = options.ModelsDirectory ?? FuzzSeeds.DefaultModelsDirectory();
        var corpus = FuzzSeeds.Load(models);
        using var runner = new CaseRunner(File.ReadAllBytes(Path.Combine(models, "stories260K.gguf")));
        var summary = new FuzzSummary();
        var clock = Stopwatch.StartNew();
        long next = options.FirstCase - 1, end = options.Cases is long n ? options.FirstCase + n : long.MaxValue;
        var running = new (FuzzInput? Input, long Started)[options.Threads];
        bool stop = false;

        var workers = Enumerable.Range(0, options.Threads).Select(w => new Thread(() =>
        {
            using var current = options.CurrentCaseFile is { } path ? new FileStream($"{path}.{w}", FileMode.Create, FileAccess.Write, FileShare.Read) : null;
            while (!Volatile.Read(ref stop))
            {
                long index = Interlocked.Increment(ref next);
                if (index >= end || (options.Duration is { } d && clock.Elapsed >= d))
                    return;
                FuzzInput input;
                try
                {
                    input = Mutators.Create(corpus, options.Seed, index);
                }
                catch (Exception e)
                {
                    var unbuilt = new FuzzInput(index, "?", Mutators.Kinds[index % Mutators.Kinds.Length], "(the fuzzer failed to build this case)", []);
                    summary.Add(new CaseOutcome(unbuilt, $"the fuzzer itself failed: {e.GetType().Name}: {e.Message}", Bad: true, e, Loaded: false));
                    continue;
                }
                if (current is not null)
                    WriteCurrent(current, options.Seed, input);
                lock (running)
                    running[w] = (input, Stopwatch.GetTimestamp());
                var outcome = runner.Run(input);
                lock (running)
                    running[w] = (null, 0);
                summary.Add(outcome);
            }
        }, options.ThreadStackBytes) { IsBackground = true, Name = $"fuzz worker {w}" }).ToList();
        workers.ForEach(t => t.Start());

        var reported = TimeSpan.Zero;
        int badReported = 0;
        while (workers.Any(t => t.IsAlive))
        {
            Thread.Sleep(100);
            lock (running)
            {
                foreach (var (input, started) in running)
                {
                    if (input is not null && Stopwatch.GetElapsedTime(started) > options.CaseTimeout)
                    {
                        summary.Add(new CaseOutcome(input, $"still running after {options.CaseTimeout.TotalSeconds:F0} s (a hang); the campaign stops", Bad: true, null, Loaded: false));
                        Volatile.Write(ref stop, true);
                    }
                }
            }
            if (Volatile.Read(ref stop))
                break; // a hung worker never returns: leave it (a background thread) and report
            var bad = summary.Bad;
            for (; options.Progress is { } log && badReported < bad.Count; badReported++)
                log.WriteLine("BAD " + bad[badReported].Report());
            if (options.Progress is { } progress && clock.Elapsed - reported >= TimeSpan.FromSeconds(10))
            {
                reported = clock.Elapsed;
                progress.WriteLine($"{clock.Elapsed:hh\\:mm\\:ss}  {summary.Cases} cases, {summary.Loaded} loaded, {summary.Bad.Count} bad");
            }
        }
        foreach (var t in workers)
            t.Join(Volatile.Read(ref stop) ? TimeSpan.FromSeconds(1) : Timeout.InfiniteTimeSpan);
        summary.Elapsed = clock.Elapsed;
        return summary;
    }

    /// <summary>Runs case <paramref name="index"/> of campaign <paramref name="seed"/> alone (to reproduce a report).</summary>
    public static CaseOutcome RunOne(ulong seed, long index, string modelsDirectory, string? saveTo = null)
    {
        var corpus = FuzzSeeds.Load(modelsDirectory);
        var input = Mutators.Create(corpus, seed, index);
        if (saveTo is not null)
            File.WriteAllBytes(saveTo, input.Bytes);
        using var runner = new CaseRunner(File.ReadAllBytes(Path.Combine(modelsDirectory, "stories260K.gguf")));
        return runner.Run(input);
    }

    /// <summary>The case of (<paramref name="seed"/>, <paramref name="index"/>): its file and what was done to it.</summary>
    public static FuzzInput CreateCase(ulong seed, long index, string modelsDirectory) =>
        Mutators.Create(FuzzSeeds.Load(modelsDirectory), seed, index);

    private static void WriteCurrent(FileStream file, ulong seed, FuzzInput input)
    {
        byte[] line = Encoding.UTF8.GetBytes($"--seed {seed} --case {input.Index}  ({input.Kind}, {input.Seed}): {Shorten(input.Description)}\n");
        file.SetLength(0);
        file.Write(line);
        file.Flush();
    }

    private static string Shorten(string s) => s.Length <= 300 ? s : s[..300] + "...";
}

using System.Globalization;
using ManagedLM.Fuzz;

// dotnet run --project tests/ManagedLM.Fuzz -c Release -- --duration 4m [--seed N] [--threads N]
//   runs cases until the time is up, prints progress and a summary; exit code 1 on any bad outcome.
// dotnet run --project tests/ManagedLM.Fuzz -c Release -- --seed S --case I [--save FILE]
//   runs one case (to reproduce a report) and prints its mutation, outcome and stack; --save writes its file.
const string Usage = """
    usage: ManagedLM.Fuzz (--duration 4m | --cases N) [--seed N] [--threads N] [--first-case I] [--case-timeout 60s] [--models DIR] [--current FILE]
           ManagedLM.Fuzz --seed S --case I [--save FILE] [--models DIR]
    """;

try
{
    var args_ = new Queue<string>(args);
    ulong? seed = null;
    long? single = null, cases = null;
    long first = 0;
    TimeSpan? duration = null;
    var timeout = TimeSpan.FromSeconds(60);
    int threads = Math.Max(1, Environment.ProcessorCount);
    string? models = null, save = null;
    string current = Path.Combine(Path.GetTempPath(), "managedlm-fuzz-current");
    while (args_.Count > 0)
    {
        string flag = args_.Dequeue();
        string Value() => args_.Count > 0 ? args_.Dequeue() : throw new ArgumentException($"{flag} needs a value.");
        switch (flag)
        {
            case "--seed": seed = ulong.Parse(Value(), CultureInfo.InvariantCulture); break;
            case "--case": single = long.Parse(Value(), CultureInfo.InvariantCulture); break;
            case "--cases": cases = long.Parse(Value(), CultureInfo.InvariantCulture); break;
            case "--first-case": first = long.Parse(Value(), CultureInfo.InvariantCulture); break;
            case "--duration": duration = ParseDuration(Value()); break;
            case "--case-timeout": timeout = ParseDuration(Value()); break;
            case "--threads": threads = int.Parse(Value(), CultureInfo.InvariantCulture); break;
            case "--models": models = Value(); break;
            case "--current": current = Value(); break;
            case "--save": save = Value(); break;
            case "-h" or "--help": Console.WriteLine(Usage); return 0;
            default: throw new ArgumentException($"Unknown option {flag}.");
        }
    }
    models ??= FuzzSeeds.DefaultModelsDirectory();

    if (single is long index)
    {
        ulong s = seed ?? throw new ArgumentException("--case needs the --seed of its campaign.");
        var outcome = FuzzCampaign.RunOne(s, index, models, save);
        Console.WriteLine($"seed {s} {outcome.Report()}");
        if (!outcome.Bad && outcome.Error is not null)
            Console.WriteLine($"  {outcome.Error.Message}");
        return outcome.Bad ? 1 : 0;
    }
    if (cases is null && duration is null)
        throw new ArgumentException("Give --duration or --cases (or --seed S --case I for one case).");

    var options = new FuzzOptions
    {
        Seed = seed ?? (ulong)Random.Shared.NextInt64(1, long.MaxValue), FirstCase = first, Cases = cases, Duration = duration,
        Threads = threads, CaseTimeout = timeout, ModelsDirectory = models, CurrentCaseFile = current, Progress = Console.Out,
    };
    Console.WriteLine($"fuzzing with --seed {options.Seed} on {threads} threads; each worker's current case is in {current}.<worker>");
    Console.WriteLine($"reproduce a case with: dotnet run --project tests/ManagedLM.Fuzz -c Release -- --seed {options.Seed} --case I");
    var summary = FuzzCampaign.Run(options);
    Console.Write(summary);
    return summary.Bad.Count == 0 ? 0 : 1;
}
catch (Exception e) when (e is ArgumentException or FormatException or OverflowException or IOException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    Console.Error.WriteLine(Usage);
    return 2;
}

// 90, 90s, 4m, 1h, 1h30m
static TimeSpan ParseDuration(string text)
{
    if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double seconds))
        return TimeSpan.FromSeconds(seconds);
    var total = TimeSpan.Zero;
    int start = 0;
    for (int i = 0; i < text.Length; i++)
    {
        if (char.IsDigit(text[i]) || text[i] == '.')
            continue;
        double n = double.Parse(text.AsSpan(start, i - start), CultureInfo.InvariantCulture);
        total += text[i] switch
        {
            'h' => TimeSpan.FromHours(n),
            'm' => TimeSpan.FromMinutes(n),
            's' => TimeSpan.FromSeconds(n),
            _ => throw new FormatException($"Bad duration \"{text}\": use e.g. 90s, 4m or 1h30m."),
        };
        start = i + 1;
    }
    return start == text.Length && total > TimeSpan.Zero ? total : throw new FormatException($"Bad duration \"{text}\": use e.g. 90s, 4m or 1h30m.");
}

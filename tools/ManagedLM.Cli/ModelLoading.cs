using ManagedLM.Model;
using Spectre.Console;

namespace ManagedLM.Cli;

/// <summary>
/// Loads the model of a command. When the log (stderr) is a terminal, the weights are read in under a progress bar, so
/// that the first token does not wait on the disk; otherwise the model is mapped as is and nothing is printed.
/// <c>maxContextLength</c> lets generators go past the model's training context (as llama.cpp's n_ctx may); commands that warm
/// up the generator they measure pass <c>warmUp: false</c> (see <see cref="ModelOptions.WarmUp"/>); <c>repack: false</c> keeps
/// the products on the file's layout (see <see cref="ModelOptions.RepackWeights"/>), <c>largePages: false</c> on the file's
/// mapping (see <see cref="ModelOptions.LargePages"/>).
/// </summary>
internal static class ModelLoading
{
    public static TransformerModel Load(string path, TextWriter? log, int? maxContextLength = null, bool warmUp = true, bool repack = true,
        bool largePages = true)
    {
        if (log is null || !Terminal.IsInteractive(log))
            return TransformerModel.Load(path, new ModelOptions { MaxContextLength = maxContextLength, WarmUp = warmUp, RepackWeights = repack, LargePages = largePages });
        return Terminal.For(log).Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(context =>
            {
                var task = context.AddTask($"Loading {Markup.Escape(Path.GetFileName(path))}", maxValue: 1);
                return TransformerModel.Load(path, new ModelOptions
                {
                    MaxContextLength = maxContextLength, WarmUp = warmUp, RepackWeights = repack, LargePages = largePages, Progress = new Callback(fraction => task.Value = fraction),
                });
            });
    }

    // Reports on the loading thread (Progress<T> would post to the thread pool and could report after loading ends).
    private sealed class Callback(Action<double> report) : IProgress<double>
    {
        public void Report(double value) => report(value);
    }
}

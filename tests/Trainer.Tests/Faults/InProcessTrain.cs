using Trainer.Commands;
using Trainer.Training;

namespace Trainer.Tests.Faults;

/// <summary>`Trainer train` inside the test process (no agent, one rank), with what it prints on stdout and stderr.</summary>
internal static class InProcessTrain
{
    private static readonly Lock ConsoleLock = new();

    /// <summary>A tiny synthetic recipe that finishes in seconds; <paramref name="overrides"/> (option, value pairs) replace its values.</summary>
    public static IReadOnlyList<string> Tiny(string output, params string[] overrides)
    {
        var options = new Dictionary<string, string>
        {
            ["--preset"] = "quick", ["--dataset"] = "synthetic", ["--limit-train"] = "64", ["--limit-valid"] = "32", ["--bs"] = "16",
            // torch's thread count is global to the process: keep it, so tests running beside this one stay bit-reproducible.
            ["--epochs"] = "2", ["--output"] = output, ["--threads"] = $"{TorchSharp.torch.get_num_threads()}",
        };
        for (var i = 0; i + 1 < overrides.Length; i += 2)
            options[overrides[i]] = overrides[i + 1];
        return [.. options.SelectMany(o => new[] { o.Key, o.Value })];
    }

    public static (TrainOptions? Options, IReadOnlyList<string> Errors) Bind(IEnumerable<string> args) =>
        TrainCommand.Bind(TrainCommand.Create().Parse([.. args]));

    public static (int ExitCode, string Output, string Error) Run(IEnumerable<string> args)
    {
        var (options, errors) = Bind(args);
        Assert.True(errors.Count == 0, string.Join("\n", errors));
        return Run(options!);
    }

    public static (int ExitCode, string Output, string Error) Run(TrainOptions options)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        lock (ConsoleLock)
        {
            var originalError = Console.Error;
            Console.SetError(TextWriter.Synchronized(error));
            try
            {
                var exitCode = TrainCommand.RunAsync(options, output, CancellationToken.None).GetAwaiter().GetResult();
                return (exitCode, output.ToString(), error.ToString());
            }
            finally
            {
                Console.SetError(originalError);
            }
        }
    }
}

using Microsoft.Extensions.Configuration;

namespace AppHost;

/// <summary>
/// What the launcher was asked to start, bound from configuration (command line `--Trainers 3`, environment
/// `Trainers=3`, or appsettings). The one place that defines the launcher's defaults.
/// </summary>
public sealed record TrainerLaunch(int LocalWorldSize, string Command, IReadOnlyList<string> TrainerArgs, string RunId, int ThreadsPerRank)
{
    public static TrainerLaunch FromConfiguration(IConfiguration configuration)
    {
        var gpus = CountGpus();
        var trainers = ReadPositive(configuration, "Trainers", gpus > 0 ? gpus : 2, max: 1024);
        var command = configuration["Command"] ?? "check";
        if (command is not ("check" or "train"))
            throw new ArgumentException($"Command must be 'check' or 'train', not '{command}'. Set it with --Command train.");
        var extraArgs = (configuration["TrainerArgs"] ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var runId = configuration["RunId"] is { Length: > 0 } id ? id : Guid.NewGuid().ToString("N")[..12];
        var threads = ReadPositive(configuration, "ThreadsPerRank", Math.Max(1, Environment.ProcessorCount / trainers), max: 4096);
        return new TrainerLaunch(trainers, command, extraArgs, runId, threads);
    }

    static int ReadPositive(IConfiguration configuration, string key, int fallback, int max)
    {
        var text = configuration[key];
        if (string.IsNullOrEmpty(text)) return fallback;
        if (!int.TryParse(text, out var value) || value < 1 || value > max)
            throw new ArgumentException($"{key} must be a whole number from 1 to {max}, not '{text}'. Example: --{key} 2");
        return value;
    }

    /// <summary>NVIDIA GPUs visible to this machine (/dev/nvidia0, /dev/nvidia1, ...); 0 where there are none.</summary>
    static int CountGpus() =>
        OperatingSystem.IsLinux() && Directory.Exists("/dev")
            ? Directory.EnumerateFiles("/dev", "nvidia*").Count(path => int.TryParse(Path.GetFileName(path)["nvidia".Length..], out _))
            : 0;
}

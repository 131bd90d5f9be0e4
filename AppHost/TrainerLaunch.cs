using Microsoft.Extensions.Configuration;

namespace AppHost;

/// <summary>
/// What the launcher was asked to start, bound from configuration (command line `--Trainers 3`, environment
/// `Trainers=3`, or appsettings). The one place that defines the launcher's defaults.
/// </summary>
public sealed record TrainerLaunch(int LocalWorldSize, int Gpus, string Command, string Preset, string Dataset, string Output,
    IReadOnlyList<string> ExtraArgs, string RunId, int? ThreadsPerRank, NodeLayout Layout)
{
    /// <summary>A preset that finishes in minutes on 2 CPU cores; the seed's recipe needs GPUs to be practical.</summary>
    public const string CpuPreset = "quick";
    public const string GpuPreset = "seed";

    /// <summary>torchrun's default is 0; a run that can resume from its checkpoints is better off trying again.</summary>
    public const int DefaultMaxRestarts = LaunchContract.DefaultMaxRestarts;

    /// <summary>Restarts of the whole group after a failure (the trainer's --max-restarts); 0 = the first failure ends the run.</summary>
    public int MaxRestarts { get; init; } = DefaultMaxRestarts;

    /// <summary>The trainer's --device (cpu, cuda or auto); null leaves the trainer's default, auto.</summary>
    public string? Device { get; init; }

    /// <param name="publishing">Writing a deployment manifest: paths and thread counts of this machine mean nothing there.</param>
    /// <param name="gpus">The GPUs to assume; null counts this machine's.</param>
    /// <param name="torchBackend">The Trainer's libtorch flavour to assume; null takes the one it was built with.</param>
    /// <exception cref="ArgumentException">A value is bad, or the Trainer's build cannot use this machine's GPUs (<see cref="TrainerBackend.Refusal"/>).</exception>
    public static TrainerLaunch FromConfiguration(IConfiguration configuration, string repositoryRoot, bool publishing = false,
        int? gpus = null, string? torchBackend = null)
    {
        gpus ??= CountGpus();
        var trainers = ReadPositive(configuration, "Trainers", gpus > 0 ? gpus.Value : 2, max: 1024);
        var command = configuration["Command"] ?? "train";
        if (command is not ("check" or "train"))
            throw new ArgumentException($"Command must be 'train' or 'check', not '{command}'. Example: --Command check");
        var preset = configuration["Preset"] ?? (gpus > 0 ? GpuPreset : CpuPreset);
        var device = configuration["Device"] is { Length: > 0 } given ? given : null;
        if (device is not (null or "cpu" or "cuda" or "auto"))
            throw new ArgumentException($"Device must be cpu, cuda or auto, not '{device}'. Example: --Device cpu");
        // A manifest is for other machines: this machine's GPUs and build say nothing about theirs.
        if (!publishing && TrainerBackend.Refusal(gpus.Value, torchBackend ?? TrainerBackend.Built, command, preset, device) is { } refusal)
            throw new ArgumentException(refusal);
        // "auto": CIFAR-10 from the cache or downloaded, else the synthetic set with a loud warning. Dataset=cifar10 makes that an error.
        var dataset = configuration["Dataset"] ?? "auto";
        var runId = configuration["RunId"] is { Length: > 0 } id ? id : DateTime.UtcNow.ToString("yyyyMMdd-HHmmss");
        var output = configuration["Output"] ?? (publishing ? $"runs/{runId}" : Path.Combine(repositoryRoot, "runs", runId));
        var extraArgs = (configuration["TrainerArgs"] ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        // Published, each trainer is a container of its own and by default uses all of its cores.
        int? threads = publishing && string.IsNullOrEmpty(configuration["ThreadsPerRank"])
            ? null
            : ReadPositive(configuration, "ThreadsPerRank", Math.Max(1, Environment.ProcessorCount / trainers), max: 4096);
        var layout = NodeLayout.FromConfiguration(configuration, trainers, publishing);
        var maxRestarts = ReadPositive(configuration, "MaxRestarts", DefaultMaxRestarts, max: 1000, min: 0);
        return new TrainerLaunch(trainers, gpus.Value, command, preset, dataset, output, extraArgs, runId, threads, layout)
            { MaxRestarts = maxRestarts, Device = device };
    }

    /// <summary>The trainer's command line: `train --preset … --dataset … --output …` or `check`, then any TrainerArgs.</summary>
    public IReadOnlyList<string> TrainerArgs => Command == "train"
        ? ["train", "--preset", Preset, "--dataset", Dataset, "--output", Output, .. ExtraArgs.Contains("--max-restarts") ? [] : (string[])["--max-restarts", $"{MaxRestarts}"],
            .. Device is null || ExtraArgs.Contains("--device") ? [] : (string[])["--device", Device], .. ExtraArgs]
        : [Command, .. ExtraArgs];

    public string Describe() =>
        $"{LocalWorldSize} trainer(s) running '{string.Join(' ', TrainerArgs)}' " +
        (Command == "train" ? $"(preset {Preset}: {(Gpus > 0 ? $"{Gpus} GPU(s) found" : Preset == CpuPreset ? $"no GPU found, a preset that finishes in minutes on the CPU; --Preset {GpuPreset} runs the seed's recipe" : "no GPU found")}), " : "") +
        $"{(ThreadsPerRank is { } threads ? $"{threads}" : "all the")} thread(s) per rank, run {RunId}" +
        (Layout.IsMultiNode ? $", {Layout.Describe()}" : "");

    static int ReadPositive(IConfiguration configuration, string key, int fallback, int max, int min = 1)
    {
        var text = configuration[key];
        if (string.IsNullOrEmpty(text)) return fallback;
        if (!int.TryParse(text, out var value) || value < min || value > max)
            throw new ArgumentException($"{key} must be a whole number from {min} to {max}, not '{text}'. Example: --{key} 2");
        return value;
    }

    /// <summary>NVIDIA GPUs visible to this machine (/dev/nvidia0, /dev/nvidia1, ...); 0 where there are none.</summary>
    static int CountGpus() =>
        OperatingSystem.IsLinux() && Directory.Exists("/dev")
            ? Directory.EnumerateFiles("/dev", "nvidia*").Count(path => int.TryParse(Path.GetFileName(path)["nvidia".Length..], out _))
            : 0;
}

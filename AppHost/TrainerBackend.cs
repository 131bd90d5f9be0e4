using System.Reflection;

namespace AppHost;

/// <summary>
/// The libtorch flavour the Trainer was built with (its TorchBackend, which AppHost.csproj asks the Trainer project
/// for and records in this assembly), and whether a run may start with it on this machine.
/// </summary>
public static class TrainerBackend
{
    public const string Cpu = "cpu";
    public const string Cuda = "cuda";

    /// <summary>"cpu" or "cuda"; "unknown" where the build recorded none.</summary>
    public static string Built { get; } = typeof(TrainerBackend).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .FirstOrDefault(attribute => attribute.Key == "TrainerTorchBackend")?.Value is { Length: > 0 } value ? value : "unknown";

    /// <summary>
    /// Why the run must not start, in one line naming the fixes; null when it may. A CPU build on a machine with GPUs
    /// would train the seed's recipe (or anything asked to run on cuda) on the CPU, for days, while looking healthy.
    /// </summary>
    /// <param name="device">The Device the launcher was given (cpu, cuda, auto), null when none: cpu is a CPU run on purpose.</param>
    public static string? Refusal(int gpus, string torchBackend, string command, string preset, string? device)
    {
        if (gpus == 0 || torchBackend == Cuda || command != "train" || device == Cpu) return null;
        if (preset != TrainerLaunch.GpuPreset && device != Cuda) return null;
        return $"{gpus} GPU(s) found, but the Trainer was built with the CPU libtorch (TorchBackend={torchBackend}), so " +
               (device == Cuda ? "--Device cuda cannot use them" : $"the {preset} preset would train on the CPU") +
               ". Fix: build the CUDA flavour (dotnet build Aspire.sln -p:TorchBackend=cuda, from a NuGet source that serves " +
               $"TorchSharp-cuda-linux), or train on the CPU on purpose: --Preset {TrainerLaunch.CpuPreset} or --Device cpu.";
    }
}

using Trainer.Runtime;
using System.Runtime.InteropServices;
using TorchSharp;

namespace Trainer.Distributed.Nccl;

/// <summary>Whether the NCCL backend can run in this process, and if not, what is missing and how to get it.</summary>
internal static class NcclAvailability
{
    private static readonly Lazy<string?> Problem = new(() => Check(withTorch: true));
    private static readonly Lazy<string?> LibraryProblem = new(() => Check(withTorch: false));

    /// <summary>Null when CUDA and NCCL are usable; otherwise one message naming everything that is missing.</summary>
    public static string? Probe() => Problem.Value;

    /// <summary>Like <see cref="Probe"/>, but only the CUDA runtime and NCCL libraries and a device, not TorchSharp's CUDA support.</summary>
    public static string? ProbeLibraries() => LibraryProblem.Value;

    private static string? Check(bool withTorch)
    {
        var missing = new List<string>();
        if (!withTorch)
        {
            if (Posix.LoadProblem(Interop.Cuda.Library) is { } cudaProblem)
                missing.Add($"{Interop.Cuda.Library} cannot be loaded ({cudaProblem})");
            else if (Interop.Cuda.GetDeviceCount(out var devices) != Interop.Cuda.Success || devices == 0)
                missing.Add("no CUDA device is visible");
            if (Posix.LoadProblem(Interop.Nccl.Library) is { } ncclProblem)
                missing.Add($"{Interop.Nccl.Library} cannot be loaded ({ncclProblem})");
            return missing.Count == 0 ? null : $"NCCL cannot run here: {string.Join("; ", missing)}.";
        }
        bool cuda;
        try
        {
            cuda = torch.cuda.is_available();
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or TypeInitializationException or NotSupportedException)
        {
            cuda = false;
        }
        if (!cuda)
            missing.Add("CUDA is not available to TorchSharp (no NVIDIA GPU or driver, or the CPU-only libtorch-cpu-linux-x64 package is referenced; build with -p:TorchBackend=cuda on GPU machines)");
        if (Posix.LoadProblem(Interop.Cuda.Library) is { } cuda12)
            missing.Add($"{Interop.Cuda.Library} (the CUDA 12 runtime) cannot be loaded: {cuda12} (install the CUDA 12 runtime or add its lib folder to LD_LIBRARY_PATH)");
        if (Posix.LoadProblem(Interop.Nccl.Library) is { } nccl2)
            missing.Add($"{Interop.Nccl.Library} cannot be loaded: {nccl2} (install NCCL 2, e.g. `apt-get install libnccl2`, or add the lib folder of pip's nvidia-nccl-cu12 to LD_LIBRARY_PATH)");
        return missing.Count == 0
            ? null
            : $"The NCCL backend cannot run here: {string.Join("; ", missing)}. Use Backend.Cpu, or Backend.Auto to fall back to it.";
    }
}

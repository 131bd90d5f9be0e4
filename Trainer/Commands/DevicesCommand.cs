using System.CommandLine;
using TorchSharp;
using Trainer.Distributed.Nccl;
using Trainer.Runtime;

namespace Trainer.Commands;

/// <summary>
/// <c>Trainer devices</c>: which native libraries this process can load (libtorch's CPU and CUDA parts, the CUDA
/// runtime, NCCL), whether TorchSharp sees CUDA and how many GPUs, and whether the NCCL backend can run; one line each.
/// Exit code 0 when CUDA and NCCL are usable, 1 otherwise. For a GPU machine whose libraries come from elsewhere
/// (PyTorch's wheels, on LD_LIBRARY_PATH): scripts/gpu-check.sh runs it first.
/// </summary>
internal static class DevicesCommand
{
    private static readonly string[] Libraries =
        ["libLibTorchSharp.so", "libc10.so", "libtorch_cpu.so", "libtorch.so", "libc10_cuda.so", "libtorch_cuda.so", Interop.Cuda.Library, Interop.Nccl.Library];

    public static Command Create()
    {
        var command = new Command("devices", "Report which libtorch, CUDA and NCCL libraries load, and the GPUs TorchSharp sees.");
        command.SetAction(_ => Run(Console.Out));
        return command;
    }

    internal static int Run(TextWriter output)
    {
        output.WriteLine($"devices: TorchSharp {typeof(torch).Assembly.GetName().Version}; LD_LIBRARY_PATH={Environment.GetEnvironmentVariable("LD_LIBRARY_PATH") ?? "(unset)"}");
        foreach (var library in Libraries)
            output.WriteLine($"devices: {library}: {Load(library)}");
        string cuda;
        var usable = false;
        try
        {
            if (Posix.LoadProblem("libtorch_cuda.so") is null)
                torch.InitializeDeviceType(DeviceType.CUDA);
            usable = torch.cuda.is_available();
            cuda = usable ? $"available, {torch.cuda.device_count()} device(s)" : "not available";
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or TypeInitializationException or NotSupportedException)
        {
            cuda = $"TorchSharp could not load libtorch: {e.GetBaseException().Message}";
        }
        output.WriteLine($"devices: torch.cuda: {cuda}");
        var nccl = NcclAvailability.Probe();
        output.WriteLine($"devices: NCCL backend: {nccl ?? "usable"}");
        return usable && nccl is null ? 0 : 1;
    }

    /// <summary>Found next to the Trainer (libLibTorchSharp, a bundled libtorch) or on the loader's path (LD_LIBRARY_PATH).</summary>
    private static string Load(string library)
    {
        var local = Path.Combine(AppContext.BaseDirectory, library);
        var native = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", library);
        var path = File.Exists(local) ? local : File.Exists(native) ? native : library;
        return Posix.LoadProblem(path) is { } problem ? $"NOT loaded: {problem}" : $"loaded{(path == library ? "" : " (bundled)")}";
    }
}

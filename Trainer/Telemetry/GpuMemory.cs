using System.Diagnostics.Metrics;
using System.Runtime.InteropServices;

namespace Trainer.Telemetry;

/// <summary>
/// GPU memory through NVML (libnvidia-ml, what nvidia-smi uses): unlike the CUDA runtime it creates no CUDA context,
/// so asking costs no GPU memory. The rank's device is LOCAL_RANK (one GPU per local rank, as torchrun places them).
/// Where there is no NVIDIA driver or GPU the instrument simply reports nothing.
/// </summary>
internal static unsafe class GpuMemory
{
    private static readonly Lazy<IntPtr> Device = new(OpenDevice);

    /// <summary>The rank's GPU name and total memory, or null on a machine without one.</summary>
    public static (string Name, long TotalBytes)? Describe()
    {
        var device = Device.Value;
        if (device == IntPtr.Zero || Interop.Nvml.GetMemoryInfo(device, out var memory) != 0) return null;
        var name = stackalloc byte[96];
        var text = Interop.Nvml.GetName(device, name, 96) == 0 ? Marshal.PtrToStringUTF8((IntPtr)name) ?? "GPU" : "GPU";
        return (text, (long)memory.Total);
    }

    public static IEnumerable<Measurement<long>> Measure()
    {
        var device = Device.Value;
        if (device == IntPtr.Zero || Interop.Nvml.GetMemoryInfo(device, out var memory) != 0) return [];
        return [new Measurement<long>((long)memory.Used, TrainerTelemetry.Identity)];
    }

    private static IntPtr OpenDevice()
    {
        if (!NativeLibrary.TryLoad(Interop.Nvml.Library, out _)) return IntPtr.Zero;
        try
        {
            if (Interop.Nvml.Init() != 0) return IntPtr.Zero;
            var index = uint.TryParse(Environment.GetEnvironmentVariable("LOCAL_RANK"), out var localRank) ? localRank : 0;
            if (Interop.Nvml.GetDeviceCount(out var count) != 0 || count == 0) return IntPtr.Zero;
            return Interop.Nvml.GetHandleByIndex(index % count, out var device) == 0 ? device : IntPtr.Zero;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return IntPtr.Zero;
        }
    }
}

using System.Runtime.InteropServices;

namespace Trainer;

internal static unsafe partial class Interop
{
    /// <summary>NVML (libnvidia-ml, what nvidia-smi uses), for GPU memory without a CUDA context (Telemetry/GpuMemory.cs).</summary>
    internal static partial class Nvml
    {
        public const string Library = "libnvidia-ml.so.1";

        [StructLayout(LayoutKind.Sequential)]
        public struct Memory
        {
            public ulong Total;
            public ulong Free;
            public ulong Used;
        }

        [LibraryImport(Library, EntryPoint = "nvmlInit_v2")]
        public static partial int Init();

        [LibraryImport(Library, EntryPoint = "nvmlDeviceGetCount_v2")]
        public static partial int GetDeviceCount(out uint count);

        [LibraryImport(Library, EntryPoint = "nvmlDeviceGetHandleByIndex_v2")]
        public static partial int GetHandleByIndex(uint index, out IntPtr device);

        [LibraryImport(Library, EntryPoint = "nvmlDeviceGetMemoryInfo")]
        public static partial int GetMemoryInfo(IntPtr device, out Memory memory);

        [LibraryImport(Library, EntryPoint = "nvmlDeviceGetName")]
        public static partial int GetName(IntPtr device, byte* name, uint length);
    }
}

using System.Runtime.InteropServices;

namespace Trainer.Tests.Distributed;

/// <summary>Raw CUDA device memory, for checking the NCCL bindings without a CUDA build of TorchSharp (the Trainer itself never allocates this way).</summary>
internal static unsafe partial class CudaTestMemory
{
    private const string Library = "libcudart.so.12";

    public const int HostToDevice = 1;
    public const int DeviceToHost = 2;

    [LibraryImport(Library, EntryPoint = "cudaMalloc")]
    public static partial int Malloc(out IntPtr pointer, nuint bytes);

    [LibraryImport(Library, EntryPoint = "cudaFree")]
    public static partial int Free(IntPtr pointer);

    [LibraryImport(Library, EntryPoint = "cudaMemcpy")]
    public static partial int Memcpy(void* destination, void* source, nuint bytes, int kind);

    [LibraryImport(Library, EntryPoint = "cudaDeviceSynchronize")]
    public static partial int DeviceSynchronize();
}

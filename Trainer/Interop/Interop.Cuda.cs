using System.Runtime.InteropServices;
using Trainer.Distributed.Nccl;

namespace Trainer;

internal static unsafe partial class Interop
{
    /// <summary>The CUDA 12 runtime calls the NCCL backend needs: device selection and completion events on the
    /// default stream (<see cref="CudaEventHandle"/>). The tests' raw device memory is their own (CudaTestMemory).</summary>
    internal static partial class Cuda
    {
        public const string Library = "libcudart.so.12";
        public const int Success = 0;
        public const int ErrorNotReady = 600;
        public const uint EventDisableTiming = 0x02;

        [LibraryImport(Library, EntryPoint = "cudaGetDeviceCount")]
        public static partial int GetDeviceCount(out int count);

        [LibraryImport(Library, EntryPoint = "cudaSetDevice")]
        public static partial int SetDevice(int device);

        [LibraryImport(Library, EntryPoint = "cudaEventCreateWithFlags")]
        public static partial int EventCreateWithFlags(out CudaEventHandle cudaEvent, uint flags);

        [LibraryImport(Library, EntryPoint = "cudaEventRecord")]
        public static partial int EventRecord(CudaEventHandle cudaEvent, IntPtr stream);

        [LibraryImport(Library, EntryPoint = "cudaEventQuery")]
        public static partial int EventQuery(CudaEventHandle cudaEvent);

        [LibraryImport(Library, EntryPoint = "cudaEventDestroy")]
        public static partial int EventDestroy(IntPtr cudaEvent);

        [LibraryImport(Library, EntryPoint = "cudaGetErrorString")]
        public static partial byte* GetErrorString(int error);
    }
}

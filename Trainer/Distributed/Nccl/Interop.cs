using System.Runtime.InteropServices;

namespace Trainer.Distributed.Nccl;

internal static unsafe partial class Interop
{
    /// <summary>The NCCL 2 C API (nccl.h). Every call returns an <see cref="NcclResult"/>; see <see cref="NcclException.Check"/>.</summary>
    internal static partial class Nccl
    {
        public const string Library = "libnccl.so.2";

        [LibraryImport(Library, EntryPoint = "ncclGetVersion")]
        public static partial NcclResult GetVersion(out int version);

        [LibraryImport(Library, EntryPoint = "ncclGetUniqueId")]
        public static partial NcclResult GetUniqueId(out NcclUniqueId uniqueId);

        /// <summary>ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank): the id goes by value.</summary>
        [LibraryImport(Library, EntryPoint = "ncclCommInitRank")]
        public static partial NcclResult CommInitRank(out NcclCommunicatorHandle communicator, int rankCount, NcclUniqueId uniqueId, int rank);

        [LibraryImport(Library, EntryPoint = "ncclAllReduce")]
        public static partial NcclResult AllReduce(void* sendBuffer, void* receiveBuffer, nuint count, NcclDataType dataType, NcclRedOp op, NcclCommunicatorHandle communicator, IntPtr stream);

        [LibraryImport(Library, EntryPoint = "ncclBroadcast")]
        public static partial NcclResult Broadcast(void* sendBuffer, void* receiveBuffer, nuint count, NcclDataType dataType, int root, NcclCommunicatorHandle communicator, IntPtr stream);

        [LibraryImport(Library, EntryPoint = "ncclAllGather")]
        public static partial NcclResult AllGather(void* sendBuffer, void* receiveBuffer, nuint sendCount, NcclDataType dataType, NcclCommunicatorHandle communicator, IntPtr stream);

        [LibraryImport(Library, EntryPoint = "ncclGroupStart")]
        public static partial NcclResult GroupStart();

        [LibraryImport(Library, EntryPoint = "ncclGroupEnd")]
        public static partial NcclResult GroupEnd();

        [LibraryImport(Library, EntryPoint = "ncclCommGetAsyncError")]
        public static partial NcclResult CommGetAsyncError(NcclCommunicatorHandle communicator, out NcclResult asyncError);

        [LibraryImport(Library, EntryPoint = "ncclCommAbort")]
        public static partial NcclResult CommAbort(IntPtr communicator);

        [LibraryImport(Library, EntryPoint = "ncclCommDestroy")]
        public static partial NcclResult CommDestroy(IntPtr communicator);

        [LibraryImport(Library, EntryPoint = "ncclGetErrorString")]
        public static partial byte* GetErrorString(NcclResult result);

        [LibraryImport(Library, EntryPoint = "ncclGetLastError")]
        public static partial byte* GetLastError(NcclCommunicatorHandle communicator);
    }

    /// <summary>The CUDA 12 runtime calls the NCCL backend needs (device selection, completion events on the default
    /// stream), plus raw device memory for checking the NCCL bindings without a CUDA build of TorchSharp.</summary>
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
        public static partial int EventCreateWithFlags(out IntPtr cudaEvent, uint flags);

        [LibraryImport(Library, EntryPoint = "cudaEventRecord")]
        public static partial int EventRecord(IntPtr cudaEvent, IntPtr stream);

        [LibraryImport(Library, EntryPoint = "cudaEventQuery")]
        public static partial int EventQuery(IntPtr cudaEvent);

        [LibraryImport(Library, EntryPoint = "cudaEventDestroy")]
        public static partial int EventDestroy(IntPtr cudaEvent);

        public const int MemcpyHostToDevice = 1;
        public const int MemcpyDeviceToHost = 2;

        [LibraryImport(Library, EntryPoint = "cudaMalloc")]
        public static partial int Malloc(out IntPtr pointer, nuint bytes);

        [LibraryImport(Library, EntryPoint = "cudaFree")]
        public static partial int Free(IntPtr pointer);

        [LibraryImport(Library, EntryPoint = "cudaMemcpy")]
        public static partial int Memcpy(void* destination, void* source, nuint bytes, int kind);

        [LibraryImport(Library, EntryPoint = "cudaDeviceSynchronize")]
        public static partial int DeviceSynchronize();

        [LibraryImport(Library, EntryPoint = "cudaGetErrorString")]
        public static partial byte* GetErrorString(int error);
    }
}

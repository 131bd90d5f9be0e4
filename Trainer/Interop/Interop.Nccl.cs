using System.Runtime.InteropServices;
using Trainer.Distributed.Nccl;

namespace Trainer;

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
}

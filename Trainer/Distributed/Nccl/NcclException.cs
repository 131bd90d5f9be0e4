using System.Runtime.InteropServices;

namespace Trainer.Distributed.Nccl;

/// <summary>Turns NCCL and CUDA result codes into <see cref="DistributedException"/>s carrying the libraries' own messages.</summary>
internal static unsafe class NcclException
{
    public static void Check(NcclResult result, string call, NcclCommunicatorHandle? communicator = null)
    {
        if (result is NcclResult.Success or NcclResult.InProgress)
            return;
        throw Create(result, call, communicator);
    }

    public static DistributedException Create(NcclResult result, string call, NcclCommunicatorHandle? communicator = null)
    {
        var message = Marshal.PtrToStringUTF8((IntPtr)Interop.Nccl.GetErrorString(result)) ?? result.ToString();
        var detail = communicator is { IsInvalid: false, IsClosed: false }
            ? Marshal.PtrToStringUTF8((IntPtr)Interop.Nccl.GetLastError(communicator))
            : null;
        return new DistributedException(
            $"{call} failed with NCCL error {(int)result} ({result}): {message}{(string.IsNullOrWhiteSpace(detail) ? "" : $" — {detail}")}");
    }

    public static void CheckCuda(int error, string call)
    {
        if (error != Interop.Cuda.Success)
            throw new DistributedException($"{call} failed with CUDA error {error}: {Marshal.PtrToStringUTF8((IntPtr)Interop.Cuda.GetErrorString(error))}");
    }
}

using Microsoft.Win32.SafeHandles;

namespace Trainer.Distributed.Nccl;

/// <summary>A cudaEvent_t, created without timing; released with cudaEventDestroy.</summary>
internal sealed class CudaEventHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public CudaEventHandle()
        : base(ownsHandle: true)
    {
    }

    /// <summary>A new event for marking the default stream's progress.</summary>
    public static CudaEventHandle Create()
    {
        NcclException.CheckCuda(Interop.Cuda.EventCreateWithFlags(out var handle, Interop.Cuda.EventDisableTiming), "cudaEventCreateWithFlags");
        return handle;
    }

    protected override bool ReleaseHandle() => Interop.Cuda.EventDestroy(handle) == Interop.Cuda.Success;
}

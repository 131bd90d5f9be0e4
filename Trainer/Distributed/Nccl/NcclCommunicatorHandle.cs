using Microsoft.Win32.SafeHandles;

namespace Trainer.Distributed.Nccl;

/// <summary>An ncclComm_t. Released with ncclCommDestroy, or ncclCommAbort once <see cref="MarkBroken"/> was called
/// (a destroy would wait for peers that are gone).</summary>
internal sealed class NcclCommunicatorHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    private volatile bool broken;

    public NcclCommunicatorHandle()
        : base(ownsHandle: true)
    {
    }

    public void MarkBroken() => broken = true;

    protected override bool ReleaseHandle() =>
        (broken ? Interop.Nccl.CommAbort(handle) : Interop.Nccl.CommDestroy(handle)) == NcclResult.Success;
}

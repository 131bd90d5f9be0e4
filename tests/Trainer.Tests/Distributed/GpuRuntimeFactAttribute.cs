using Trainer.Distributed.Nccl;

namespace Trainer.Tests.Distributed;

/// <summary>A test that needs libcudart.so.12, libnccl.so.2 and a CUDA device, but not a CUDA build of TorchSharp.</summary>
public sealed class GpuRuntimeFactAttribute : FactAttribute
{
    public GpuRuntimeFactAttribute()
    {
        if (NcclAvailability.ProbeLibraries() is { } problem)
            Skip = problem;
    }
}

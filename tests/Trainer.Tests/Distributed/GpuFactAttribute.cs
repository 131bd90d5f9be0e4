using Trainer.Distributed.Nccl;

namespace Trainer.Tests.Distributed;

/// <summary>A test that needs CUDA and NCCL (and at least <see cref="Devices"/> GPUs); skipped, with the reason, elsewhere.</summary>
public sealed class GpuFactAttribute : FactAttribute
{
    public GpuFactAttribute(int devices = 1)
    {
        Devices = devices;
        if (NcclAvailability.Probe() is { } problem)
            Skip = problem;
        else if (TorchSharp.torch.cuda.device_count() < devices)
            Skip = $"needs {devices} CUDA devices, this machine has {TorchSharp.torch.cuda.device_count()}";
    }

    public int Devices { get; }
}

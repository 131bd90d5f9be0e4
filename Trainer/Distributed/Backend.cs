namespace Trainer.Distributed;

/// <summary>Which transport a <see cref="ProcessGroup"/> uses.</summary>
public enum Backend
{
    /// <summary>NCCL when CUDA is available and libnccl.so.2 loads, else CPU.</summary>
    Auto,
    /// <summary>TCP ring between the ranks' CPUs (the role of PyTorch's gloo).</summary>
    Cpu,
    /// <summary>NVIDIA NCCL on CUDA tensors.</summary>
    Nccl,
}

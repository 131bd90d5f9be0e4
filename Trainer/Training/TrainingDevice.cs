using TorchSharp;
using Trainer.Distributed;
using Trainer.Distributed.Nccl;

namespace Trainer.Training;

/// <summary>
/// <c>--device auto|cpu|cuda</c>: where the model and its batches live. One GPU per rank, by torchrun's convention:
/// rank LOCAL_RANK of a machine takes cuda:LOCAL_RANK. auto takes it when TorchSharp sees CUDA
/// (torch.cuda.is_available(): an NVIDIA driver, a GPU and the CUDA libtorch, <c>-p:TorchBackend=cuda</c>), else the CPU.
/// </summary>
internal static class TrainingDevice
{
    public const string Auto = "auto";
    public const string Cpu = "cpu";
    public const string Cuda = "cuda";
    public static readonly IReadOnlyList<string> Choices = [Auto, Cpu, Cuda];

    /// <exception cref="ContractException">cuda was asked for but is not there, or LOCAL_RANK has no GPU of its own.</exception>
    public static torch.Device Resolve(string choice, int localRank) => Resolve(choice, localRank, CudaDeviceCount);

    /// <param name="cudaDeviceCount">CUDA devices TorchSharp can use (0 without CUDA).</param>
    internal static torch.Device Resolve(string choice, int localRank, Func<int> cudaDeviceCount)
    {
        if (choice == Cpu)
            return torch.CPU;
        if (choice is not (Auto or Cuda))
            throw new ContractException($"--device {choice}: unknown; use one of {string.Join(", ", Choices)}.");
        var devices = cudaDeviceCount();
        if (devices == 0)
            return choice == Auto
                ? torch.CPU
                : throw new ContractException("--device cuda: CUDA is not available to TorchSharp (no NVIDIA GPU or driver, or the Trainer was built " +
                                              "with the CPU libtorch: build it with -p:TorchBackend=cuda); use --device cpu or auto.");
        if (localRank >= devices)
            throw new ContractException($"--device {choice}: LOCAL_RANK={localRank} has no GPU of its own: this machine has {devices} CUDA device(s), " +
                                        $"cuda:0..cuda:{devices - 1}; start at most {devices} ranks per machine (LOCAL_WORLD_SIZE) or use --device cpu.");
        return new torch.Device(DeviceType.CUDA, localRank);
    }

    /// <summary>
    /// The collectives' backend for a model on <paramref name="device"/>: they take the tensors where they live, so
    /// the CPU ring on the CPU and NCCL on a GPU. TRAINER_BACKEND=auto picks that one; an explicit choice must match.
    /// </summary>
    /// <param name="ncclProblem">Why NCCL cannot run here, or null when it can (<see cref="NcclAvailability.Probe"/>).</param>
    /// <exception cref="ContractException">The backend cannot take tensors on <paramref name="device"/>.</exception>
    public static Backend BackendFor(torch.Device device, Backend requested, Func<string?> ncclProblem)
    {
        if (device.type == DeviceType.CPU)
            return requested switch
            {
                Backend.Nccl => throw new ContractException(
                    $"{DistributedWorld.BackendVariable}=nccl all-reduces GPU tensors but the model is on the CPU; use --device cuda, or {DistributedWorld.BackendVariable}=auto or cpu."),
                _ => Backend.Cpu,
            };
        if (requested == Backend.Cpu)
            throw new ContractException(
                $"{DistributedWorld.BackendVariable}=cpu cannot all-reduce tensors on {device}; use {DistributedWorld.BackendVariable}=auto or nccl, or --device cpu.");
        if (ncclProblem() is { } problem)
            throw new ContractException($"the model is on {device}, whose gradients only NCCL all-reduces. {problem} With --device cpu the model stays on the CPU and the CPU backend is used.");
        return Backend.Nccl;
    }

    public static Backend BackendFor(torch.Device device, Backend requested) => BackendFor(device, requested, NcclAvailability.Probe);

    private static int CudaDeviceCount()
    {
        try
        {
            return torch.cuda.is_available() ? torch.cuda.device_count() : 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or TypeInitializationException or NotSupportedException)
        {
            return 0;
        }
    }
}

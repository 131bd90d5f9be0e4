using TorchSharp;
using Trainer.Commands;
using Trainer.Distributed;
using Trainer.Training;

namespace Trainer.Tests.Training;

public sealed class TrainingDeviceTests
{
    private static readonly Func<int> NoGpu = () => 0;
    private static readonly Func<int> TwoGpus = () => 2;

    [Fact]
    public void Cpu_is_the_cpu_whatever_gpus_there_are()
    {
        Assert.Equal(DeviceType.CPU, TrainingDevice.Resolve("cpu", 0, TwoGpus).type);
        Assert.Equal(DeviceType.CPU, TrainingDevice.Resolve("cpu", 5, NoGpu).type);
    }

    [Fact]
    public void Auto_takes_the_gpu_of_the_local_rank_and_falls_back_to_the_cpu_without_cuda()
    {
        var gpu = TrainingDevice.Resolve("auto", 1, TwoGpus);
        Assert.Equal((DeviceType.CUDA, 1), (gpu.type, gpu.index));
        Assert.Equal(DeviceType.CPU, TrainingDevice.Resolve("auto", 1, NoGpu).type);

        var cuda = TrainingDevice.Resolve("cuda", 0, TwoGpus);
        Assert.Equal((DeviceType.CUDA, 0), (cuda.type, cuda.index));
    }

    [Fact]
    public void Auto_on_this_machine_follows_torch_cuda_is_available()
    {
        var device = TrainingDevice.Resolve("auto", 0);

        Assert.Equal(torch.cuda.is_available() ? DeviceType.CUDA : DeviceType.CPU, device.type);
    }

    [Fact]
    public void Cuda_without_cuda_and_a_local_rank_without_its_gpu_are_one_line_errors_with_the_fix()
    {
        var noCuda = Assert.Throws<ContractException>(() => TrainingDevice.Resolve("cuda", 0, NoGpu)).Message;
        Assert.Contains("-p:TorchBackend=cuda", noCuda);
        Assert.Contains("--device cpu", noCuda);

        foreach (var choice in new[] { "auto", "cuda" })
        {
            var tooMany = Assert.Throws<ContractException>(() => TrainingDevice.Resolve(choice, 2, TwoGpus)).Message;
            Assert.Contains("LOCAL_RANK=2", tooMany);
            Assert.Contains("cuda:0..cuda:1", tooMany);
            Assert.DoesNotContain('\n', tooMany);
        }

        Assert.Contains("auto, cpu, cuda", Assert.Throws<ContractException>(() => TrainingDevice.Resolve("tpu", 0, TwoGpus)).Message);
    }

    [Fact]
    public void The_backend_follows_the_device_and_an_explicit_mismatch_is_an_error()
    {
        var gpu = new torch.Device(DeviceType.CUDA, 0);
        Func<string?> ncclWorks = () => null;
        Func<string?> ncclMissing = () => "The NCCL backend cannot run here: libnccl.so.2 cannot be loaded.";

        Assert.Equal(Backend.Cpu, TrainingDevice.BackendFor(torch.CPU, Backend.Auto, ncclWorks));
        Assert.Equal(Backend.Cpu, TrainingDevice.BackendFor(torch.CPU, Backend.Cpu, ncclWorks));
        Assert.Equal(Backend.Nccl, TrainingDevice.BackendFor(gpu, Backend.Auto, ncclWorks));
        Assert.Equal(Backend.Nccl, TrainingDevice.BackendFor(gpu, Backend.Nccl, ncclWorks));

        Assert.Contains("TRAINER_BACKEND=nccl", Assert.Throws<ContractException>(() => TrainingDevice.BackendFor(torch.CPU, Backend.Nccl, ncclWorks)).Message);
        Assert.Contains("TRAINER_BACKEND=cpu cannot all-reduce tensors on cuda:0", Assert.Throws<ContractException>(() => TrainingDevice.BackendFor(gpu, Backend.Cpu, ncclWorks)).Message);
        var missing = Assert.Throws<ContractException>(() => TrainingDevice.BackendFor(gpu, Backend.Auto, ncclMissing)).Message;
        Assert.Contains("libnccl.so.2 cannot be loaded", missing);
        Assert.Contains("--device cpu", missing);
    }

    [Fact]
    public void The_train_command_takes_device_auto_by_default_and_rejects_an_unknown_one()
    {
        Assert.Equal("auto", TrainCommand.Bind(TrainCommand.Create().Parse([])).Options!.Device);
        Assert.Equal("cuda", TrainCommand.Bind(TrainCommand.Create().Parse(["--device", "cuda"])).Options!.Device);
        Assert.Contains(TrainCommand.Bind(TrainCommand.Create().Parse(["--device", "tpu"])).Errors, e => e.StartsWith("--device tpu: unknown"));
    }

    [Fact]
    public void A_learner_on_the_cpu_says_so()
    {
        using var learner = TinyLearner.Create(trainImages: 32, validImages: 16);

        Assert.Equal(DeviceType.CPU, learner.Device.type);
    }
}

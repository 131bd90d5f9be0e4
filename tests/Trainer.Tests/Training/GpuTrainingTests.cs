using TorchSharp;
using Trainer.Data;
using Trainer.Models;
using Trainer.Training;

namespace Trainer.Tests.Training;

/// <summary>The learner on a GPU; runs where CUDA is available to TorchSharp (scripts/gpu-check.sh), skipped elsewhere.</summary>
public sealed class GpuTrainingTests
{
    private static Learner Create(torch.Device device, int initSeed)
    {
        var model = SeededWeights.Apply(WideResNet.Wrn22(k: 1), initSeed);
        if (device.type != DeviceType.CPU) model.to(device);
        var train = new DataLoader(SyntheticDataset.Create(128, 0, "train"), new RandomSampler(128, 0), 32, Augmentation.Train(), dropLast: true, seed: 0);
        var valid = new DataLoader(SyntheticDataset.Create(64, 1, "valid"), new SequentialSampler(64), 32, Augmentation.Valid(), dropLast: false, seed: 0);
        return new Learner(model, train, valid);
    }

    private static float[][] Parameters(Learner learner) =>
        [.. learner.Model.parameters().Select(p => { using var cpu = p.detach().cpu(); return cpu.data<float>().ToArray(); })];

    [CudaFact]
    public void A_learner_on_cuda_0_trains_and_its_checkpoint_resumes_on_the_cpu_and_back()
    {
        using var dir = new TempDirectory();
        var path = dir.Combine(Checkpoint.FileName);
        var gpu = new torch.Device(DeviceType.CUDA, 0);

        using var onGpu = Create(gpu, initSeed: 0);
        Assert.Equal((DeviceType.CUDA, 0), (onGpu.Device.type, onGpu.Device.index));
        using var cpuTwin = Create(torch.CPU, initSeed: 0);
        Assert.Equal(Parameters(cpuTwin), Parameters(onGpu)); // initialised on the CPU, then moved

        var fit = onGpu.FitOneCycle(epochs: 1, maxLr: 3e-3);
        Assert.True(double.IsFinite(fit.Epochs[0].TrainLoss) && fit.Epochs[0].Accuracy is >= 0 and <= 1, $"{fit.Epochs[0]}");
        Checkpoint.Save(path, onGpu, "recipe");

        using var onCpu = Create(torch.CPU, initSeed: 7);
        Checkpoint.Load(path, onCpu);
        Assert.Equal(Parameters(onGpu), Parameters(onCpu));

        using var backOnGpu = Create(gpu, initSeed: 7);
        Checkpoint.Load(path, backOnGpu);
        Assert.Equal(Parameters(onGpu), Parameters(backOnGpu));
        Assert.Equal(1, backOnGpu.Epoch);
    }
}

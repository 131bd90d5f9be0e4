using Microsoft.Extensions.Configuration;

namespace AppHost.Tests;

/// <summary>The launcher's refusal to train on the CPU when GPUs are there but the Trainer's build cannot use them.</summary>
public class TrainerBackendTests
{
    private static TrainerLaunch Launch(int gpus, string torchBackend, params (string Key, string Value)[] values) =>
        TrainerLaunch.FromConfiguration(
            new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build(),
            repositoryRoot: "/repo", gpus: gpus, torchBackend: torchBackend);

    [Fact]
    public void The_build_records_the_trainers_flavour()
    {
        Assert.Contains(TrainerBackend.Built, new[] { TrainerBackend.Cpu, TrainerBackend.Cuda });
    }

    [Fact]
    public void Gpus_with_a_cpu_build_refuse_the_seed_preset_naming_both_fixes()
    {
        var refusal = TrainerBackend.Refusal(gpus: 4, "cpu", "train", TrainerLaunch.GpuPreset, device: null);

        Assert.NotNull(refusal);
        Assert.DoesNotContain('\n', refusal);
        Assert.Contains("4 GPU(s) found", refusal);
        Assert.Contains("-p:TorchBackend=cuda", refusal);
        Assert.Contains("--Preset quick", refusal);
        Assert.Contains("--Device cpu", refusal);
    }

    [Theory]
    [InlineData(0, "cpu", "train", "seed", null)] // no GPU: the CPU is all there is
    [InlineData(2, "cuda", "train", "seed", null)] // the CUDA build uses the GPUs
    [InlineData(2, "cpu", "check", "seed", null)] // check trains nothing
    [InlineData(2, "cpu", "train", "quick", null)] // a CPU preset on purpose
    [InlineData(2, "cpu", "train", "seed", "cpu")] // the CPU on purpose
    public void Runs_that_mean_what_they_do_may_start(int gpus, string backend, string command, string preset, string? device)
    {
        Assert.Null(TrainerBackend.Refusal(gpus, backend, command, preset, device));
    }

    [Fact]
    public void Device_cuda_with_a_cpu_build_is_refused_for_any_preset()
    {
        Assert.Contains("--Device cuda cannot use them", TrainerBackend.Refusal(1, "cpu", "train", "quick", "cuda"));
    }

    [Fact]
    public void The_launcher_refuses_the_default_preset_on_gpus_with_a_cpu_build()
    {
        var error = Assert.Throws<ArgumentException>(() => Launch(2, "cpu"));
        Assert.Equal(TrainerBackend.Refusal(2, "cpu", "train", TrainerLaunch.GpuPreset, null), error.Message);
    }

    [Fact]
    public void The_launcher_passes_device_cpu_on_and_takes_the_seed_preset_with_the_cuda_build()
    {
        var onPurpose = Launch(2, "cpu", ("Device", "cpu"));
        Assert.Equal(TrainerLaunch.GpuPreset, onPurpose.Preset);
        Assert.Equal("cpu", onPurpose.TrainerArgs[onPurpose.TrainerArgs.ToList().IndexOf("--device") + 1]);

        var cuda = Launch(2, "cuda");
        Assert.Equal(TrainerLaunch.GpuPreset, cuda.Preset);
        Assert.DoesNotContain("--device", cuda.TrainerArgs);
    }

    [Fact]
    public void A_bad_device_names_the_choices()
    {
        var error = Assert.Throws<ArgumentException>(() => Launch(0, "cpu", ("Device", "gpu")));
        Assert.Contains("Device must be cpu, cuda or auto", error.Message);
    }
}

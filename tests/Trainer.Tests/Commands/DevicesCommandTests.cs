using Trainer.Commands;
using Trainer.Distributed.Nccl;

namespace Trainer.Tests.Commands;

public sealed class DevicesCommandTests
{
    [Fact]
    public void Every_library_gets_one_line_saying_whether_it_loaded_and_why_not()
    {
        var output = new StringWriter();
        var exitCode = DevicesCommand.Run(output);
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);

        Assert.Contains(lines, l => l.StartsWith("devices: libtorch_cpu.so: loaded", StringComparison.Ordinal)); // the test output bundles the CPU libtorch
        foreach (var library in new[] { "libLibTorchSharp.so", "libc10.so", "libtorch.so", "libc10_cuda.so", "libtorch_cuda.so", "libcudart.so.12", "libnccl.so.2" })
            Assert.Single(lines, l => l.StartsWith($"devices: {library}: loaded", StringComparison.Ordinal) || l.StartsWith($"devices: {library}: NOT loaded: {library}", StringComparison.Ordinal)
                                      || l.StartsWith($"devices: {library}: NOT loaded: /", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("devices: torch.cuda: ", StringComparison.Ordinal));
        var nccl = NcclAvailability.Probe();
        Assert.Contains(lines, l => l == $"devices: NCCL backend: {nccl ?? "usable"}");
        Assert.Equal(nccl is null ? 0 : 1, exitCode);
    }
}

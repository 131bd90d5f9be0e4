using System.Runtime.InteropServices;
using Trainer.Telemetry;

namespace Trainer.Tests.Telemetry;

public sealed class GpuMemoryTests
{
    [Fact]
    public void Reports_the_gpu_through_nvml_where_there_is_one_and_nothing_elsewhere()
    {
        var nvml = NativeLibrary.TryLoad("libnvidia-ml.so.1", out var handle);
        if (nvml) NativeLibrary.Free(handle);

        var described = GpuMemory.Describe();
        var measured = GpuMemory.Measure().ToList();
        if (described is { } gpu)
        {
            Assert.True(nvml);
            Assert.False(string.IsNullOrWhiteSpace(gpu.Name));
            var used = Assert.Single(measured).Value;
            Assert.InRange(used, 1, gpu.TotalBytes);
        }
        else
        {
            // No driver, or a driver without a GPU: the instrument skips cleanly instead of failing or reporting 0.
            Assert.Empty(measured);
        }
    }
}

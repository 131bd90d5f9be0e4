using System.Diagnostics;
using Trainer.Distributed;
using static TorchSharp.torch;

namespace Trainer.Commands;

/// <summary>
/// The collective part of `Trainer check`: every rank all-reduces a 16 MiB float32 tensor (on the group's device: the CPU,
/// or with NCCL this rank's GPU) filled with rank + 1,
/// verifies that every element is 1 + 2 + … + WORLD_SIZE, and measures the bus bandwidth (algbw × 2(N−1)/N).
/// </summary>
internal static class AllReduceCheck
{
    public const long Elements = 4L * 1024 * 1024;
    private const int Iterations = 5;

    public static string Run(ProcessGroup group)
    {
        using var tensor = empty(Elements, ScalarType.Float32, group.Device);
        var expected = group.WorldSize * (group.WorldSize + 1) / 2f;

        tensor.fill_(group.Rank + 1);
        group.AllReduce(tensor, ReduceOp.Sum);
        Verify(tensor, expected);

        group.Barrier();
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < Iterations; i++)
            group.AllReduce(tensor, ReduceOp.Sum);
        var seconds = clock.Elapsed.TotalSeconds / Iterations;

        var bytes = Elements * sizeof(float);
        var busBandwidth = group.WorldSize == 1 ? 0 : bytes / seconds * 2 * (group.WorldSize - 1) / group.WorldSize;
        return $"all-reduce of {bytes >> 20} MiB verified ({group.Backend.ToString().ToLowerInvariant()}), bus bandwidth {busBandwidth / 1e9:0.00} GB/s";
    }

    private static void Verify(Tensor tensor, float expected)
    {
        using var wrong = tensor.ne(expected);
        var mismatches = wrong.sum().item<long>();
        if (mismatches == 0) return;
        using var first = wrong.nonzero();
        var index = first[0, 0].item<long>();
        throw new DistributedException(
            $"all-reduce check failed: {mismatches} of {tensor.numel()} elements are wrong; element {index} is {tensor[index].item<float>()}, expected {expected}.");
    }
}

using System.Net;
using TorchSharp;
using Trainer.Distributed;

namespace Trainer.Tests.Distributed;

/// <summary>The NCCL backend end to end; runs where CUDA and libnccl.so.2 are present (scripts/gpu-collectives-check.sh).</summary>
[Collection("Distributed")]
public class GpuCollectiveTests
{
    private static async Task<ProcessGroup[]> CreateAsync(int worldSize)
    {
        var store = new InMemoryStore();
        return await Task.WhenAll(Enumerable.Range(0, worldSize).Select(rank => Task.Run(() => ProcessGroup.CreateAsync(
            new ProcessGroupOptions { Backend = Backend.Nccl, LocalRank = rank, Timeout = TimeSpan.FromSeconds(60), KeyPrefix = "gpu" },
            store, rank, worldSize, IPAddress.Loopback))));
    }

    [GpuFact]
    public async Task One_rank_runs_every_collective_on_the_GPU()
    {
        var groups = await CreateAsync(1);
        using var group = groups[0];
        Assert.Equal(Backend.Nccl, group.Backend);
        var device = new torch.Device(DeviceType.CUDA, 0);
        foreach (var type in new[] { torch.ScalarType.Float32, torch.ScalarType.Float64, torch.ScalarType.Int64, torch.ScalarType.Float16, torch.ScalarType.BFloat16 })
        {
            using var tensor = torch.arange(0, 1000, dtype: type, device: device);
            using var expected = tensor.clone();
            group.AllReduce(tensor, ReduceOp.Avg);
            group.AllReduceAsync(tensor, ReduceOp.Max).Wait();
            group.Broadcast(tensor, 0);
            using var gathered = group.AllGather(tensor);
            group.Barrier();
            Assert.True(expected.equal(tensor).item<bool>(), $"{type} changed");
            Assert.True(expected.equal(gathered[0]).item<bool>(), $"{type} all-gather");
        }
        using var cpu = torch.ones(3);
        Assert.Contains("cuda:0", Assert.Throws<ArgumentException>(() => group.AllReduce(cpu)).Message);
    }

    [GpuFact(devices: 2)]
    public async Task Two_ranks_on_two_GPUs_sum_and_agree()
    {
        var groups = await CreateAsync(2);
        try
        {
            var results = await Task.WhenAll(groups.Select(group => Task.Run(() =>
            {
                var device = new torch.Device(DeviceType.CUDA, group.Rank);
                using var tensor = torch.full(new long[] { 10_000_000 }, group.Rank + 1f, device: device);
                var works = Enumerable.Range(0, 4).Select(_ => group.AllReduceAsync(tensor)).ToList();
                works.ForEach(w => w.Wait());
                return tensor.cpu().data<float>().ToArray().Distinct().Single();
            })));
            Assert.All(results, v => Assert.Equal(3f * 8, v)); // 1 + 2 = 3, then doubled by each of the 3 further all-reduces
        }
        finally
        {
            foreach (var group in groups)
                group.Dispose();
        }
    }
}

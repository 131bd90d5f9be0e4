using TorchSharp;
using Trainer.Distributed;
using static TorchSharp.torch;

namespace Trainer.Tests.Distributed;

[Collection("Distributed")]
public class AllocationTests
{
    [Theory]
    [InlineData(1_000_000)] // ring path
    [InlineData(1000)]      // small-tensor path
    public async Task Synchronous_collectives_allocate_nothing_in_steady_state(long count)
    {
        using var ranks = await Ranks.CreateAsync(3);
        var allocated = ranks.RunAll(group =>
        {
            using var tensor = torch.ones(count);
            using var output = torch.empty(3 * count);
            for (var i = 0; i < 3; i++)
            {
                group.AllReduce(tensor, ReduceOp.Avg);
                group.Broadcast(tensor, root: 1);
                group.AllGatherIntoTensor(output, tensor);
                group.Barrier();
            }
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < 20; i++)
            {
                group.AllReduce(tensor, ReduceOp.Avg);
                group.Broadcast(tensor, root: 1);
                group.AllGatherIntoTensor(output, tensor);
                group.Barrier();
            }
            return GC.GetAllocatedBytesForCurrentThread() - before;
        });
        Assert.All(allocated, bytes => Assert.Equal(0, bytes));
    }

    [Fact]
    public async Task DistributedDataParallel_hooks_allocate_nothing_in_steady_state()
    {
        using var ranks = await Ranks.CreateAsync(2);
        var models = Enumerable.Range(0, 2).Select(_ =>
        {
            torch.manual_seed(5);
            // BatchNorm gives float32 and int64 buffers to broadcast; the small cap gives several buckets.
            return nn.Sequential(nn.Linear(12, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4));
        }).ToArray();
        var allocated = ranks.RunAll(group =>
        {
            var model = models[group.Rank];
            using var ddp = new DistributedDataParallel(group, model, bucketCapBytes: 1024);
            using var optimizer = optim.AdamW(model.parameters());
            using var x = randn(8, 12);
            using var y = randint(0, 4, [8]);
            ddp.OnFitStart(model);
            long inHooks = 0;
            for (var step = 0; step < 10; step++)
            {
                using var scope = NewDisposeScope();
                optimizer.zero_grad();
                var start = GC.GetAllocatedBytesForCurrentThread();
                ddp.BeforeForward(model);
                var beforeForward = GC.GetAllocatedBytesForCurrentThread() - start;
                nn.functional.cross_entropy(model.forward(x), y).backward();
                start = GC.GetAllocatedBytesForCurrentThread();
                ddp.AfterBackward(model);
                var afterBackward = GC.GetAllocatedBytesForCurrentThread() - start;
                optimizer.step();
                if (step >= 3)
                    inHooks += beforeForward + afterBackward;
            }
            Assert.True(ddp.BucketLengths.Count > 1);
            return inHooks;
        });
        foreach (var model in models) model.Dispose();
        Assert.All(allocated, bytes => Assert.Equal(0, bytes));
    }
}

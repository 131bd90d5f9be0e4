using TorchSharp;
using Trainer.Distributed;

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
}

using TorchSharp;
using Trainer.Distributed;

namespace Trainer.Tests.Distributed;

[Collection("Distributed")]
public class AsyncTests
{
    [Fact]
    public async Task Several_collectives_in_flight_complete_in_issue_order_with_correct_results()
    {
        const int worldSize = 3;
        long[] counts = [1_000_003, 17, 250_000, 4099];
        using var ranks = await Ranks.CreateAsync(worldSize);
        var inputs = counts.Select((count, bucket) => Enumerable.Range(0, worldSize)
            .Select(rank => TestData.Random(torch.ScalarType.Float32, count, 1000 * bucket + rank)).ToArray()).ToArray();
        var broadcastInputs = Enumerable.Range(0, worldSize).Select(rank => TestData.Random(torch.ScalarType.Int64, 5000, 77 + rank)).ToArray();

        var results = ranks.RunAll(group =>
        {
            var buckets = inputs.Select(bucket => TestData.Tensor(torch.ScalarType.Float32, bucket[group.Rank])).ToArray();
            using var broadcast = TestData.Tensor(torch.ScalarType.Int64, broadcastInputs[group.Rank]);
            var works = buckets.Select(t => group.AllReduceAsync(t)).ToList();
            works.Add(group.BroadcastAsync(broadcast, root: 2));
            using var synchronous = TestData.Tensor(torch.ScalarType.Float32, inputs[1][group.Rank]);
            group.AllReduce(synchronous, ReduceOp.Max); // queued behind the async ones on every rank
            Assert.All(works, w => Assert.True(w.IsCompleted));
            Task.WhenAll(works.Select(w => w.WaitAsync())).GetAwaiter().GetResult();
            foreach (var work in works)
                work.Wait();
            var read = buckets.Select(TestData.Read).ToArray();
            foreach (var bucket in buckets)
                bucket.Dispose();
            return (Buckets: read, Broadcast: TestData.Read(broadcast), Max: TestData.Read(synchronous));
        });

        for (var rank = 0; rank < worldSize; rank++)
        {
            for (var bucket = 0; bucket < counts.Length; bucket++)
                TestData.AssertSame(TestData.AllReduceReference(torch.ScalarType.Float32, inputs[bucket], ReduceOp.Sum), results[rank].Buckets[bucket], 4, $"bucket {bucket} on rank {rank}");
            TestData.AssertSame(broadcastInputs[2], results[rank].Broadcast, 8, $"async broadcast on rank {rank}");
            TestData.AssertSame(TestData.AllReduceReference(torch.ScalarType.Float32, inputs[1], ReduceOp.Max), results[rank].Max, 4, $"sync max on rank {rank}");
        }
    }

    [Fact]
    public async Task Async_collectives_keep_their_tensors_alive_after_the_caller_drops_them()
    {
        using var ranks = await Ranks.CreateAsync(2);
        var results = ranks.RunAll(group =>
        {
            var tensor = torch.full(new long[] { 300_000 }, group.Rank + 1f);
            using var view = tensor.alias();
            var work = group.AllReduceAsync(tensor);
            tensor.Dispose(); // the caller's reference goes; the group holds its own
            work.Wait();
            return view.data<float>().ToArray().Distinct().Single();
        });
        Assert.All(results, v => Assert.Equal(3f, v));
    }

    [Fact]
    public async Task World_size_one_completes_async_work_immediately()
    {
        using var ranks = await Ranks.CreateAsync(1);
        using var tensor = torch.ones(10);
        var work = ranks[0].AllReduceAsync(tensor, ReduceOp.Avg);
        Assert.True(work.IsCompleted);
        work.Wait();
        Assert.Equal(Enumerable.Repeat(1f, 10), tensor.data<float>().ToArray());
    }
}

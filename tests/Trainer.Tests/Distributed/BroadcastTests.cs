using TorchSharp;

namespace Trainer.Tests.Distributed;

[Collection("Distributed")]
public class BroadcastTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public async Task Broadcast_from_every_root_copies_the_roots_tensor_everywhere(int worldSize)
    {
        using var ranks = await Ranks.CreateAsync(worldSize);
        var seed = 0;
        foreach (var type in TestData.CpuTypes)
            foreach (var count in new long[] { 0, 1, 1021, 1_299_709 })
                for (var root = 0; root < worldSize; root++)
                {
                    var inputs = Enumerable.Range(0, worldSize).Select(_ => TestData.Random(type, count, ++seed)).ToArray();
                    var results = ranks.RunAll(group =>
                    {
                        using var tensor = TestData.Tensor(type, inputs[group.Rank]);
                        group.Broadcast(tensor, root);
                        return TestData.Read(tensor);
                    });
                    for (var rank = 0; rank < worldSize; rank++)
                        TestData.AssertSame(inputs[root], results[rank], TestData.ElementSize(type), $"broadcast of {count} {type} from root {root} to rank {rank}");
                }
    }
}

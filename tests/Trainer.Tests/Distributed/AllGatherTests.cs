using TorchSharp;

namespace Trainer.Tests.Distributed;

[Collection("Distributed")]
public class AllGatherTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public async Task AllGather_concatenates_every_ranks_input_in_rank_order(int worldSize)
    {
        using var ranks = await Ranks.CreateAsync(worldSize);
        var seed = 0;
        foreach (var type in TestData.CpuTypes)
            foreach (var count in new long[] { 0, 1, 1021, 300_007 })
            {
                var inputs = Enumerable.Range(0, worldSize).Select(_ => TestData.Random(type, count, ++seed)).ToArray();
                var expected = inputs.SelectMany(b => b).ToArray();
                var results = ranks.RunAll(group =>
                {
                    using var input = TestData.Tensor(type, inputs[group.Rank]);
                    using var output = torch.empty(worldSize * count, type);
                    group.AllGatherIntoTensor(output, input);
                    return TestData.Read(output);
                });
                for (var rank = 0; rank < worldSize; rank++)
                    TestData.AssertSame(expected, results[rank], TestData.ElementSize(type), $"all-gather of {count} {type} on rank {rank}");
            }
    }

    [Fact]
    public async Task AllGather_in_place_and_stacked_forms_agree()
    {
        const int worldSize = 3;
        using var ranks = await Ranks.CreateAsync(worldSize);
        var results = ranks.RunAll(group =>
        {
            using var input = torch.full(new long[] { 2, 5 }, group.Rank + 1.5, torch.ScalarType.Float64);
            using var stacked = group.AllGather(input);
            Assert.Equal(new long[] { worldSize, 2, 5 }, stacked.shape);

            using var output = torch.zeros(worldSize * 10, torch.ScalarType.Float64);
            using var own = output.narrow(0, group.Rank * 10, 10);
            own.copy_(input.flatten());
            group.AllGatherIntoTensor(output, own); // input is this rank's slice of the output
            return (Stacked: stacked.data<double>().ToArray(), InPlace: output.data<double>().ToArray());
        });
        var expected = Enumerable.Range(0, worldSize).SelectMany(r => Enumerable.Repeat(r + 1.5, 10)).ToArray();
        Assert.All(results, r =>
        {
            Assert.Equal(expected, r.Stacked);
            Assert.Equal(expected, r.InPlace);
        });
    }
}

using TorchSharp;
using Trainer.Distributed;

namespace Trainer.Tests.Distributed;

[Collection("Distributed")]
public class AllReduceTests
{
    // Empty, fewer elements than ranks, primes, the small-tensor path, and large chunks.
    private static readonly long[] Counts = [0, 1, 2, 3, 7, 1021, 4099, 65537, 1_299_709];

    // 12 344 bytes = 8 x 1543: a scratch ring that most chunks wrap around, at offsets that are not powers of two.
    private const long OddScratch = 12_344;

    [Theory]
    [InlineData(1, null)]
    [InlineData(2, null)]
    [InlineData(3, null)]
    [InlineData(4, null)]
    [InlineData(2, OddScratch)]
    [InlineData(3, OddScratch)]
    [InlineData(4, OddScratch)]
    public async Task AllReduce_equals_the_serial_reference_bit_for_bit_on_every_rank(int worldSize, long? scratchBytes)
    {
        using var ranks = await Ranks.CreateAsync(worldSize, ringScratchBytes: scratchBytes);
        var seed = 0;
        foreach (var type in TestData.CpuTypes)
            foreach (var op in TestData.Ops)
                foreach (var count in Counts)
                {
                    var inputs = Enumerable.Range(0, worldSize).Select(_ => TestData.Random(type, count, ++seed)).ToArray();
                    var results = ranks.RunAll(group =>
                    {
                        using var tensor = TestData.Tensor(type, inputs[group.Rank]);
                        group.AllReduce(tensor, op);
                        return TestData.Read(tensor);
                    });
                    var expected = TestData.AllReduceReference(type, inputs, op);
                    for (var rank = 0; rank < worldSize; rank++)
                        TestData.AssertSame(expected, results[rank], TestData.ElementSize(type), $"{op} of {count} {type} on rank {rank} of {worldSize}");
                }
    }

    [Fact]
    public async Task Float_sum_differs_from_a_naive_reference_so_the_exact_order_check_has_teeth()
    {
        // Guards the test above: with these inputs a different summation order changes the bits.
        var inputs = Enumerable.Range(0, 3).Select(r => TestData.Random(torch.ScalarType.Float32, 65537, 100 + r)).ToArray();
        var ringOrder = TestData.AllReduceReference(torch.ScalarType.Float32, inputs, ReduceOp.Sum);
        var values = inputs.Select(b => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(b).ToArray()).ToArray();
        var rankOrder = TestData.Bytes(Enumerable.Range(0, values[0].Length).Select(i => values[0][i] + values[1][i] + values[2][i]).ToArray());
        Assert.False(ringOrder.AsSpan().SequenceEqual(rankOrder));

        using var ranks = await Ranks.CreateAsync(3);
        var results = ranks.RunAll(group =>
        {
            using var tensor = TestData.Tensor(torch.ScalarType.Float32, inputs[group.Rank]);
            group.AllReduce(tensor);
            return TestData.Read(tensor);
        });
        Assert.All(results, r => TestData.AssertSame(ringOrder, r, 4, "ring-order sum"));
    }

    [Fact]
    public async Task AllReduce_accepts_multidimensional_tensors_and_views_with_an_offset()
    {
        using var ranks = await Ranks.CreateAsync(2);
        var results = ranks.RunAll(group =>
        {
            using var whole = torch.arange(0, 40, dtype: torch.ScalarType.Float32).reshape(4, 10) * (group.Rank + 1);
            using var rows = whole.narrow(0, 1, 2); // contiguous, starts 10 elements into the storage
            group.AllReduce(rows);
            return whole.data<float>().ToArray();
        });
        var expected = Enumerable.Range(0, 40).Select(i => i is >= 10 and < 30 ? i * 3f : i).ToArray();
        Assert.Equal(expected, results[0]);
        Assert.Equal(expected.Select((v, i) => i is >= 10 and < 30 ? v : v * 2), results[1]);
    }

    [Fact]
    public async Task Invalid_tensors_are_rejected_with_a_message_naming_the_problem()
    {
        using var ranks = await Ranks.CreateAsync(1);
        var group = ranks[0];
        using var transposed = torch.zeros(3, 4).t();
        var notContiguous = Assert.Throws<ArgumentException>(() => group.AllReduce(transposed));
        Assert.Contains("contiguous", notContiguous.Message);
        using var ints = torch.zeros(3, torch.ScalarType.Int32);
        var wrongType = Assert.Throws<ArgumentException>(() => group.AllReduce(ints));
        Assert.Contains("Int32", wrongType.Message);
        using var tensor = torch.zeros(3);
        Assert.Throws<ArgumentOutOfRangeException>(() => group.Broadcast(tensor, root: 1));
        using var output = torch.zeros(5);
        Assert.Contains("needs world size", Assert.Throws<ArgumentException>(() => group.AllGatherIntoTensor(output, tensor)).Message);
    }
}

using Trainer.Data;
using Trainer.Distributed;

namespace Trainer.Tests.Distributed;

public sealed class DistributedSamplerTests
{
    private static DistributedSampler[] Ranks(int length, int replicas, bool shuffle = true, int seed = 0, bool dropLast = false, int epoch = 0) =>
        [.. Enumerable.Range(0, replicas).Select(r =>
        {
            var sampler = new DistributedSampler(length, replicas, r, shuffle, seed, dropLast);
            sampler.SetEpoch(epoch);
            return sampler;
        })];

    [Theory]
    [InlineData(100, 4)]
    [InlineData(10, 3)]
    [InlineData(7, 8)]
    [InlineData(1, 2)]
    public void Ranks_are_disjoint_and_cover_the_dataset_with_head_padding(int length, int replicas)
    {
        var ranks = Ranks(length, replicas);
        var perRank = ranks.Select(s => s.Indices()).ToArray();
        var numSamples = (length + replicas - 1) / replicas;

        Assert.All(ranks, s => Assert.Equal(numSamples, s.NumSamples));
        Assert.All(ranks, s => Assert.Equal(numSamples * replicas, s.TotalSize));
        Assert.All(perRank, indices => Assert.Equal(numSamples, indices.Count));
        // Interleaving the ranks back (position r + k·replicas) rebuilds the padded list: the permutation, then its head again.
        var shared = new int[numSamples * replicas];
        for (var r = 0; r < replicas; r++)
            for (var k = 0; k < numSamples; k++)
                shared[r + k * replicas] = perRank[r][k];
        var permutation = RandomSampler.Permutation(length, 0);
        Assert.Equal(permutation, shared[..length]);
        Assert.Equal(Enumerable.Range(0, shared.Length - length).Select(i => permutation[i % length]), shared[length..]);
        // Real (non-padding) samples: every index exactly once over all ranks.
        Assert.Equal(Enumerable.Range(0, length), perRank.SelectMany((indices, r) => indices.Take(ranks[r].RealCount)).Order());
    }

    [Fact]
    public void Without_shuffle_rank_r_takes_every_replicas_th_index()
    {
        var ranks = Ranks(10, 3, shuffle: false);

        Assert.Equal([0, 3, 6, 9], ranks[0].Indices());
        Assert.Equal([1, 4, 7, 0], ranks[1].Indices());
        Assert.Equal([2, 5, 8, 1], ranks[2].Indices());
        Assert.Equal([4, 3, 3], ranks.Select(r => r.RealCount));
    }

    [Fact]
    public void Drop_last_trims_the_tail_instead_of_padding()
    {
        var ranks = Ranks(10, 3, shuffle: false, dropLast: true);

        Assert.All(ranks, s => Assert.Equal(3, s.NumSamples));
        Assert.All(ranks, s => Assert.Equal(9, s.TotalSize));
        Assert.Equal([0, 3, 6], ranks[0].Indices());
        Assert.Equal([2, 5, 8], ranks[2].Indices());
        Assert.All(ranks, s => Assert.Equal(3, s.RealCount));
        Assert.Equal(9, ranks.SelectMany(s => s.Indices()).Distinct().Count());
    }

    [Fact]
    public void The_order_changes_with_the_epoch_and_is_the_same_on_every_rank()
    {
        var epoch0 = Ranks(50, 2, seed: 7, epoch: 0);
        var epoch1 = Ranks(50, 2, seed: 7, epoch: 1);
        var epoch1Again = Ranks(50, 2, seed: 7, epoch: 1);

        Assert.NotEqual(epoch0[0].Indices(), epoch1[0].Indices());
        Assert.Equal(epoch1[0].Indices(), epoch1Again[0].Indices());
        Assert.Equal(epoch1[1].Indices(), epoch1Again[1].Indices());
        // The same shared permutation (seed + epoch) on both ranks: together they are a permutation.
        Assert.Equal(RandomSampler.Permutation(50, 8), epoch1[0].Indices().Zip(epoch1[1].Indices()).SelectMany(p => new[] { p.First, p.Second }));
    }

    [Fact]
    public void A_bad_rank_is_rejected_like_pytorch()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new DistributedSampler(10, 2, 2));
        Assert.Contains("Invalid rank 2", error.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new DistributedSampler(10, 0, 0));
    }
}

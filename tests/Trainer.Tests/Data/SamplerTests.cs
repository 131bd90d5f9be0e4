using Trainer.Data;

namespace Trainer.Tests.Data;

public sealed class SamplerTests
{
    [Fact]
    public void Random_sampler_is_torch_randperm_seeded_with_seed_plus_epoch()
    {
        var sampler = new RandomSampler(10, seed: 0);
        // torch.randperm(10, generator=torch.Generator().manual_seed(0)) in PyTorch.
        Assert.Equal([4, 1, 7, 5, 3, 9, 0, 8, 6, 2], sampler.Indices());
        sampler.SetEpoch(1);
        Assert.Equal(RandomSampler.Permutation(10, 1), sampler.Indices());
        Assert.NotEqual(RandomSampler.Permutation(10, 0), RandomSampler.Permutation(10, 1));
        Assert.Equal(Enumerable.Range(0, 1000), RandomSampler.Permutation(1000, 5).Order());
    }

    [Fact]
    public void Sequential_sampler_is_the_identity_every_epoch()
    {
        var sampler = new SequentialSampler(5);
        sampler.SetEpoch(3);
        Assert.Equal([0, 1, 2, 3, 4], sampler.Indices());
        Assert.Equal(5, sampler.RealCount);
    }
}

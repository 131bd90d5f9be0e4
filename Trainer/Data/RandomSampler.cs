using TorchSharp;

namespace Trainer.Data;

/// <summary>
/// A fresh random order every epoch for one rank: the permutation is torch.randperm seeded with seed + epoch,
/// exactly the order a one-replica DistributedSampler gives, so results depend on the seed only.
/// </summary>
internal sealed class RandomSampler(int length, int seed = 0) : ISampler
{
    private int _epoch;

    public int Count => length;
    public int RealCount => length;

    public void SetEpoch(int epoch) => _epoch = epoch;

    public IReadOnlyList<int> Indices() => Permutation(length, seed + (long)_epoch);

    /// <summary>torch.randperm(length, generator=torch.Generator().manual_seed(seed)): identical to PyTorch's on CPU.</summary>
    public static int[] Permutation(int length, long seed)
    {
        using var generator = new torch.Generator((ulong)seed);
        using var permutation = torch.randperm(length, generator: generator);
        return [.. permutation.data<long>().Select(i => (int)i)];
    }
}

namespace Trainer.Data;

/// <summary>
/// Chooses which dataset indices this process sees in an epoch, and in what order (PyTorch's Sampler).
/// The learner calls <see cref="SetEpoch"/> at the start of every epoch, then the loader takes <see cref="Indices"/>.
/// </summary>
internal interface ISampler
{
    /// <summary>How many indices an epoch yields (PyTorch's len(sampler)).</summary>
    int Count { get; }

    /// <summary>
    /// How many of the leading indices are real samples; the rest are duplicates added only to even out the
    /// ranks (DistributedSampler's padding), which metrics must not count.
    /// </summary>
    int RealCount { get; }

    void SetEpoch(int epoch);

    /// <summary>The indices of the current epoch, <see cref="Count"/> of them.</summary>
    IReadOnlyList<int> Indices();
}

using Trainer.Training;

namespace Trainer.Distributed;

internal static class LearnerDistributedExtensions
{
    /// <summary>
    /// fastai's learn.to_distributed(): wraps the model in <see cref="DistributedDataParallel"/> and gives both
    /// loaders a <see cref="DistributedSampler"/> (training shuffled by seed + epoch, validation in order), so each
    /// rank sees its own shard and validation metrics are summed over all ranks. A world of one stays as it is.
    /// </summary>
    public static Learner ToDistributed(this Learner learner, ProcessGroup group, int seed, long bucketCapBytes = DistributedDataParallel.DefaultBucketCapBytes)
    {
        if (group.WorldSize == 1) return learner;
        learner.Train.Sampler = new DistributedSampler(learner.Train.Dataset.Count, group.WorldSize, group.Rank, shuffle: true, seed: seed);
        learner.Valid.Sampler = new DistributedSampler(learner.Valid.Dataset.Count, group.WorldSize, group.Rank, shuffle: false);
        learner.Parallel = new DistributedDataParallel(group, learner.Model, bucketCapBytes);
        return learner;
    }
}

using TorchSharp;
using Trainer.Data;
using Trainer.Models;
using Trainer.Training;

namespace Trainer.Tests.Training;

/// <summary>A small, fast learner: wrn_22 at k = 1 on synthetic images. <c>seed</c> fixes data, order and augmentation; <c>initSeed</c> (default: seed) the weights.</summary>
internal static class TinyLearner
{
    public static Learner Create(int trainImages = 256, int validImages = 100, int batchSize = 32, int seed = 0, IDataParallel? parallel = null, int? initSeed = null, params ILearnerCallback[] callbacks)
    {
        var model = SeededWeights.Apply(WideResNet.Wrn22(k: 1), initSeed ?? seed);
        var train = new DataLoader(SyntheticDataset.Create(trainImages, seed, "train"), new RandomSampler(trainImages, seed), batchSize, Augmentation.Train(), dropLast: true, seed: seed);
        var valid = new DataLoader(SyntheticDataset.Create(validImages, seed + 1, "valid"), new SequentialSampler(validImages), batchSize, Augmentation.Valid(), dropLast: false, seed: seed);
        return new Learner(model, train, valid, callbacks, parallel);
    }

    public static float[][] Parameters(Learner learner) =>
        [.. learner.Model.parameters().Select(p => p.data<float>().ToArray())];
}

using TorchSharp;
using Trainer.Distributed;
using static TorchSharp.torch;

namespace Trainer.Tests.Distributed;

/// <summary>
/// The seed's promise: N ranks with batch b each take the same steps as one rank with batch N·b, and all replicas
/// stay identical. Ranks are threads with real loopback sockets (see <see cref="Ranks"/>).
/// </summary>
public class DistributedDataParallelTests
{
    private const int Features = 12;
    private const int Classes = 4;
    private const int PerRankBatch = 8;
    private const int Steps = 6;

    private static nn.Module<Tensor, Tensor> Mlp(int seed) =>
        SeededWeights.Apply(nn.Sequential(nn.Linear(Features, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, Classes)), seed);

    private static (Tensor X, Tensor Y) Data(int worldSize)
    {
        var generator = new Generator(1234);
        var x = randn([Steps, worldSize * PerRankBatch, Features], generator: generator);
        var y = randint(0, Classes, [Steps, worldSize * PerRankBatch], generator: generator);
        return (x, y);
    }

    private static optim.Optimizer AdamW(nn.Module model) =>
        optim.AdamW(model.parameters(), lr: 1e-2, beta1: 0.9, beta2: 0.99, eps: 1e-8, weight_decay: 0.1);

    private static float[] Flat(nn.Module model) =>
        [.. model.parameters().SelectMany(p => p.detach().cpu().data<float>().ToArray())];

    private static float[] TrainSingle(int seed, Tensor x, Tensor y)
    {
        using var model = Mlp(seed);
        using var optimizer = AdamW(model);
        for (var step = 0; step < Steps; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            nn.functional.cross_entropy(model.forward(x[step]), y[step]).backward();
            optimizer.step();
        }
        return Flat(model);
    }

    private static float[][] TrainDistributed(Ranks ranks, Tensor x, Tensor y, long bucketCapBytes = DistributedDataParallel.DefaultBucketCapBytes,
        Action<nn.Module, DistributedDataParallel, int>? beforeBackward = null)
    {
        var worldSize = ranks.Groups.Length;
        // Different initial weights on every rank: the broadcast at the start must make them rank 0's.
        var models = Enumerable.Range(0, worldSize).Select(rank => Mlp(seed: 7 + rank)).ToArray();
        return ranks.RunAll(group =>
        {
            var model = models[group.Rank];
            using var ddp = new DistributedDataParallel(group, model, bucketCapBytes);
            using var optimizer = AdamW(model);
            ddp.OnFitStart(model);
            for (var step = 0; step < Steps; step++)
            {
                using var scope = NewDisposeScope();
                var mine = x[step].narrow(0, group.Rank * PerRankBatch, PerRankBatch);
                var labels = y[step].narrow(0, group.Rank * PerRankBatch, PerRankBatch);
                optimizer.zero_grad();
                ddp.BeforeForward(model);
                var loss = nn.functional.cross_entropy(model.forward(mine), labels);
                beforeBackward?.Invoke(model, ddp, step);
                loss.backward();
                ddp.AfterBackward(model);
                optimizer.step();
            }
            var flat = Flat(model);
            model.Dispose();
            return flat;
        });
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public async Task NRanksWithBatchBMatchOneRankWithBatchNB(int worldSize)
    {
        var (x, y) = Data(worldSize);
        var reference = TrainSingle(seed: 7, x, y);
        using var ranks = await Ranks.CreateAsync(worldSize);

        var results = TrainDistributed(ranks, x, y);

        for (var rank = 0; rank < worldSize; rank++)
        {
            Assert.Equal(results[0], results[rank]); // replicas bit-identical
            var worst = reference.Zip(results[rank], (a, b) => Math.Abs(a - b) / Math.Max(1e-3, Math.Abs(a))).Max();
            Assert.True(worst < 1e-4, $"rank {rank} differs from the single-rank reference by up to {worst:E2} (relative)");
        }
        Assert.NotEqual(Flat(Mlp(7)), results[0]); // it did train
    }

    [Fact]
    public async Task SmallBucketsGiveTheSameResultAsOneBucket()
    {
        var (x, y) = Data(2);
        using var ranks = await Ranks.CreateAsync(2);
        var oneBucket = TrainDistributed(ranks, x, y);
        var manyBuckets = TrainDistributed(ranks, x, y, bucketCapBytes: 256);
        Assert.Equal(oneBucket[0], manyBuckets[0]);
        Assert.Equal(oneBucket[1], manyBuckets[1]);
    }

    [Fact]
    public async Task BucketsFollowReverseRegistrationOrderWithinTheCap()
    {
        using var ranks = await Ranks.CreateAsync(2);
        using var model = Mlp(1);
        using var ddp = new DistributedDataParallel(ranks[0], model, bucketCapBytes: 16 * 16 * sizeof(float) + 16 * sizeof(float));
        // Parameters: w1 12x16, b1 16, w2 16x16, b2 16, w3 16x4, b3 4 — reversed: b3, w3, b2 | w2, b1 (exactly the cap) | w1.
        Assert.Equal(new long[] { 4 + 64 + 16, 256 + 16, 192 }, ddp.BucketLengths);
        Assert.Equal(model.parameters().Sum(p => p.numel()) * sizeof(float), ddp.GradientBytes);
    }

    [Fact]
    public async Task GradientsAreViewsOfTheFlatBufferAndSurviveModuleZeroGrad()
    {
        var (x, y) = Data(2);
        var reference = TrainSingle(seed: 7, x, y);
        using var ranks = await Ranks.CreateAsync(2);
        // Module.zero_grad() sets grads to none and drops the views; the wrapper must notice and restore them.
        var results = TrainDistributed(ranks, x, y, beforeBackward: (model, _, step) =>
        {
            if (step % 2 == 1) model.zero_grad();
        });
        var worst = reference.Zip(results[0], (a, b) => Math.Abs(a - b) / Math.Max(1e-3, Math.Abs(a))).Max();
        Assert.True(worst < 1e-4, $"differs from the reference by up to {worst:E2}");
        Assert.Equal(results[0], results[1]);
    }

    [Fact]
    public async Task NoSyncKeepsGradientsLocalUntilTheNextSynchronisedBackward()
    {
        using var ranks = await Ranks.CreateAsync(2);
        var models = new[] { Mlp(3), Mlp(3) };
        var grads = ranks.RunAll(group =>
        {
            var model = models[group.Rank];
            using var ddp = new DistributedDataParallel(group, model);
            ddp.OnFitStart(model);
            var input = full([2, Features], group.Rank + 1f);
            using (ddp.NoSync())
            {
                model.forward(input).sum().backward();
                ddp.AfterBackward(model);
            }
            var local = model.parameters().First().grad!.clone();
            model.forward(input).sum().backward();
            ddp.AfterBackward(model);
            var synced = model.parameters().First().grad!.clone();
            return (Local: local.data<float>().ToArray(), Synced: synced.data<float>().ToArray());
        });
        Assert.NotEqual(grads[0].Local, grads[1].Local); // not averaged under NoSync
        Assert.Equal(grads[0].Synced, grads[1].Synced);  // averaged (2 local steps each) afterwards
        var expected = grads[0].Local.Zip(grads[1].Local, (a, b) => (2 * a + 2 * b) / 2).ToArray();
        Assert.Equal(expected, grads[0].Synced, new ToleranceComparer(1e-5f));
    }

    [Fact]
    public async Task BatchNormBuffersComeFromRankZeroBeforeEveryForward()
    {
        using var ranks = await Ranks.CreateAsync(3);
        var models = Enumerable.Range(0, 3).Select(_ => nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))).ToArray();
        var buffers = ranks.RunAll(group =>
        {
            var model = models[group.Rank];
            using var ddp = new DistributedDataParallel(group, model);
            ddp.OnFitStart(model);
            model.forward(full([5, 4], group.Rank * 10f)).sum().backward(); // each rank's running stats now differ
            ddp.BeforeForward(model);
            return model.buffers().SelectMany(b => b.to_type(ScalarType.Float64).data<double>().ToArray()).ToArray();
        });
        Assert.Equal(buffers[0], buffers[1]);
        Assert.Equal(buffers[0], buffers[2]);
    }

    [Fact]
    public async Task DivergedReplicasStopTheRunOnEveryRankNamingTheRank()
    {
        using var ranks = await Ranks.CreateAsync(3);
        var models = Enumerable.Range(0, 3).Select(_ => Mlp(5)).ToArray();
        var outcomes = ranks.Run(group =>
        {
            var model = models[group.Rank];
            using var ddp = new DistributedDataParallel(group, model);
            ddp.OnFitStart(model);
            ddp.OnEpochEnd(model, epoch: 0); // identical: passes
            if (group.Rank == 2)
                using (no_grad()) model.parameters().Last().add_(1e-6f);
            ddp.OnEpochEnd(model, epoch: 1);
            return true;
        });
        foreach (var outcome in outcomes)
        {
            var error = Assert.IsType<DistributedException>(outcome.Error);
            Assert.Contains("diverged after epoch 2", error.Message);
            Assert.Contains("rank(s) 2", error.Message);
        }
    }

    private sealed class ToleranceComparer(float tolerance) : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(a - b) <= tolerance * Math.Max(1, Math.Abs(a));

        public int GetHashCode(float value) => 0;
    }
}

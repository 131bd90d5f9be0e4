using Trainer.Data;

namespace Trainer.Tests.Data;

public sealed class DataLoaderTests
{
    private static ImageDataset Dataset(int count) => SyntheticDataset.Create(count, seed: 3, "test");

    private static List<(float[] Images, long[] Labels, int Count, int Real)> Collect(DataLoader loader, int epoch)
    {
        var batches = new List<(float[], long[], int, int)>();
        foreach (var batch in loader.GetBatches(epoch))
            using (batch)
                batches.Add((batch.Images[..(batch.Count * ImageDataset.ImageSize)], batch.Labels, batch.Count, batch.RealCount));
        return batches;
    }

    [Fact]
    public void Batches_follow_the_sampler_and_drop_the_last_partial_one_when_asked()
    {
        var data = Dataset(50);
        var sampler = new RandomSampler(50, seed: 1);
        var loader = new DataLoader(data, sampler, 16, Augmentation.Train(), dropLast: true, seed: 1);

        var batches = Collect(loader, 0);

        Assert.Equal(3, loader.BatchCount);
        Assert.Equal(3, batches.Count);
        var expected = sampler.Indices().Take(48).Select(i => (long)data.Label(i));
        Assert.Equal(expected, batches.SelectMany(b => b.Labels));
        Assert.All(batches, b => Assert.Equal(16, b.Count));
    }

    [Fact]
    public void Keeps_the_last_partial_batch_for_validation()
    {
        var loader = new DataLoader(Dataset(50), new SequentialSampler(50), 16, Augmentation.Valid(), dropLast: false);

        var batches = Collect(loader, 0);

        Assert.Equal([16, 16, 16, 2], batches.Select(b => b.Count));
        Assert.Equal(Enumerable.Range(0, 50).Select(i => (long)(i % 10)), batches.SelectMany(b => b.Labels));
    }

    [Fact]
    public void Augmentation_depends_on_seed_epoch_and_batch_only_not_on_threads_or_timing()
    {
        var data = Dataset(64);
        var first = Collect(new DataLoader(data, new SequentialSampler(64), 8, Augmentation.Train(), dropLast: true, seed: 5, prefetch: 1), 2);
        var second = Collect(new DataLoader(data, new SequentialSampler(64), 8, Augmentation.Train(), dropLast: true, seed: 5, prefetch: 8), 2);
        var otherEpoch = Collect(new DataLoader(data, new SequentialSampler(64), 8, Augmentation.Train(), dropLast: true, seed: 5), 3);

        Assert.Equal(first.Select(b => b.Images), second.Select(b => b.Images));
        Assert.NotEqual(first.Select(b => b.Images), otherEpoch.Select(b => b.Images));
    }

    [Fact]
    public void Padding_duplicates_are_not_counted_as_real_samples()
    {
        // 10 samples over 4 ranks: 3 each, rank 3 gets positions 3, 7 and the padding position 11.
        var sampler = new Trainer.Distributed.DistributedSampler(10, numReplicas: 4, rank: 3, shuffle: false);
        var loader = new DataLoader(Dataset(10), sampler, 2, Augmentation.Valid(), dropLast: false);

        var batches = Collect(loader, 0);

        Assert.Equal([2, 1], batches.Select(b => b.Count));
        Assert.Equal([2, 0], batches.Select(b => b.Real));
    }

    [Fact]
    public void Measures_the_wait_and_stops_cleanly_when_the_consumer_breaks_off()
    {
        var loader = new DataLoader(Dataset(256), new SequentialSampler(256), 8, Augmentation.Train(), dropLast: true, prefetch: 2);
        var taken = 0;
        foreach (var batch in loader.GetBatches(0))
        {
            batch.Dispose();
            if (++taken == 3) break;
        }

        Assert.Equal(3, taken);
        Assert.True(loader.TotalWait > TimeSpan.Zero);
        Assert.True(loader.LastWait <= loader.TotalWait);
        // The loader is reusable after an abandoned epoch.
        Assert.Equal(32, Collect(loader, 1).Count);
    }

    [Fact]
    public void Synthetic_data_is_deterministic_and_balanced()
    {
        var a = SyntheticDataset.Create(100, seed: 9, "a");
        var b = SyntheticDataset.Create(100, seed: 9, "b");
        var c = SyntheticDataset.Create(100, seed: 10, "c");

        Assert.True(a.Image(42).SequenceEqual(b.Image(42)));
        Assert.False(a.Image(42).SequenceEqual(c.Image(42)));
        Assert.All(Enumerable.Range(0, 10), k => Assert.Equal(10, Enumerable.Range(0, 100).Count(i => a.Label(i) == k)));
    }

    [Fact]
    public void Take_keeps_a_seeded_random_subset_in_order()
    {
        var data = Dataset(100);
        var subset = data.Take(30, seed: 2);

        Assert.Equal(30, subset.Count);
        Assert.Equal(data.Take(30, seed: 2).Image(7).ToArray(), subset.Image(7).ToArray());
        Assert.True(Enumerable.Range(0, 10).Count(k => Enumerable.Range(0, 30).Any(i => subset.Label(i) == k)) >= 8);
        Assert.Same(data, data.Take(100, seed: 2));
    }
}

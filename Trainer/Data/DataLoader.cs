using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using Trainer.Faults;

namespace Trainer.Data;

/// <summary>
/// Builds batches on background threads and keeps up to <c>prefetch</c> of them ready (a bounded channel), so
/// training does not wait for data. The order of samples comes from an injected <see cref="ISampler"/>; the
/// random augmentation of batch b in epoch e is seeded by (seed, e, b) only, so batches do not depend on
/// which thread built them or when. The time the consumer spent waiting is measured.
/// </summary>
internal sealed class DataLoader
{
    private readonly Augmentation _augmentation;
    private readonly int _seed;
    private readonly int _prefetch;
    private readonly TimeSpan _timeout;
    private readonly ConcurrentBag<float[]> _buffers = [];
    private long _totalWaitTicks;
    private long _lastWaitTicks;

    public DataLoader(ImageDataset dataset, ISampler sampler, int batchSize, Augmentation augmentation, bool dropLast, int seed = 0, int prefetch = 4, TimeSpan? timeout = null)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "The batch size must be 1 or more.");
        if (prefetch < 1) throw new ArgumentOutOfRangeException(nameof(prefetch), prefetch, "prefetch must be 1 or more.");
        Dataset = dataset;
        Sampler = sampler;
        BatchSize = batchSize;
        DropLast = dropLast;
        _augmentation = augmentation;
        _seed = seed;
        _prefetch = prefetch;
        _timeout = timeout ?? TimeSpan.FromMinutes(5);
    }

    public ImageDataset Dataset { get; }
    public ISampler Sampler { get; internal set; }
    public int BatchSize { get; }
    public bool DropLast { get; }

    public int BatchCount => DropLast ? Sampler.Count / BatchSize : (Sampler.Count + BatchSize - 1) / BatchSize;

    /// <summary>Total time spent waiting for a batch since this loader was made.</summary>
    public TimeSpan TotalWait => TimeSpan.FromTicks(Interlocked.Read(ref _totalWaitTicks));

    /// <summary>Time spent waiting for the latest batch.</summary>
    public TimeSpan LastWait => TimeSpan.FromTicks(Interlocked.Read(ref _lastWaitTicks));

    /// <summary>
    /// The batches of epoch <paramref name="epoch"/>, in sampler order (call the sampler's SetEpoch first), from batch
    /// <paramref name="firstBatch"/> on: a run resumed mid-epoch gets exactly the batches it had not seen.
    /// </summary>
    public IEnumerable<Batch> GetBatches(int epoch, int firstBatch = 0, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(firstBatch);
        var indices = Sampler.Indices();
        var realCount = Sampler.RealCount;
        var batchCount = BatchCount;
        var channel = Channel.CreateBounded<Task<Batch>>(new BoundedChannelOptions(_prefetch) { SingleReader = true, SingleWriter = true });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var producer = Task.Run(async () =>
        {
            try
            {
                for (var b = firstBatch; b < batchCount; b++)
                {
                    var index = b;
                    await channel.Writer.WriteAsync(Task.Run(() => Build(indices, realCount, epoch, index), stop.Token), stop.Token);
                }
                channel.Writer.Complete();
            }
            catch (Exception e)
            {
                channel.Writer.TryComplete(e);
            }
        }, stop.Token);

        try
        {
            for (var b = firstBatch; b < batchCount; b++)
                yield return Next(channel.Reader, epoch, b, stop.Token);
        }
        finally
        {
            stop.Cancel();
            Quietly(() => producer.Wait(_timeout));
            // Hand back the buffers of batches built ahead but never consumed.
            while (channel.Reader.TryRead(out var leftover))
                Quietly(() => { if (leftover.Wait(_timeout)) leftover.Result.Dispose(); });
        }
    }

    private Batch Next(ChannelReader<Task<Batch>> reader, int epoch, int batchIndex, CancellationToken cancellationToken)
    {
        var watch = Stopwatch.StartNew();
        try
        {
            var read = reader.ReadAsync(cancellationToken).AsTask();
            if (!read.Wait(_timeout, cancellationToken))
                throw new TimeoutException($"No batch {batchIndex} of epoch {epoch} after {_timeout.TotalSeconds:0} s: the data loader is stuck.");
            var pending = read.Result;
            if (!pending.Wait(_timeout, cancellationToken))
                throw new TimeoutException($"Building batch {batchIndex} of epoch {epoch} took over {_timeout.TotalSeconds:0} s.");
            var waited = watch.Elapsed.Ticks;
            Interlocked.Exchange(ref _lastWaitTicks, waited);
            Interlocked.Add(ref _totalWaitTicks, waited);
            return pending.Result;
        }
        catch (AggregateException e) when (e.InnerExceptions.Count == 1)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerExceptions[0]);
            throw;
        }
    }

    private static void Quietly(Action action)
    {
        try
        {
            action();
        }
        catch (AggregateException)
        {
            // Cancelled or failed work we no longer need; the consumer already saw any error that mattered.
        }
    }

    private Batch Build(IReadOnlyList<int> indices, int realCount, int epoch, int batchIndex)
    {
        if (DropLast) // the training loader: its batch b of epoch e is optimizer step e·batches + b + 1
            FaultInjection.StrikeIfArmed(FaultPoint.Loader, epoch * BatchCount + batchIndex + 1);
        var start = batchIndex * BatchSize;
        var count = Math.Min(BatchSize, indices.Count - start);
        var images = count == BatchSize && _buffers.TryTake(out var buffer) ? buffer : new float[count * ImageDataset.ImageSize];
        var labels = new long[count];
        var rng = SplitMix64.For(_seed, epoch, batchIndex);
        for (var i = 0; i < count; i++)
        {
            var sample = indices[start + i];
            _augmentation.Apply(Dataset.Image(sample), images.AsSpan(i * ImageDataset.ImageSize, ImageDataset.ImageSize), ref rng);
            labels[i] = Dataset.Label(sample);
        }
        var real = Math.Clamp(realCount - start, 0, count);
        return new Batch(batchIndex, images, labels, count, real, count == BatchSize ? _buffers.Add : null);
    }
}

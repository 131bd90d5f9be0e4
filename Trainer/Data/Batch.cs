namespace Trainer.Data;

/// <summary>
/// One batch as the loader hands it over: normalized images (Count × 3 × 32 × 32 floats, planar) and labels.
/// Dispose it once its images are copied into a tensor, so the loader can reuse the buffer.
/// </summary>
internal sealed class Batch(int index, float[] images, long[] labels, int count, int realCount, Action<float[]>? release) : IDisposable
{
    private Action<float[]>? _release = release;

    /// <summary>Position of the batch in its epoch.</summary>
    public int Index { get; } = index;

    /// <summary>At least Count × 3072 floats; only that prefix is the batch.</summary>
    public float[] Images { get; } = images;

    public long[] Labels { get; } = labels;

    public int Count { get; } = count;

    /// <summary>Leading samples that are not sampler padding: the ones metrics count.</summary>
    public int RealCount { get; } = realCount;

    public void Dispose()
    {
        Interlocked.Exchange(ref _release, null)?.Invoke(Images);
    }
}

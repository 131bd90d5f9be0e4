using Trainer.Data;
using Trainer.Distributed;
using static TorchSharp.torch;

namespace Trainer.Training;

/// <summary>
/// The model's input and target tensors, allocated once and refilled from every batch. torch.tensor(float[])
/// clones its array first, which was a 1.5 MB managed (large-object-heap) allocation per step at batch 128 and
/// the page faults of fresh memory behind it; this is one copy into memory libtorch already owns.
/// </summary>
internal sealed class BatchTensors : IDisposable
{
    private Tensor? _images;
    private Tensor? _labels;

    /// <summary>
    /// Tensors holding <paramref name="batch"/>: [Count, 3, 32, 32] float32 images and [Count] int64 labels. They are
    /// overwritten by the next call, so use them before loading the next batch. A smaller batch gets views (which the
    /// caller's dispose scope may dispose); the buffers themselves live until this object is disposed.
    /// </summary>
    public unsafe (Tensor Images, Tensor Labels) Load(Batch batch)
    {
        var count = batch.Count;
        if (_images is null || _images.shape[0] < count)
        {
            Dispose();
            _images = empty([count, ImageDataset.Channels, ImageDataset.Height, ImageDataset.Width], ScalarType.Float32).DetachFromDisposeScope();
            _labels = empty([count], ScalarType.Int64).DetachFromDisposeScope();
        }
        var imageCount = count * ImageDataset.ImageSize;
        batch.Images.AsSpan(0, imageCount).CopyTo(new Span<float>(TensorMemory.Address(_images), imageCount));
        batch.Labels.AsSpan(0, count).CopyTo(new Span<long>(TensorMemory.Address(_labels!), count));
        return count == _images.shape[0] ? (_images, _labels!) : (_images.narrow(0, 0, count), _labels!.narrow(0, 0, count));
    }

    public void Dispose()
    {
        _images?.Dispose();
        _labels?.Dispose();
        _images = _labels = null;
    }
}
